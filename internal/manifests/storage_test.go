package manifests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/ha"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

// Every volume's size is its cluster setting, and the storage class reaches every volume; each break is
// reported.
func TestStorageSettings(t *testing.T) {
	root := manifeststest.RepoRoot(t)
	settingsOf := func(t *testing.T, file string) map[string]string {
		s, err := targets.SettingsData(root, file)
		require.NoError(t, err)
		return s
	}
	const (
		plain    = "gitops/overlays/example-with-options"
		plainSet = "gitops/overlays/example/settings/cluster-settings.yaml"
		prod     = "gitops/clusters/prod-east"
		prodSet  = "gitops/clusters/prod-east/settings/cluster-settings.yaml"
	)
	tests := []struct {
		name     string
		overlay  string
		settings string
		breakIt  func(t *testing.T, o []*unstructured.Unstructured, s map[string]string)
		want     string
	}{
		{"a size written in the StatefulSet", plain, plainSet, func(t *testing.T, o []*unstructured.Unstructured, _ map[string]string) {
			vct := objects.ListAt(manifeststest.MustFind(t, o, "StatefulSet", "postgres").Object, "spec", "volumeClaimTemplates")[0].(map[string]any)
			manifeststest.Set(t, vct, "50Gi", "spec", "resources", "requests", "storage")
		}, `StatefulSet/postgres: volume size "50Gi", but cluster-settings postgresStorageSize is "10Gi"`},
		{"the backup PVC off its setting", plain, plainSet, func(t *testing.T, o []*unstructured.Unstructured, _ map[string]string) {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "PersistentVolumeClaim", "postgres-backup").Object, "1Gi", "spec", "resources", "requests", "storage")
		}, "PersistentVolumeClaim/postgres-backup: volume size \"1Gi\""},
		{"a setting missing", plain, plainSet, func(t *testing.T, _ []*unstructured.Unstructured, s map[string]string) {
			delete(s, "portalBackupStorageSize")
		}, "cluster-settings has no portalBackupStorageSize"},
		{"a size that is not a quantity", plain, plainSet, func(t *testing.T, _ []*unstructured.Unstructured, s map[string]string) {
			s["backupStorageSize"] = "ten gigabytes"
		}, `backupStorageSize "ten gigabytes" is not a quantity`},
		{"the WAL volume off its setting", prod, prodSet, func(t *testing.T, o []*unstructured.Unstructured, _ map[string]string) {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Cluster", ha.HACluster).Object, "1Gi", "spec", "walStorage", "size")
		}, `Cluster/litemaas-db: volume size "1Gi", but cluster-settings postgresWALStorageSize`},
		{"a volume off the storage class", prod, prodSet, func(t *testing.T, o []*unstructured.Unstructured, _ map[string]string) {
			unstructured.RemoveNestedField(manifeststest.MustFind(t, o, "PersistentVolumeClaim", "backend-backup").Object, "spec", "storageClassName")
		}, `PersistentVolumeClaim/backend-backup: storage class "", but cluster-settings storageClassName is "gp3-csi"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Empty(t, checkStorageSettings(manifeststest.Rendered(t, tt.overlay), settingsOf(t, tt.settings)), "the unbroken overlay passes")
			objs, s := manifeststest.Rendered(t, tt.overlay), settingsOf(t, tt.settings)
			tt.breakIt(t, objs, s)
			assert.Contains(t, strings.Join(checkStorageSettings(objs, s), "\n"), tt.want)
		})
	}
}
