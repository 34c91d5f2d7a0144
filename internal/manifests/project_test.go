package manifests

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

// The AppProject allows exactly what the tree applies through Argo CD; each way of widening it, or of
// leaving it, is reported.
func TestProject(t *testing.T) {
	root := manifeststest.RepoRoot(t)
	c := checker
	all, err := targets.Targets(root)
	require.NoError(t, err)
	proj, err := ReadProject(root)
	require.NoError(t, err)
	require.Empty(t, c.checkProjectObject(proj, all), "the tree's AppProject")

	entry := func(group, kind string) any { return map[string]any{"group": group, "kind": kind} }
	cases := []struct {
		name string
		edit func(p *unstructured.Unstructured)
		want string
	}{
		{"a ClusterRoleBinding allowed", func(p *unstructured.Unstructured) {
			p.Object["spec"].(map[string]any)["clusterResourceWhitelist"] = append(objects.ListAt(p.Object, "spec", "clusterResourceWhitelist"), entry("rbac.authorization.k8s.io", "ClusterRoleBinding"))
		}, "allows ClusterRoleBinding.rbac.authorization.k8s.io: a commit could then grant itself any right"},
		{"a wildcard", func(p *unstructured.Unstructured) {
			p.Object["spec"].(map[string]any)["clusterResourceWhitelist"] = []any{entry("*", "*")}
		}, "has the wildcard"},
		{"a kind the tree uses left out", func(p *unstructured.Unstructured) {
			p.Object["spec"].(map[string]any)["clusterResourceWhitelist"] = []any{}
		}, "the tree applies the cluster-scoped kind Namespace through Argo CD but spec.clusterResourceWhitelist does not allow it"},
		{"a kind the tree does not use", func(p *unstructured.Unstructured) {
			p.Object["spec"].(map[string]any)["namespaceResourceWhitelist"] = append(objects.ListAt(p.Object, "spec", "namespaceResourceWhitelist"), entry("", "Secret"))
		}, "spec.namespaceResourceWhitelist allows Secret, which no overlay renders"},
		{"any source", func(p *unstructured.Unstructured) {
			manifeststest.Set(t, p.Object, []any{"*"}, "spec", "sourceRepos")
		}, "spec.sourceRepos [*], want exactly the repoURL of gitops/argocd/root-app.yaml"},
		{"another namespace", func(p *unstructured.Unstructured) {
			manifeststest.Set(t, p.Object, []any{map[string]any{"server": "*", "namespace": "*"}}, "spec", "destinations")
		}, `spec.destinations[0]: namespace "*", want litemaas`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := proj.DeepCopy()
			tc.edit(p)
			found := c.checkProjectObject(p, all)
			assert.True(t, containsSub(found, tc.want), "want a finding containing %q, got %q", tc.want, found)
		})
	}
}

func containsSub(ps []string, sub string) bool {
	return slices.ContainsFunc(ps, func(p string) bool { return strings.Contains(p, sub) })
}

// An Application or ApplicationSet in project default, or at HEAD, is reported.
func TestApplicationSource(t *testing.T) {
	root := manifeststest.RepoRoot(t)
	app, err := readObjectFile(root, rootAppFile)
	require.NoError(t, err)
	assert.Empty(t, checkApplicationSource(app))

	def := app.DeepCopy()
	manifeststest.Set(t, def.Object, "default", "spec", "project")
	assert.Contains(t, checkApplicationSource(def), `Application/litemaas-root: project "default": use project litemaas (gitops/argocd/project.yaml), which limits what a commit can apply`)

	head := app.DeepCopy()
	manifeststest.Set(t, head.Object, "HEAD", "spec", "source", "targetRevision")
	assert.Contains(t, checkApplicationSource(head), `Application/litemaas-root: revision "HEAD" follows the repository's default branch: name a branch (main) or a tag`)

	objs := manifeststest.Rendered(t, "gitops/argocd/fleet")
	fleet := manifeststest.MustFind(t, objs, "ApplicationSet", "litemaas-fleet")
	assert.Empty(t, checkApplicationSetSource(fleet))
	bad := fleet.DeepCopy()
	manifeststest.Set(t, bad.Object, "default", "spec", "template", "spec", "project")
	gens := objects.ListAt(bad.Object, "spec", "generators")
	gens[0].(map[string]any)["git"].(map[string]any)["revision"] = "HEAD"
	found := checkApplicationSetSource(bad)
	assert.Contains(t, found, `ApplicationSet/litemaas-fleet template: project "default": use project litemaas (gitops/argocd/project.yaml), which limits what a commit can apply`)
	assert.Contains(t, found, `ApplicationSet/litemaas-fleet generators[0].git: revision "HEAD" follows the repository's default branch: name a branch (main) or a tag`)
}
