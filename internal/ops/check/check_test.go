package check

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
)

// check names the catalog file and line a bad model is on, and exits 2.
func TestCheckNamesTheCatalogLine(t *testing.T) {
	root := opstest.RepoCopy(t)
	models := filepath.Join(root, "gitops/base/models.yaml")
	data, err := os.ReadFile(models)
	require.NoError(t, err)
	line := strings.Count(string(data), "\n") + 1
	require.NoError(t, os.WriteFile(models, append(data, "  - id: llama-3-8b\n    name: Llama\n    contextLength: 8192\n    apiBase: ftp://llm.example.net/v1\n"...), 0o644))
	var stdout, stderr bytes.Buffer
	code := (&Options{Root: root, Overlays: []string{"gitops/overlays/example"}}).Run(context.Background(), &stdout)
	require.Error(t, code)
	var ce *Error
	require.ErrorAs(t, code, &ce)
	assert.Equal(t, cli.ExitUsage, ce.ExitCode())
	assert.Contains(t, stdout.String(), "gitops/overlays/example: models catalog: gitops/base/models.yaml:"+strconv.Itoa(line+3)+": model llama-3-8b: field apiBase: must be an http:// or https:// URL")
	assert.Empty(t, stderr.String())

	err = (&Options{Root: root, Overlays: []string{"gitops/overlays/nope"}}).Run(context.Background(), &stdout)
	assert.ErrorContains(t, err, "gitops/overlays/nope is not a kustomization under gitops/overlays or gitops/clusters")

	// A kustomization file that is not YAML: exit 2, naming it.
	broken := filepath.Join(root, "gitops/overlays/broken/kustomization.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(broken), 0o755))
	require.NoError(t, os.WriteFile(broken, []byte("resources: [../example\n"), 0o644))
	err = (&Options{Root: root}).Run(context.Background(), &stdout)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, cli.ExitUsage, ce.ExitCode())
	assert.ErrorContains(t, err, "gitops/overlays/broken/kustomization.yaml")
}
