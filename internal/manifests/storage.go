package manifests

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/ha"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

// storageVolume is a volume whose size (and class) a cluster setting decides.
type storageVolume struct {
	kind, name string
	sizeKey    string   // the cluster-settings key of its size
	size       []string // path of the size in the object
	class      []string // path of the storage class in the object
}

// storageVolumes: every volume LiteMaaS creates, with the setting that sizes it. An overlay renders a
// subset (the StatefulSet or the Cluster, the backup component's PVC or not).
var storageVolumes = []storageVolume{
	{"StatefulSet", "postgres", "postgresStorageSize", nil, nil}, // paths into volumeClaimTemplates[0], below
	{"PersistentVolumeClaim", "backend-backup", "portalBackupStorageSize", []string{"spec", "resources", "requests", "storage"}, []string{"spec", "storageClassName"}},
	{"PersistentVolumeClaim", "postgres-backup", "backupStorageSize", []string{"spec", "resources", "requests", "storage"}, []string{"spec", "storageClassName"}},
	{"Cluster", ha.HACluster, "postgresStorageSize", []string{"spec", "storage", "size"}, []string{"spec", "storage", "storageClass"}},
	{"Cluster", ha.HACluster, "postgresWALStorageSize", []string{"spec", "walStorage", "size"}, []string{"spec", "walStorage", "storageClass"}},
}

// checkStorageSettings: each volume's size is its cluster setting (a valid quantity), so that a
// cluster's sizes live in settings/cluster-settings.yaml and a changed setting reaches the volume; with
// storageClassName set (components/storage-class), every volume is on that class.
func checkStorageSettings(objs []*unstructured.Unstructured, settings map[string]string) []string {
	var p objects.Problems
	class, hasClass := settings["storageClassName"]
	for _, v := range storageVolumes {
		o := objects.Find(objs, v.kind, v.name)
		if o == nil {
			continue
		}
		obj := o.Object
		size, classPath := v.size, v.class
		if v.kind == "StatefulSet" {
			vcts := objects.Maps(objects.ListAt(obj, "spec", "volumeClaimTemplates"))
			if len(vcts) == 0 {
				p.Addf("%s: no volumeClaimTemplates", objects.Ref(o))
				continue
			}
			obj = vcts[0]
			size, classPath = []string{"spec", "resources", "requests", "storage"}, []string{"spec", "storageClassName"}
		}
		want, ok := settings[v.sizeKey]
		if !ok {
			p.Addf("%s: cluster-settings has no %s (the size of this volume); copy it from gitops/overlays/example*/settings", objects.Ref(o), v.sizeKey)
			continue
		}
		if _, err := resource.ParseQuantity(want); err != nil {
			p.Addf("cluster-settings %s %q is not a quantity (e.g. 10Gi): %v", v.sizeKey, want, err)
			continue
		}
		if got := objects.StringAt(obj, size...); got != want {
			p.Addf("%s: volume size %q, but cluster-settings %s is %q: the size must come from the setting (components/storage, ha, backup replacements)", objects.Ref(o), got, v.sizeKey, want)
		}
		if got := objects.StringAt(obj, classPath...); hasClass && got != class {
			p.Addf("%s: storage class %q, but cluster-settings storageClassName is %q: list components/storage-class after the components that add volumes", objects.Ref(o), got, class)
		}
	}
	return p
}

// checkStorage runs checkStorageSettings with the target's cluster-settings.
func (c *Checker) checkStorage(t targets.Target, objs []*unstructured.Unstructured) []string {
	if t.Settings == "" {
		return nil // checkDomain reports it
	}
	settings, err := targets.SettingsData(c.Root, t.Settings)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", t.Settings, err)}
	}
	return checkStorageSettings(objs, settings)
}
