package initoverlay

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
)

func TestInitOverlayRejectsBadInput(t *testing.T) {
	root := opstest.RepoCopy(t)
	tests := []struct{ name, overlay, domain, want string }{
		{"bad name", "My_Cluster", "apps.x.example.com", `overlay name "My_Cluster"`},
		{"URL instead of domain", "x", "https://apps.x.example.com", "is not a DNS domain"},
		{"exists", "example", "apps.x.example.com", "gitops/overlays/example already exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Create(root, tt.overlay, tt.domain)
			assert.ErrorContains(t, err, tt.want)
		})
	}
	_, err := os.Stat(filepath.Join(root, "gitops/overlays/x"))
	assert.True(t, os.IsNotExist(err), "nothing left behind")
}
