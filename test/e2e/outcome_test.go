package e2e

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/litemaas-gitops/litemaas-gitops/internal/devstack"
)

// statusData reads the status ConfigMap the job published.
func statusData(t *testing.T, s *devstack.Stack) map[string]string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	cm, err := cs.CoreV1().ConfigMaps(s.Namespace).Get(context.Background(), "litemaas-sync-status", metav1.GetOptions{})
	require.NoError(t, err)
	return cm.Data
}

// After a good run, a broken catalog: the status no longer says the good run's "succeeded", it says
// this run failed, why, and where in the catalog.
func TestBrokenCatalogRunIsTheStatus(t *testing.T) {
	s := newStack(t, devstack.Options{})
	ctx := context.Background()
	require.NoError(t, s.MarkReady(ctx))
	require.Equal(t, 0, runJob(t, ctx, s).code)
	require.Equal(t, "succeeded", statusData(t, s)["result"])

	data, err := os.ReadFile(s.CatalogPath())
	require.NoError(t, err)
	broken := strings.Replace(string(data), "contextLength: 131072", "contextLength: lots", 1)
	require.NotEqual(t, string(data), broken)
	require.NoError(t, os.WriteFile(s.CatalogPath(), []byte(broken), 0o644))
	// As in the Job: the Event goes to the Job these name.
	r := runJob(t, ctx, s, "JOB_NAME=litemaas-sync", "JOB_UID=5f0c2c7e-0000-4000-8000-000000000021")
	require.Equal(t, 2, r.code, r.stderr)

	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	evs, err := cs.EventsV1().Events(s.Namespace).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	var notes []string
	for _, e := range evs.Items {
		if e.Regarding.Name == "litemaas-sync" && e.Type == "Warning" && e.Reason == "Failed" {
			notes = append(notes, e.Note)
		}
	}
	require.Len(t, notes, 1, "one Warning Event on the Job")
	t.Logf("the Job's Event: %s", notes[0])
	assert.True(t, strings.HasPrefix(notes[0], "litemaas-sync (InvalidCatalog, exit 2, file "+s.CatalogPath()+", model devstral-2, field contextLength): failed: nothing written: "), notes[0])

	st := statusData(t, s)
	t.Logf("status after the broken-catalog run:\n%s", formatData(st))
	assert.Equal(t, "failed", st["result"])
	assert.Equal(t, "InvalidCatalog", st["reason"])
	assert.Equal(t, "2", st["exitCode"])
	assert.Equal(t, s.CatalogPath(), st["file"])
	assert.Equal(t, "devstral-2", st["model"])
	assert.Equal(t, "contextLength", st["field"])
	assert.Contains(t, st["summary"], "failed: nothing written: ")
	assert.Contains(t, st["error"], "model devstral-2: field contextLength")
	assert.Equal(t, "[]", st["models.json"], "no model is claimed to be fine")
	assert.NotContains(t, st["summary"], "done:")
}

func formatData(d map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"result", "reason", "exitCode", "setting", "file", "model", "field", "summary", "error", "passes", "finishedAt", "models.json"} {
		if v, ok := d[k]; ok {
			b.WriteString("  " + k + ": " + v + "\n")
		}
	}
	return b.String()
}

// An error no wait can fix ends the run in seconds with exit 2, naming the setting; the stack is
// left not ready, so a job that waited would run into WAIT_TIMEOUT (60 s here) instead.
func TestPermanentErrorsFailFast(t *testing.T) {
	ctx := context.Background()
	const limit = 15 * time.Second
	check := func(t *testing.T, s *devstack.Stack, r result, reason, want string) {
		t.Helper()
		t.Logf("exit %d after %s: %s", r.code, r.duration.Round(time.Millisecond), lastLine(r.stderr))
		assert.Equal(t, 2, r.code, r.stderr)
		assert.Less(t, r.duration, limit, "failed fast")
		assert.Contains(t, r.stderr, want)
		assert.Zero(t, s.Proxy.Writes())
		st := statusData(t, s)
		assert.Equal(t, "failed", st["result"])
		assert.Equal(t, reason, st["reason"])
		assert.Contains(t, st["setting"], strings.SplitN(want, " ", 2)[0])
		assertNoSecrets(t, s, r)
	}

	t.Run("wrong database password", func(t *testing.T) {
		if pg.External() {
			t.Skip("needs the test server's pg_hba.conf")
		}
		s := newStack(t, devstack.Options{})
		u := passwordRole(t, s)
		u.User = url.UserPassword(u.User.Username(), "not-the-password")
		r := runJob(t, ctx, s, "DATABASE_URL="+u.String(), "WAIT_TIMEOUT=60s")
		check(t, s, r, "DatabaseAuthenticationFailed", "DATABASE_URL user or password")
		assert.Contains(t, r.stderr, "28P01")
		assert.NotContains(t, r.stderr, "not-the-password")
	})
	t.Run("wrong master key", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		// The backend's copy is not compared, so the run gets as far as LiteLLM.
		r := runJob(t, ctx, s, "LITELLM_MASTER_KEY=sk-not-the-master-key-0000", "BACKEND_LITELLM_API_KEY=", "WAIT_TIMEOUT=60s")
		check(t, s, r, "LiteLLMUnauthorized", "LITELLM_MASTER_KEY")
		assert.Contains(t, r.stderr, "401")
	})
	t.Run("untrusted LiteLLM certificate", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		// The LiteLLM double behind TLS with a self-signed certificate the job does not trust.
		tlsLiteLLM := httptest.NewUnstartedServer(s.Proxy)
		tlsLiteLLM.Config.ErrorLog = log.New(io.Discard, "", 0)
		tlsLiteLLM.StartTLS()
		t.Cleanup(tlsLiteLLM.Close)
		r := runJob(t, ctx, s, "LITELLM_URL="+tlsLiteLLM.URL, "WAIT_TIMEOUT=60s")
		check(t, s, r, "UntrustedCertificate", "the CA trusted for LITELLM_URL")
		assert.Contains(t, r.stderr, "x509")
	})
}

// passwordRole creates a login role with a password and makes the test server ask for it (scram) on
// TCP for that role only, as a production server does; it returns the role's URL with the right password.
func passwordRole(t *testing.T, s *devstack.Stack) *url.URL {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.PG.URL("postgres"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	role := "litemaas_pw_" + strings.ReplaceAll(s.Namespace, "-", "_")
	_, err = conn.Exec(ctx, `CREATE ROLE `+pgx.Identifier{role}.Sanitize()+` LOGIN PASSWORD 'the-right-password'`)
	require.NoError(t, err)
	var hbaFile string
	require.NoError(t, conn.QueryRow(ctx, `SHOW hba_file`).Scan(&hbaFile))
	var lines []string
	require.NoError(t, conn.QueryRow(ctx, `SELECT regexp_split_to_array(replace(pg_read_file($1), E'\t', ' '), E'\n')`, hbaFile).Scan(&lines))
	rule := "host all " + role + " 127.0.0.1/32 scram-sha-256"
	_, err = conn.Exec(ctx, writeLines(hbaFile, append([]string{rule}, lines...)))
	require.NoError(t, err)
	var ok bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT pg_reload_conf()`).Scan(&ok))
	require.True(t, ok)
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, s.PG.URL("postgres"))
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, writeLines(hbaFile, lines))
		_, _ = conn.Exec(ctx, `SELECT pg_reload_conf()`)
	})
	u, err := url.Parse(s.DatabaseURL)
	require.NoError(t, err)
	u.User = url.UserPassword(role, "the-right-password")
	// The rule is in force once the reload is: the right password must connect, a wrong one not.
	require.Eventually(t, func() bool {
		bad := *u
		bad.User = url.UserPassword(role, "x")
		c, err := pgx.Connect(ctx, bad.String())
		if err == nil {
			c.Close(ctx)
			return false
		}
		return true
	}, 10*time.Second, 100*time.Millisecond, "pg_hba.conf reloaded")
	return u
}

// writeLines is the SQL that makes the server write lines to file (COPY takes no parameters).
func writeLines(file string, lines []string) string {
	quoted := make([]string, len(lines))
	for i, l := range lines {
		quoted[i] = quoteLiteral(l)
	}
	return `COPY (SELECT unnest(ARRAY[` + strings.Join(quoted, ",") + `]::text[])) TO ` + quoteLiteral(file)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
