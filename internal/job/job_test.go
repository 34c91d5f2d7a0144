package job

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCode(t *testing.T) {
	assert.Equal(t, ExitOK, Code(nil))
	assert.Equal(t, ExitFailed, Code(errors.New("x")))
	assert.Equal(t, ExitInvalid, Code(invalid(errors.New("x"))))
	assert.Equal(t, ExitTimeout, Code(&ExitError{Code: ExitTimeout, Err: errors.New("x")}))
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(good, []byte("models:\n- id: a\n  name: A\n  contextLength: 8\n  apiBase: http://a/v1\n"), 0o644))
	require.NoError(t, os.WriteFile(bad, []byte("models:\n- id: a\n  name: A\n"), 0o644))

	var out bytes.Buffer
	require.NoError(t, (&ValidateOptions{Files: []string{good}}).Run(context.Background(), &out))
	assert.Equal(t, good+": valid, 1 models\n", out.String())

	err := (&ValidateOptions{Files: []string{good, bad}}).Run(context.Background(), &out)
	assert.Equal(t, ExitInvalid, Code(err))
	assert.Contains(t, err.Error(), bad+":2: model a: field contextLength: required")

	assert.Equal(t, ExitInvalid, Code((&ValidateOptions{}).Run(context.Background(), &out)))
}

func TestReconcileRefusesBadInputBeforeConnecting(t *testing.T) {
	dir := t.TempDir()
	catalog := filepath.Join(dir, "models.yaml")
	require.NoError(t, os.WriteFile(catalog, []byte("models:\n- id: a\n  name: A\n  contextLength: 8\n  apiBase: http://a/v1\n  apiKeyEnv: A_KEY\n"), 0o644))
	termLog := filepath.Join(dir, "termination-log")
	require.NoError(t, os.WriteFile(termLog, nil, 0o644))
	env := map[string]string{
		"MODELS_FILE": catalog,
		// Nothing listens here: the run must fail on its input before it tries.
		"DATABASE_URL":       "postgresql://u:hunter2@127.0.0.1:1/db",
		"LITELLM_URL":        "http://127.0.0.1:1",
		"LITELLM_MASTER_KEY": "sk-secret-master",
	}
	tests := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"missing API key variable", nil, "model a: field apiKeyEnv: environment variable A_KEY is not set"},
		{"bad WAIT_FOR", map[string]string{"A_KEY": "k", "WAIT_FOR": "pod/x"}, "WAIT_FOR"},
		{"bad CloudNativePG Cluster in WAIT_FOR", map[string]string{"A_KEY": "k", "WAIT_FOR": "cluster.postgresql.cnpg.io/Bad_Name,deployment/litellm"}, `WAIT_FOR: workload "cluster.postgresql.cnpg.io/Bad_Name": invalid Cluster name`},
		{"master key without sk-", map[string]string{"A_KEY": "k", "LITELLM_MASTER_KEY": "secret-master"}, "LITELLM_MASTER_KEY must start with sk-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tt.set {
				e[k] = v
			}
			var out, logs bytes.Buffer
			err := (&ReconcileOptions{Env: envconfig.MapLookuper(e), Log: &logs, TerminationLog: termLog}).Run(context.Background(), &out)
			require.Error(t, err)
			assert.Equal(t, ExitInvalid, Code(err), err.Error())
			assert.Contains(t, err.Error(), tt.want)
			msg, rerr := os.ReadFile(termLog)
			require.NoError(t, rerr)
			assert.Contains(t, string(msg), "litemaas-sync: failed: ")
			for _, secret := range []string{"hunter2", "secret-master"} {
				assert.NotContains(t, err.Error()+string(msg)+logs.String()+out.String(), secret)
			}
		})
	}
}

// The command line: per-command --help with the variables, and every missing variable in one run.
func TestProgram(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		code        int
		out, errOut []string
	}{
		{"reconcile --help", []string{"reconcile", "--help"}, ExitOK, []string{"Usage: litemaas-sync reconcile [--dry-run]", "DATABASE_URL", "; required", "WAIT_TIMEOUT", "; default 10m", "-dry-run"}, nil},
		{"secrets --help", []string{"secrets", "--help"}, ExitOK, []string{"Usage: litemaas-sync secrets\n", "OAUTH_MODE", "; default oauthclient"}, nil},
		{"validate --help", []string{"validate", "-h"}, ExitOK, []string{"Usage: litemaas-sync validate FILE..."}, nil},
		{"help", []string{"help"}, ExitOK, []string{"litemaas-sync reconcile", "litemaas-sync --version"}, nil},
		{"version", []string{"--version"}, ExitOK, []string{"litemaas-sync ", "commit "}, nil},
		{"reconcile with nothing set", []string{"reconcile"}, ExitInvalid, nil, []string{
			"DATABASE_URL is not set (required)", "LITELLM_URL is not set (required)", "LITELLM_MASTER_KEY is not set (required)", "set MODELS_FILE",
		}},
		{"validate without files", []string{"validate"}, ExitInvalid, nil, []string{"litemaas-sync validate: name at least one catalog file"}},
		{"secrets with an argument", []string{"secrets", "x"}, ExitInvalid, nil, []string{`unexpected argument "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Program(envconfig.MapLookuper(map[string]string{}), &stdout, &stderr).Main(context.Background(), tt.args)
			assert.Equal(t, tt.code, code, stderr.String())
			for _, w := range tt.out {
				assert.Contains(t, stdout.String(), w)
			}
			for _, w := range tt.errOut {
				assert.Contains(t, stderr.String(), w)
			}
		})
	}
}
