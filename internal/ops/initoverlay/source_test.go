package initoverlay

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
)

// WriteSource writes the fork and the revision into every file of gitops/argocd, keeping comments, and
// the result passes the policy checks on Applications and the AppProject.
func TestInitSource(t *testing.T) {
	root := opstest.RepoCopyOf(t, "gitops", "images")
	const fork = "https://github.com/someone/litemaas-gitops.git"
	var out bytes.Buffer
	changed, err := WriteSource(root, SourceOptions{In: strings.NewReader(fork + "\nv1.2.0\n"), Out: &out})
	require.NoError(t, err)
	assert.ElementsMatch(t, argoFiles, changed)
	assert.Contains(t, out.String(), "Your fork's URL")
	assert.Contains(t, out.String(), "Branch or tag Argo CD syncs (never HEAD; empty keeps main)")
	for _, f := range argoFiles {
		b, err := os.ReadFile(filepath.Join(root, f))
		require.NoError(t, err)
		assert.NotContains(t, string(b), "YOUR-ORG/litemaas-gitops.git\n", f)
		assert.Contains(t, string(b), fork, f)
		assert.Contains(t, string(b), "# ", "%s keeps its comments", f)
	}
	root2, rev := currentSource(root)
	assert.Equal(t, fork, root2)
	assert.Equal(t, "v1.2.0", rev)
	proj, err := manifests.ReadProject(root)
	require.NoError(t, err)
	assert.Equal(t, []any{fork}, proj.Object["spec"].(map[string]any)["sourceRepos"])
	fleet, err := os.ReadFile(filepath.Join(root, "gitops/argocd/fleet/litemaas-fleet.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(fleet), "revision: v1.2.0\n")
	assert.Contains(t, string(fleet), "targetRevision: v1.2.0\n")

	// The whole tree still passes make check's rules on the Applications and the project.
	c := manifests.NewChecker(root)
	ts, err := manifests.Targets(root)
	require.NoError(t, err)
	for _, f := range c.CheckTree(ts) {
		assert.NotContains(t, []string{"AppProject", "root Application"}, f.Rule, f.String())
	}

	// HEAD is refused, and nothing is written.
	_, err = WriteSource(root, SourceOptions{Revision: "HEAD", Yes: true})
	require.ErrorContains(t, err, "--revision: revision HEAD follows the repository's default branch")
	_, err = WriteSource(root, SourceOptions{Revision: "main..x", Yes: true})
	require.ErrorContains(t, err, `revision "main..x" is not a branch or tag name`)
	_, rev = currentSource(root)
	assert.Equal(t, "v1.2.0", rev)
}
