package argocdtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestCheckBinDir(t *testing.T) {
	full := t.TempDir()
	for _, name := range binaries {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(full, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(full, name), nil, 0o755))
	}
	partial := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(partial, "argocd"), nil, 0o755))

	tests := []struct {
		name, dir string
		want      []string // in the error, in order
	}{
		{name: "complete", dir: full},
		{name: "unset", dir: "", want: []string{"no Argo CD binary directory given", EnvBin}},
		{name: "partial", dir: partial, want: []string{"kube-controller-manager, kustomize, git-verify-wrapper.sh, manifests/crds, manifests/base/config", "hack/argocd/build.sh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckBinDir(tt.dir)
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, errMissingBinary)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

// The Route admission Argo CD's health check waits for: every ingress admits the current host.
func TestAdmitted(t *testing.T) {
	route := func(host string, ingress ...any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"host": host}}}
		if ingress != nil {
			u.Object["status"] = map[string]any{"ingress": ingress}
		}
		return u
	}
	in := func(host, status string) any {
		return map[string]any{"host": host, "conditions": []any{map[string]any{"type": "Admitted", "status": status}}}
	}
	tests := []struct {
		name  string
		route *unstructured.Unstructured
		want  bool
	}{
		{"no status", route("a.example.test"), false},
		{"admitted", route("a.example.test", in("a.example.test", "True")), true},
		{"admitted for the old host", route("b.example.test", in("a.example.test", "True")), false},
		{"rejected", route("a.example.test", in("a.example.test", "False")), false},
		{"one of two routers admitted", route("a.example.test", in("a.example.test", "True"), in("a.example.test", "False")), false},
		{"no conditions", route("a.example.test", map[string]any{"host": "a.example.test"}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, admitted(tt.route))
		})
	}
}
