package manifests

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// The fixture parses, and holds what the Subscription relies on.
func TestOLMCatalogFixture(t *testing.T) {
	cat, err := LoadOLMCatalog(manifeststest.RepoRoot(t))
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
			in = in || slices.Contains(ch.Entries, b.Name)
		}
		assert.True(t, in, "bundle %s is in a channel", b.Name)
	}
}

func TestSubscriptionsAgainstTheCatalog(t *testing.T) {
	cat, err := LoadOLMCatalog(manifeststest.RepoRoot(t))
	require.NoError(t, err)
	const cluster = "gitops/overlays/example-ha/cluster"
	assert.Empty(t, checkSubscriptions(manifeststest.Rendered(t, cluster), cat), "the tree's Subscription resolves")
	sub := func(t *testing.T, objs []*unstructured.Unstructured) map[string]any {
		return objects.MapAt(manifeststest.MustFind(t, objs, "Subscription", "cloudnative-pg").Object, "spec")
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
			objs := manifeststest.Rendered(t, cluster)
			tt.breakIt(sub(t, objs))
			assert.Contains(t, strings.Join(checkSubscriptions(objs, cat), "\n"), tt.want)
		})
	}
}
