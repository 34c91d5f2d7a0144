package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

func write(t *testing.T, root, file, content string) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(file))
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
}

// Targets are found in the tree and classified by what they build on; a fleet's cluster folder is an
// overlay like the others.
func TestTargetsFollowTheTree(t *testing.T) {
	root := manifeststest.CopyTree(t)
	write(t, root, "gitops/clusters/east/kustomization.yaml", "resources:\n  - ../../overlays/example-with-options\n")
	write(t, root, "gitops/overlays/own-catalog/kustomization.yaml", "resources:\n  - ../example\nconfigMapGenerator:\n  - name: litemaas-models\n    behavior: replace\n    files: [models.yaml]\n")
	models, err := os.ReadFile(filepath.Join(root, "gitops/base/models.yaml"))
	require.NoError(t, err)
	write(t, root, "gitops/overlays/own-catalog/models.yaml", string(models))

	ts, err := targets.Targets(root)
	require.NoError(t, err)
	byDir := map[string]targets.Target{}
	for _, tg := range ts {
		byDir[tg.Dir] = tg
	}
	const settings = "gitops/overlays/example/settings/cluster-settings.yaml"
	assert.Equal(t, targets.Target{Dir: "gitops/clusters/east", Kind: targets.AppTarget, Cluster: "gitops/overlays/example/cluster", Settings: settings, Catalog: "gitops/base/models.yaml"}, byDir["gitops/clusters/east"])
	assert.Equal(t, targets.Target{Dir: "gitops/overlays/own-catalog", Kind: targets.AppTarget, Cluster: "gitops/overlays/example/cluster", Settings: settings, Catalog: "gitops/overlays/own-catalog/models.yaml"}, byDir["gitops/overlays/own-catalog"])
	assert.Equal(t, targets.ClusterTarget, byDir["gitops/overlays/example/cluster"].Kind)
	assert.Equal(t, targets.ArgoCDTarget, byDir["gitops/argocd/app-of-apps"].Kind)
	assert.Equal(t, targets.CRDTarget, byDir["gitops/test/crds"].Kind)

	findings, err := NewChecker(root).CheckAll()
	require.NoError(t, err)
	assert.Empty(t, findings)
}

// What a user gets wrong is reported with the kustomization, the rule and the object.
func TestCheckerReportsWhereAndWhich(t *testing.T) {
	root := manifeststest.CopyTree(t)
	// An overlay that does not build, one on the placeholder domain, one whose catalog has a bad model.
	write(t, root, "gitops/overlays/typo/kustomization.yaml", "resources:\n  - ../../bsae\n")
	write(t, root, "gitops/overlays/nodomain/kustomization.yaml", "resources:\n  - ../../base\n")
	write(t, root, "gitops/overlays/badmodel/kustomization.yaml", "resources:\n  - ../example\nconfigMapGenerator:\n  - name: litemaas-models\n    behavior: replace\n    files: [models.yaml]\n")
	write(t, root, "gitops/overlays/badmodel/models.yaml", "models:\n  - id: a\n    name: A\n    contextLength: 8\n    apiBase: ftp://a/v1\n")
	// The Application syncs a directory that is no overlay.
	app := filepath.Join(root, "gitops/argocd/app-of-apps/step-06b-private-ai-litemaas.yaml")
	data, err := os.ReadFile(app)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(app, []byte(strings.Replace(string(data), "path: gitops/overlays/example\n", "path: gitops/components\n", 1)), 0o644))

	findings, err := NewChecker(root).CheckAll()
	require.NoError(t, err)
	var lines []string
	for _, f := range findings {
		lines = append(lines, f.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"gitops/overlays/typo: kustomize build: ",
		"gitops/overlays/nodomain: apps domain: no ConfigMap cluster-settings",
		"gitops/overlays/badmodel: models catalog: gitops/overlays/badmodel/models.yaml:5: model a: field apiBase: must be an http:// or https:// URL",
		`gitops/argocd/app-of-apps: Application: Application/step-06b-private-ai-litemaas: source.path "gitops/components" is not an overlay of this tree`,
	} {
		assert.Contains(t, got, want)
	}
	for _, l := range lines {
		assert.NotContains(t, l, "gitops/overlays/example:", "the untouched overlays still pass")
	}
}
