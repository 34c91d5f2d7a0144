package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The defaults table of checkCNPGRoleDefaults is exactly the CRD's: read from CloudNativePG's own
// Cluster CRD (the version upstream-crds.yaml pins), every defaulted field of managed.roles[].
func TestCNPGRoleDefaultsFromCRD(t *testing.T) {
	var crd *unstructured.Unstructured
	for _, o := range upstreamCRDs(t) {
		if o.GetName() == "clusters.postgresql.cnpg.io" {
			crd = o
		}
	}
	require.NotNil(t, crd, "CloudNativePG's Cluster CRD")
	var item map[string]any
	for _, v := range maps(listAt(crd.Object, "spec", "versions")) {
		if stringAt(v, "name") == "v1" {
			item = mapAt(v, "schema", "openAPIV3Schema", "properties", "spec", "properties", "managed", "properties", "roles", "items")
		}
	}
	require.NotNil(t, item, "spec.managed.roles.items in the v1 schema")
	got := map[string]any{}
	for name, prop := range mapAt(item, "properties") {
		if d, ok := prop.(map[string]any)["default"]; ok {
			got[name] = d
		}
	}
	assert.Equal(t, cnpgRoleDefaults, got)
}

// The policy rules of the OpenShift-facing fixes, each on the overlay that has the object, and each
// failing on a broken copy.
func TestOpenShiftChecksReject(t *testing.T) {
	tests := []struct {
		name    string
		overlay string
		check   func([]*unstructured.Unstructured) []string
		breakIt func(t *testing.T, o []*unstructured.Unstructured)
		want    string
	}{
		{"pull secret on a ServiceAccount", "gitops/overlays/example-with-options", checkServiceAccountPullSecrets,
			func(t *testing.T, o []*unstructured.Unstructured) {
				set(t, mustFind(t, o, "ServiceAccount", "litemaas-sync").Object, []any{map[string]any{"name": "litemaas-job-image-pull"}}, "imagePullSecrets")
			}, "ServiceAccount/litemaas-sync: imagePullSecrets on a ServiceAccount"},
		{"role without inherit", "gitops/overlays/example-ha", checkCNPGRoleDefaults,
			func(t *testing.T, o []*unstructured.Unstructured) {
				roles := listAt(mustFind(t, o, "Cluster", haCluster).Object, "spec", "managed", "roles")
				delete(roles[2].(map[string]any), "inherit")
			}, "managed.roles[2] (litellm) omits inherit: the CRD defaults it to true"},
		{"role without connectionLimit", "gitops/overlays/example-ha", checkCNPGRoleDefaults,
			func(t *testing.T, o []*unstructured.Unstructured) {
				roles := listAt(mustFind(t, o, "Cluster", haCluster).Object, "spec", "managed", "roles")
				delete(roles[0].(map[string]any), "connectionLimit")
			}, "omits connectionLimit: the CRD defaults it to -1"},
		{"sslmode=disable in a URL", "gitops/overlays/example-ha", checkNoSSLDisable,
			func(t *testing.T, o []*unstructured.Unstructured) {
				setEnv(t, o, "Deployment", "backend", "backend", "DATABASE_URL", "postgresql://u@litemaas-db-rw:5432/litemaas_db?sslmode=disable")
			}, "sslmode=disable in the production profile"},
		{"the backend reading all data", "gitops/overlays/example-ha", checkHAProfile,
			func(t *testing.T, o []*unstructured.Unstructured) {
				roles := listAt(mustFind(t, o, "Cluster", haCluster).Object, "spec", "managed", "roles")
				roles[0].(map[string]any)["inRoles"] = []any{"pg_read_all_data"}
			}, "role litemaas_backend is in pg_read_all_data"},
		{"PGSSLMODE=prefer", "gitops/overlays/example-ha", checkNoSSLDisable,
			func(t *testing.T, o []*unstructured.Unstructured) {
				setEnv(t, o, "Deployment", "litellm", "litellm", "PGSSLMODE", "prefer")
			}, `PGSSLMODE="prefer"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Empty(t, tt.check(rendered(t, tt.overlay)), "the unbroken overlay passes")
			objs := rendered(t, tt.overlay)
			tt.breakIt(t, objs)
			assert.Contains(t, strings.Join(tt.check(objs), "\n"), tt.want)
		})
	}
}

// The fixture parses, and holds what the Subscription relies on.
func TestOLMCatalogFixture(t *testing.T) {
	cat, err := LoadOLMCatalog(repoRoot(t))
	require.NoError(t, err)
	pkg := cat.Package("cloudnative-pg")
	require.NotNil(t, pkg)
	require.NotNil(t, pkg.Channel(pkg.DefaultChannel), "the default channel is a channel")
	// Every bundle's CRDs are in its module and serve the kinds the catalog says it owns.
	for _, b := range pkg.Bundles {
		dir, err := ModuleDir(b.CRDs.Module, b.CRDs.Version)
		require.NoError(t, err)
		var served []string
		for _, f := range b.CRDs.Files {
			raw, err := os.ReadFile(filepath.Join(dir, b.CRDs.Dir, f))
			require.NoError(t, err, "%s: %s", b.Name, f)
			var crd struct {
				Spec struct {
					Group    string                  `json:"group"`
					Names    struct{ Kind string }   `json:"names"`
					Versions []struct{ Name string } `json:"versions"`
				} `json:"spec"`
			}
			require.NoError(t, yaml.Unmarshal(raw, &crd))
			for _, v := range crd.Spec.Versions {
				served = append(served, crd.Spec.Group+"/"+v.Name+"/"+crd.Spec.Names.Kind)
			}
		}
		assert.ElementsMatch(t, b.Owned, served, "%s: owned kinds vs. its CRD files", b.Name)
		in := false
		for _, ch := range pkg.Channels {
			in = in || contains(ch.Entries, b.Name)
		}
		assert.True(t, in, "bundle %s is in a channel", b.Name)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func TestSubscriptionsAgainstTheCatalog(t *testing.T) {
	cat, err := LoadOLMCatalog(repoRoot(t))
	require.NoError(t, err)
	const cluster = "gitops/overlays/example-ha/cluster"
	assert.Empty(t, checkSubscriptions(rendered(t, cluster), cat), "the tree's Subscription resolves")
	sub := func(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
		return mapAt(mustFind(t, objs, "Subscription", "cloudnative-pg").Object, "spec")
	}
	tests := []struct {
		name    string
		breakIt func(spec map[string]any)
		want    string
	}{
		{"a channel per minor version", func(s map[string]any) { s["channel"] = "stable-v1.27" },
			`channel "stable-v1.27" is not a channel of package cloudnative-pg (it has stable-v1, candidate)`},
		{"a CSV the channel lacks", func(s map[string]any) { s["startingCSV"] = "cloudnative-pg.v1.27.9" },
			`startingCSV "cloudnative-pg.v1.27.9" is not in channel stable-v1`},
		{"a release candidate on stable", func(s map[string]any) { s["startingCSV"] = "cloudnative-pg.v1.27.0-rc1" },
			"is not in channel stable-v1"},
		{"manual approval without startingCSV", func(s map[string]any) { delete(s, "startingCSV") },
			"installPlanApproval Manual without startingCSV"},
		{"another package", func(s map[string]any) { s["name"] = "cloudnative-pg-community" },
			`package "cloudnative-pg-community" is not in catalog certified-operators`},
		{"another catalog", func(s map[string]any) { s["source"] = "community-operators" },
			"source openshift-marketplace/community-operators"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := rendered(t, cluster)
			tt.breakIt(sub(t, objs))
			assert.Contains(t, strings.Join(checkSubscriptions(objs, cat), "\n"), tt.want)
		})
	}
}
