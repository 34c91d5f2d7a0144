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

// TestCLI runs the command line entry point with a kubeconfig file, as `make verify` does.
func TestCLI(t *testing.T) {
	setupCluster(t)
	ns := srv.CreateNamespace(t, "cli")
	populateNamespace(t, ns, testDomain)
	writeJobStatus(t, ns, "succeeded", goodModels)
	t.Setenv("KUBECONFIG", srv.WriteKubeconfig(t, srv.Config))

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"verify", []string{"verify", "--namespace", ns, "--catalog", "testdata/models.yaml", "--skip-routes"}, ExitOK, "verify: all", ""},
		{"verify fails", []string{"verify", "--namespace", ns, "--catalog", "testdata/does-not-exist.yaml", "--skip-routes"}, ExitFailed, "cannot read testdata/does-not-exist.yaml", "verify: 1 problem"},
		{"help", []string{"help"}, ExitOK, "Usage:", ""},
		{"no command", nil, ExitUsage, "", "no command given"},
		{"unknown command", []string{"destroy"}, ExitUsage, "", `unknown command "destroy"`},
		{"unknown flag", []string{"verify", "--nope"}, ExitUsage, "", "flag provided but not defined: -nope"},
		{"restore without arguments", []string{"restore"}, ExitUsage, "", "restore needs --from and --to-url"},
		{"restore with a bad URL", []string{"restore", "--from", ".", "--to-url", "mysql://x"}, ExitFailed, "", "--to-url must look like postgresql://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tt.args, bytes.NewReader(nil), &stdout, &stderr)
			t.Logf("litemaas-ops %v -> %d\nstdout:\n%s\nstderr:\n%s", tt.args, code, stdout.String(), stderr.String())
			assert.Equal(t, tt.wantCode, code)
			assert.Contains(t, stdout.String(), tt.wantOut)
			assert.Contains(t, stderr.String(), tt.wantErr)
		})
	}
}

func TestJobImageFlagNeedsInitOverlay(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"deploy", "--job-image", "ghcr.io/me/litemaas-sync:1"}, nil, &stdout, &stderr)
	assert.Equal(t, ExitUsage, code)
	assert.Contains(t, stderr.String(), "--job-image goes with --init-overlay")
}

// TestCLIDeployFromASubdirectory: the command line finds the checkout's root and the default overlay from
// anywhere inside it; preflight stops at the placeholder repoURL before anything is applied.
func TestCLIDeployFromASubdirectory(t *testing.T) {
	setupCluster(t)
	root := repoCopy(t)
	t.Setenv("KUBECONFIG", srv.WriteKubeconfig(t, srv.Config))
	t.Chdir(filepath.Join(root, "gitops", "overlays"))
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"deploy", "--timeout", "1s"}, bytes.NewReader(nil), &stdout, &stderr)
	t.Logf("litemaas-ops deploy (in gitops/overlays) -> %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	assert.Equal(t, ExitFailed, code)
	o := squeeze(stdout.String())
	assert.Contains(t, o, "overlay domain OK gitops/overlays/example is set for apps.cluster.example.com")
	assert.Contains(t, o, "is the placeholder")
	assert.Contains(t, stderr.String(), "litemaas-ops: preflight: 1 problem (see the table above)")
	assert.NotContains(t, o, "Applying")
}
