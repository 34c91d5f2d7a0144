package deploy

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

func TestAdvisoryVersion(t *testing.T) {
	tests := []struct{ tag, want string }{
		{"0.4.0", "affected"},
		{"v0.4.0", "affected"},
		{"0.4.0-rc.1", "affected"},
		{"0.3.9", "affected"},
		{"0.1.0", "affected"},
		{"0.4.1", "fixed"},
		{"0.5.0", "fixed"},
		{"1.0.0", "fixed"},
		{"latest", "unknown"},
		{"main-1a2b3c4", "unknown"},
		{"0.4", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.tag, func(t *testing.T) { assert.Equal(t, tt.want, advisoryVersion(tt.tag)) })
	}
}

func TestSplitImage(t *testing.T) {
	tests := []struct{ ref, name, tag string }{
		{"quay.io/rh-aiservices-bu/litemaas-backend:0.4.0", "quay.io/rh-aiservices-bu/litemaas-backend", "0.4.0"},
		{"registry:5000/litemaas-backend:0.5.0", "registry:5000/litemaas-backend", "0.5.0"},
		{"quay.io/rh-aiservices-bu/litemaas-backend@sha256:0123", "quay.io/rh-aiservices-bu/litemaas-backend", ""},
		{"quay.io/rh-aiservices-bu/litemaas-backend:0.4.0@sha256:0123", "quay.io/rh-aiservices-bu/litemaas-backend", "0.4.0"},
	}
	for _, tt := range tests {
		n, tag := splitImage(tt.ref)
		assert.Equal(t, tt.name, n, tt.ref)
		assert.Equal(t, tt.tag, tag, tt.ref)
	}
}

func TestAdvisoryRow(t *testing.T) {
	root, err := tree.FindRoot(".")
	require.NoError(t, err)
	tests := []struct {
		name, overlay, status string
		want                  []string
	}{
		{"the example pins 0.4.0 behind the guard", filepath.Join(root, "gitops/overlays/example"), report.StatusOK,
			[]string{"litemaas-backend:0.4.0", tree.AdvisoryURL, "mitigated: the component backend-guard"}},
		{"0.4.0 without the guard", "testdata/unguarded-overlay", report.StatusWarn,
			[]string{"litemaas-backend:0.4.0", tree.AdvisoryURL, "add the component backend-guard", "testdata/unguarded-overlay/kustomization.yaml"}},
		{"a fixed build", "testdata/fixed-backend-overlay", report.StatusOK, []string{"registry.example.com/litemaas/litemaas-backend:main-4f1e2d3 is a custom build"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := advisoryRow(tt.overlay, filepath.ToSlash(strings.TrimPrefix(tt.overlay, root+"/")))
			t.Logf("%+v", r)
			assert.Equal(t, tt.status, r.Status)
			assert.Equal(t, "advisory litemaas#137", r.Check)
			for _, w := range tt.want {
				assert.Contains(t, r.Detail, w)
			}
		})
	}
}
