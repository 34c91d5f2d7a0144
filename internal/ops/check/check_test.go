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

// What the cluster's admission would refuse is found before the push, offline: an overlay pinning an
// image to a moving tag (the workload admission policy of gitops/cluster-policy) and a patch giving
// a container a capability (Pod Security Admission, restricted).
func TestCheckJudgesAdmissionOffline(t *testing.T) {
	root := opstest.RepoCopy(t)
	k := filepath.Join(root, "gitops/overlays/example/kustomization.yaml")
	data, err := os.ReadFile(k)
	require.NoError(t, err)
	s := strings.Replace(string(data), "litemaas-backend\n    newTag: 0.4.0", "litemaas-backend\n    newTag: latest", 1)
	require.NotEqual(t, string(data), s, "the overlay pins the backend's tag")
	s += `
patches:
  - target: {kind: Deployment, name: frontend}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/securityContext/capabilities/add
        value: [NET_ADMIN]
`
	require.NoError(t, os.WriteFile(k, []byte(s), 0o644))
	var stdout bytes.Buffer
	err = (&Options{Root: root, Overlays: []string{"gitops/overlays/example"}}).Run(context.Background(), &stdout)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 2, ce.Count, stdout.String())
	assert.Contains(t, stdout.String(), "gitops/overlays/example: admission policy: Deployment/backend: ValidatingAdmissionPolicy 'litemaas-workloads' with binding 'litemaas-workloads' denied request: Deployment/backend: image not pinned")
	assert.Contains(t, stdout.String(), `gitops/overlays/example: Pod Security restricted: Deployment/frontend: would violate PodSecurity "restricted:latest": unrestricted capabilities (container "frontend" must not include "NET_ADMIN" in securityContext.capabilities.add)`)
}
