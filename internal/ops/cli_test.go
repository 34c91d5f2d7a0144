package ops

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every command has its own --help, exit 0, with its flags.
func TestCommandHelp(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"check":    {"-overlay value"},
		"deploy":   {"-init-overlay string", "-domain string", "-repo-url string", "-context string", "-v\t"},
		"verify":   {"-namespace string", "-catalog string", "-insecure"},
		"undeploy": {"-cluster", "-wait duration"},
		"restore":  {"-from string", "-to-url string", "PGPASSWORD"},
	} {
		t.Run(cmd, func(t *testing.T) {
			for _, args := range [][]string{{cmd, "--help"}, {"help", cmd}} {
				var stdout, stderr bytes.Buffer
				code := Main(context.Background(), args, bytes.NewReader(nil), &stdout, &stderr)
				assert.Equal(t, ExitOK, code, stderr.String())
				assert.True(t, strings.HasPrefix(stdout.String(), "Usage: litemaas-ops "+cmd+" "), stdout.String())
				for _, f := range flags {
					assert.Contains(t, stdout.String(), f)
				}
				assert.NotContains(t, stdout.String(), "litemaas-ops --version", "not the global usage")
			}
		})
	}
	var stdout bytes.Buffer
	assert.Equal(t, ExitOK, Main(context.Background(), []string{"--version"}, nil, &stdout, &stdout))
	assert.Contains(t, stdout.String(), "litemaas-ops ")
	assert.Contains(t, stdout.String(), "(commit ")
}

// --init-overlay with --domain needs no cluster: the kubeconfig here points nowhere.
func TestInitOverlayWithoutACluster(t *testing.T) {
	root := repoCopy(t)
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "no-such-kubeconfig"))
	t.Chdir(root)
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"deploy", "--init-overlay", "other", "--domain", "apps.other.example.com"}, bytes.NewReader(nil), &stdout, &stderr)
	require.Equal(t, ExitOK, code, stderr.String())
	assert.Contains(t, stdout.String(), "Created gitops/overlays/other for apps domain apps.other.example.com")
	data, err := os.ReadFile(filepath.Join(root, "gitops/overlays/other/settings/cluster-settings.yaml"))
	require.NoError(t, err)
	assert.Contains(t, string(data), "appsDomain: apps.other.example.com")

	// The new overlay passes the check as it is.
	stdout.Reset()
	code = Main(context.Background(), []string{"check", "--overlay", "gitops/overlays/other"}, nil, &stdout, &stderr)
	assert.Equal(t, ExitOK, code, stdout.String())
	assert.Contains(t, stdout.String(), "ok   gitops/overlays/other (overlay, ")
}
