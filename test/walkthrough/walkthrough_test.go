// Package walkthrough performs the README's first steps of a fork on a copy of the tree: a new overlay
// for another cluster (Option B), a sixth model (Add or change a model), the check a user runs before
// pushing. The README changes with the tree; this test keeps the two in step.
package walkthrough

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/check"
)

const (
	overlay = "gitops/overlays/mycluster"
	domain  = "apps.mycluster.example.org"
	forkURL = "https://github.com/someone/litemaas-gitops.git"
)

// The sixth model: only the required fields, an apiBase outside the cluster.
const sixthModel = `  - id: llama-3-8b
    name: Llama 3 8B
    contextLength: 8192
    apiBase: https://llm.example.net/v1
`

// A patch a user might paste into the overlay: a fixed UID, which OpenShift's restricted-v2 refuses
// (it assigns one from the namespace's range). `make check` judges it offline; what Pod Security
// Admission judges (a privileged container, say) only the tests' dry run against an apiserver does.
const fixedUIDPatch = `
patches:
  - target:
      kind: Deployment
      name: backend
    patch: |-
      - op: add
        path: /spec/template/spec/securityContext/runAsUser
        value: 1000
`

func TestForkWalkthrough(t *testing.T) {
	src, err := manifests.RepoRoot()
	require.NoError(t, err)

	// The steps below are the README's; if the README no longer says them, this test is out of date.
	readme := read(t, filepath.Join(src, "README.md"))
	for _, step := range []string{
		"Copy `gitops/overlays/example/` to `gitops/overlays/<your-cluster>/`", "`appsDomain` in its `settings/cluster-settings.yaml`",
		"Point `repoURL` (and `path`)", "Edit `gitops/base/models.yaml`", "make check",
	} {
		require.True(t, strings.Contains(readme, step), "README.md no longer says %q, a step of this walkthrough", step)
	}

	root := t.TempDir()
	for _, dir := range []string{"gitops", "images"} {
		copyTree(t, filepath.Join(src, dir), filepath.Join(root, dir))
	}

	// Option B, step 1: a copy of the example overlay with this cluster's apps domain.
	copyTree(t, filepath.Join(root, "gitops/overlays/example"), filepath.Join(root, overlay))
	settings := filepath.Join(root, overlay, "settings/cluster-settings.yaml")
	replace(t, settings, "appsDomain: apps.cluster.example.com", "appsDomain: "+domain)
	// Step 2: the Applications (and the AppProject's sourceRepos) point at the fork and at the new overlay.
	for _, f := range []string{"gitops/argocd/root-app.yaml", "gitops/argocd/app-of-apps/step-06b-private-ai-litemaas.yaml", "gitops/argocd/project.yaml"} {
		replace(t, filepath.Join(root, f), "https://github.com/YOUR-ORG/litemaas-gitops.git", forkURL)
	}
	replace(t, filepath.Join(root, "gitops/argocd/app-of-apps/step-06b-private-ai-litemaas.yaml"), "path: gitops/overlays/example\n", "path: "+overlay+"\n")
	// Add a model.
	models := filepath.Join(root, "gitops/base/models.yaml")
	require.NoError(t, os.WriteFile(models, append([]byte(read(t, models)), sixthModel...), 0o644))

	// The new overlay is found like the examples, with its own cluster part, settings and catalog.
	tg, err := manifests.FindTarget(root, overlay)
	require.NoError(t, err)
	assert.Equal(t, manifests.Target{Dir: overlay, Kind: manifests.AppTarget, Cluster: overlay + "/cluster",
		Settings: overlay + "/settings/cluster-settings.yaml", Catalog: "gitops/base/models.yaml"}, tg)

	// make check: the whole tree, then the overlay alone.
	var out bytes.Buffer
	err = (&check.Options{Root: root}).Run(context.Background(), &out)
	t.Logf("check:\n%s", out.String())
	require.NoError(t, err)
	assert.Contains(t, out.String(), "ok   "+overlay+" (overlay, ")
	assert.Contains(t, out.String(), "catalog gitops/base/models.yaml (6 models), apps domain "+domain)
	assert.Contains(t, out.String(), "ok   "+overlay+"/cluster (cluster part")

	// A fixed UID in that overlay fails the check, naming the overlay, the object and the rule.
	kust := filepath.Join(root, overlay, "kustomization.yaml")
	require.NoError(t, os.WriteFile(kust, append([]byte(read(t, kust)), fixedUIDPatch...), 0o644))
	out.Reset()
	err = (&check.Options{Root: root, Overlays: []string{overlay}}).Run(context.Background(), &out)
	t.Logf("check --overlay %s:\n%s", overlay, out.String())
	var ce *check.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, ops.ExitUsage, ce.ExitCode(), "problems found exit 2")
	assert.Contains(t, out.String(), "FAIL "+overlay+" (overlay, ")
	assert.Contains(t, out.String(), overlay+": restricted-v2: Deployment/backend: pod securityContext.runAsUser is set")
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if strings.HasPrefix(line, overlay+": ") {
			assert.Contains(t, line, "Deployment/backend", "only the patched object is reported")
		}
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(data)
}

func replace(t *testing.T, path, old, new string) {
	t.Helper()
	s := read(t, path)
	require.Contains(t, s, old, "%s no longer holds %q", path, old)
	require.NoError(t, os.WriteFile(path, []byte(strings.ReplaceAll(s, old, new)), 0o644))
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	require.NoError(t, err)
}
