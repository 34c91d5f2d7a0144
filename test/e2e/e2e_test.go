// Package e2e runs litemaas-sync exactly as the rendered PostSync Job declares it, against a real
// kube-apiserver (the overlay applied, the Job's ServiceAccount token as identity), a real PostgreSQL
// with the LiteMaaS schema, and the LiteLLM admin-API double; then it breaks things.
package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/litemaas-gitops/litemaas-gitops/internal/devstack"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/verify"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/store"
)

var (
	kube   *kapitest.Server
	pg     *pgtest.Server
	binary string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "litemaas-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "litemaas-sync")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/litemaas-sync")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building litemaas-sync: %v\n%s", err, out)
		return 1
	}
	pg = pgtest.MustStart(m)
	defer pg.Stop()
	kube = kapitest.MustStart(m)
	defer kube.Stop()
	return m.Run()
}

var nsCounter struct {
	sync.Mutex
	n int
}

func newStack(t *testing.T, o devstack.Options) *devstack.Stack {
	t.Helper()
	nsCounter.Lock()
	nsCounter.n++
	o.Namespace = fmt.Sprintf("litemaas-e2e-%d-%d", time.Now().Unix()%100000, nsCounter.n)
	nsCounter.Unlock()
	o.Kube, o.PG = kube, pg
	s, err := devstack.Start(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

type result struct {
	code     int
	stdout   string
	stderr   string
	duration time.Duration
	err      error
}

// started records when each command was started (*exec.Cmd to time.Time).
var started sync.Map

func runJob(t *testing.T, ctx context.Context, s *devstack.Stack, env ...string) result {
	t.Helper()
	cmd, err := s.Command(ctx, binary, env...)
	require.NoError(t, err)
	return wait(t, cmd, start(t, cmd))
}

func start(t *testing.T, cmd *exec.Cmd) *bytes.Buffer {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	require.NoError(t, cmd.Start())
	started.Store(cmd, time.Now())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return &stdout
}

func wait(t *testing.T, cmd *exec.Cmd, stdout *bytes.Buffer) result {
	t.Helper()
	r := waitResult(cmd, stdout)
	require.NoError(t, r.err)
	return r
}

func since(cmd *exec.Cmd) time.Duration {
	t, _ := started.Load(cmd)
	return time.Since(t.(time.Time))
}

// waitResult waits for cmd without failing the test, so it can run in a goroutine. The duration
// counts from the start of the process.
func waitResult(cmd *exec.Cmd, stdout *bytes.Buffer) result {
	err := cmd.Wait()
	r := result{stdout: stdout.String(), stderr: cmd.Stderr.(*bytes.Buffer).String(), duration: since(cmd)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		r.err = err
	}
	return r
}

// state checks the end state: one deployment per served model, rows a fixed point of the backend's
// sync, no secret in the output.
func assertConverged(t *testing.T, s *devstack.Stack, served []string) {
	t.Helper()
	byName := map[string][]litellm.Deployment{}
	llm := litellm.New(s.LiteLLM.URL(), s.MasterKey)
	ds, err := llm.ListModels(context.Background())
	require.NoError(t, err)
	for _, d := range ds {
		byName[d.ModelName] = append(byName[d.ModelName], d)
	}
	for _, id := range served {
		require.Len(t, byName[id], 1, "exactly one LiteLLM deployment of %s", id)
	}
	st, err := store.Open(context.Background(), s.DatabaseURL)
	require.NoError(t, err)
	defer st.Close()
	ids := make([]string, 0, len(byName))
	for id := range byName {
		ids = append(ids, id)
	}
	rows, err := st.Models(context.Background(), append(ids, served...))
	require.NoError(t, err)
	for _, id := range served {
		r, ok := rows[id]
		require.True(t, ok, "row %s", id)
		assert.Empty(t, modelsync.Drift(r, byName[id][0]), "the backend's sync would rewrite %s", id)
	}
}

var runbookModels = []string{"mistral-3-int4", "granite-8b-agent", "mistral-3-bf16", "devstral-2", "gpt-oss-20b"}

// The whole chain: the PreSync secrets Job as rendered (after the cluster-admin part), then the
// PostSync Job as rendered, waiting for the workloads, then a no-op re-run.
func TestJobAsThePostSyncHookRunsIt(t *testing.T) {
	s := newStack(t, devstack.Options{SecretsJob: binary})
	assert.Contains(t, s.SecretsSummary, "secrets: created postgres-secret")
	t.Logf("PreSync: %s", s.SecretsSummary)
	ctx := context.Background()
	cmd, err := s.Command(ctx, binary)
	require.NoError(t, err)
	out := start(t, cmd)
	done := make(chan result, 1)
	go func() { done <- waitResult(cmd, out) }()

	// The job waits for the workloads: 1.5 s later it has neither ended nor written anything.
	select {
	case r := <-done:
		t.Fatalf("the job ended before the workloads were ready (exit %d):\n%s", r.code, r.stderr)
	case <-time.After(1500 * time.Millisecond):
	}
	require.Zero(t, s.Proxy.Writes(), "nothing written to LiteLLM before the workloads are ready")
	readyAt := time.Now()
	require.NoError(t, s.MarkReady(ctx))
	r := <-done
	sinceReady := time.Since(readyAt)
	assert.GreaterOrEqual(t, r.duration, 1500*time.Millisecond, "the job waited for the workloads")
	require.Equal(t, 0, r.code, "stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	// The figure itself is a benchmark (test/bench BenchmarkReadyToDone); here it is only reported.
	t.Logf("from the last workload ready to done: %s", sinceReady.Round(time.Millisecond))
	assert.Contains(t, r.stdout, "done: litellm created=5 updated=0 unchanged=0 deleted=0; database created=5 updated=0 unchanged=0 unavailable=0; oauth_id made nullable")
	assertConverged(t, s, runbookModels)
	assertNoSecrets(t, s, r)
	t.Logf("first run:\n%s", r.stdout)

	// The status ConfigMap the job publishes for `make verify`.
	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	cm, err := cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, "litemaas-sync-status", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "succeeded", cm.Data["result"])
	assert.Contains(t, cm.Data["models.json"], `"id":"devstral-2"`)

	// Second run: nothing changes.
	s.Proxy.Reset()
	r = runJob(t, ctx, s)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "done: litellm created=0 updated=0 unchanged=5 deleted=0; database created=0 updated=0 unchanged=5 unavailable=0; oauth_id already nullable")
	// A no-op run of the binary: the readiness probe and one read, nothing else.
	assert.Equal(t, map[string]int{"GET /health/readiness": 1, "GET /model/info": 1}, s.Proxy.Counts())
	assert.Equal(t, 2, s.Proxy.Requests())
	assert.Equal(t, 0, s.Proxy.Writes())
	t.Logf("second run:\n%s", r.stdout)
}

func assertNoSecrets(t *testing.T, s *devstack.Stack, r result) {
	t.Helper()
	env, err := s.JobEnv(context.Background())
	require.NoError(t, err)
	for _, kv := range env {
		name, v, _ := strings.Cut(kv, "=")
		if name == "LITELLM_MASTER_KEY" {
			assert.NotContains(t, r.stdout+r.stderr, v, "the master key leaked")
		}
		if name == "DATABASE_URL" {
			if i := strings.Index(v, "@"); i > 0 {
				if _, pw, ok := strings.Cut(v[:i], "://"); ok && strings.Contains(pw, ":") {
					_, pass, _ := strings.Cut(pw, ":")
					assert.NotContains(t, r.stdout+r.stderr, pass, "the database password leaked")
				}
			}
		}
	}
}

func TestEditAndPrune(t *testing.T) {
	s := newStack(t, devstack.Options{})
	ctx := context.Background()
	require.NoError(t, s.MarkReady(ctx))
	require.Equal(t, 0, runJob(t, ctx, s).code)

	// Edit a model: the next run updates LiteLLM and the database.
	data, err := os.ReadFile(s.CatalogPath())
	require.NoError(t, err)
	edited := strings.Replace(string(data), "contextLength: 131072", "contextLength: 65536", 1)
	require.NotEqual(t, string(data), edited)
	require.NoError(t, os.WriteFile(s.CatalogPath(), []byte(edited), 0o644))
	r := runJob(t, ctx, s)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "litellm created=0 updated=1 unchanged=4")
	assert.Contains(t, r.stdout, "database created=0 updated=1 unchanged=4")
	assertConverged(t, s, runbookModels)

	// A subscription on the model about to be removed.
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `INSERT INTO users (username, email, oauth_provider) VALUES ('u', 'u@example.com', 'openshift')`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO subscriptions (user_id, model_id) SELECT id, 'gpt-oss-20b' FROM users`)
	require.NoError(t, err)

	// Remove it with PRUNE=true: gone from LiteLLM, row unavailable, subscription intact.
	i := strings.Index(edited, "  - id: gpt-oss-20b")
	require.Positive(t, i)
	require.NoError(t, os.WriteFile(s.CatalogPath(), []byte(edited[:i]), 0o644))
	r = runJob(t, ctx, s, "PRUNE=true")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "deleted=1")
	assert.Contains(t, r.stdout, "unavailable=1")
	for _, d := range s.Proxy.Deployments() {
		assert.NotEqual(t, "gpt-oss-20b", d.ModelName)
	}
	var availability string
	require.NoError(t, conn.QueryRow(ctx, `SELECT availability FROM models WHERE id = 'gpt-oss-20b'`).Scan(&availability))
	assert.Equal(t, "unavailable", availability)
	var subs int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE model_id = 'gpt-oss-20b'`).Scan(&subs))
	assert.Equal(t, 1, subs)
	assertConverged(t, s, runbookModels[:4])
}

func TestConvergesFromTheRunbook(t *testing.T) {
	s := newStack(t, devstack.Options{})
	ctx := context.Background()
	require.NoError(t, s.MarkReady(ctx))
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, pgtest.RunbookSQL)
	require.NoError(t, err)
	conn.Close(ctx)
	for range 2 { // the runbook's curl loop, run twice
		for _, id := range runbookModels {
			s.Proxy.Seed(litellm.Deployment{ModelName: id, LiteLLMParams: map[string]any{
				"model": "openai/" + id, "api_base": "http://" + id + "-predictor.private-ai.svc.cluster.local:8080/v1", "api_key": "none"}})
		}
	}
	r := runJob(t, ctx, s)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "litellm created=5 updated=0 unchanged=0 deleted=10")
	assertConverged(t, s, runbookModels)
	assert.Len(t, s.Proxy.Deployments(), 5)
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	t.Run("LiteLLM down at start, up 10 s later", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		require.NoError(t, s.LiteLLM.Stop())
		time.AfterFunc(10*time.Second, func() { _ = s.LiteLLM.Start("") })
		r := runJob(t, ctx, s)
		require.Equal(t, 0, r.code, r.stderr)
		assert.GreaterOrEqual(t, r.duration, 10*time.Second)
		assertConverged(t, s, runbookModels)
	})
	t.Run("LiteLLM answering 500 then 429 for a while", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		s.Proxy.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 500, Times: 4})
		s.Proxy.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 429, Times: 4})
		s.Proxy.InjectFault(litellmtest.Fault{Method: "GET", Path: "/model/info", Status: 500, Times: 2})
		r := runJob(t, ctx, s)
		require.Equal(t, 0, r.code, r.stderr)
		assertConverged(t, s, runbookModels)
		assert.Len(t, s.Proxy.Deployments(), 5, "nothing duplicated")
	})
	t.Run("LiteLLM slow, 2 s per request", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		s.Proxy.SetDelay(2 * time.Second)
		r := runJob(t, ctx, s)
		require.Equal(t, 0, r.code, r.stderr)
		s.Proxy.SetDelay(0)
		assertConverged(t, s, runbookModels)
	})
	t.Run("Postgres restarted in the middle of a run", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		s.Proxy.SetWriteDelay(1500 * time.Millisecond)
		cmd, err := s.Command(ctx, binary)
		require.NoError(t, err)
		out := start(t, cmd)
		// Restart while the job is writing to LiteLLM, holding its lock connection.
		require.Eventually(t, func() bool { return s.Proxy.Writes() > 0 }, 20*time.Second, 20*time.Millisecond)
		require.NoError(t, pg.Restart(ctx))
		r := wait(t, cmd, out)
		require.Equal(t, 0, r.code, r.stderr)
		s.Proxy.SetWriteDelay(0)
		assertConverged(t, s, runbookModels)
	})
	t.Run("two jobs started at once", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		s.Proxy.SetWriteDelay(100 * time.Millisecond)
		var cmds []*exec.Cmd
		var outs []*bytes.Buffer
		for range 2 {
			cmd, err := s.Command(ctx, binary)
			require.NoError(t, err)
			cmds = append(cmds, cmd)
			outs = append(outs, start(t, cmd))
		}
		for i := range cmds {
			r := wait(t, cmds[i], outs[i])
			require.Equal(t, 0, r.code, r.stderr)
		}
		assert.Len(t, s.Proxy.Deployments(), 5, "nothing duplicated")
		assertConverged(t, s, runbookModels)
	})
	t.Run("SIGTERM in the middle of a run, then a re-run", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		s.Proxy.SetWriteDelay(800 * time.Millisecond)
		cmd, err := s.Command(ctx, binary, "LITELLM_CONCURRENCY=1")
		require.NoError(t, err)
		out := start(t, cmd)
		require.Eventually(t, func() bool { return s.Proxy.Writes() >= 2 }, 20*time.Second, 10*time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		r := wait(t, cmd, out)
		assert.Equal(t, 143, r.code, "a run stopped by SIGTERM ends as SIGTERM's: %s", r.stderr)
		assert.Contains(t, r.stderr, "stopped by terminated", "the signal is the cause, not a bare context canceled")
		st := statusData(t, s)
		assert.Equal(t, "failed", st["result"])
		assert.Equal(t, "Stopped", st["reason"])
		s.Proxy.SetWriteDelay(0)
		r = runJob(t, ctx, s)
		require.Equal(t, 0, r.code, r.stderr)
		assertConverged(t, s, runbookModels)
		assert.Len(t, s.Proxy.Deployments(), 5, "nothing duplicated")
	})
	t.Run("kube-apiserver unreachable", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		cmd, err := s.Command(ctx, binary, "WAIT_TIMEOUT=3s")
		require.NoError(t, err)
		// Point the job's kubeconfig at a port where nothing listens.
		for i, kv := range cmd.Env {
			if strings.HasPrefix(kv, "KUBECONFIG=") {
				path := strings.TrimPrefix(kv, "KUBECONFIG=")
				b, err := os.ReadFile(path)
				require.NoError(t, err)
				broken := strings.Replace(string(b), kube.URL, "https://127.0.0.1:1", 1)
				require.NotEqual(t, string(b), broken)
				bad := path + "-unreachable"
				require.NoError(t, os.WriteFile(bad, []byte(broken), 0o600))
				cmd.Env[i] = "KUBECONFIG=" + bad
			}
		}
		r := wait(t, cmd, start(t, cmd))
		assert.Equal(t, 124, r.code, r.stderr)
		assert.Contains(t, r.stderr, "statefulset/postgres")
		assert.Contains(t, r.stderr, "deployment/litellm")
		assert.Empty(t, s.Proxy.Deployments(), "nothing written while the stack is not known to be ready")
	})
}

func TestInvalidCatalogWritesNothing(t *testing.T) {
	s := newStack(t, devstack.Options{})
	ctx := context.Background()
	require.NoError(t, s.MarkReady(ctx))
	require.NoError(t, os.WriteFile(s.CatalogPath(), []byte("models:\n- id: Bad/Id\n  name: x\n"), 0o644))
	r := runJob(t, ctx, s)
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "models.yaml:2: model Bad/Id: field id")
	assert.Zero(t, s.Proxy.Requests())
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM models`).Scan(&n))
	assert.Zero(t, n)
}

func TestMiswiredStackIsRefused(t *testing.T) {
	ctx := context.Background()
	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	t.Run("master key differs from the backend's copy", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		require.NoError(t, s.MarkReady(ctx))
		sec, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, "backend-secret", metav1.GetOptions{})
		require.NoError(t, err)
		sec.Data["LITELLM_API_KEY"] = []byte("sk-not-the-master-key")
		_, err = cs.CoreV1().Secrets(s.Namespace).Update(ctx, sec, metav1.UpdateOptions{})
		require.NoError(t, err)
		r := runJob(t, ctx, s)
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, "backend-secret LITELLM_API_KEY differs from litellm-secret LITELLM_MASTER_KEY")
		assert.NotContains(t, r.stderr, "sk-not-the-master-key")
		assert.Zero(t, s.Proxy.Writes())
	})
	t.Run("backend points the browser at the internal LiteLLM URL", func(t *testing.T) {
		s := newStack(t, devstack.Options{})
		d, err := cs.AppsV1().Deployments(s.Namespace).Get(ctx, "backend", metav1.GetOptions{})
		require.NoError(t, err)
		for i, e := range d.Spec.Template.Spec.Containers[0].Env {
			if e.Name == "LITELLM_API_URL" {
				d.Spec.Template.Spec.Containers[0].Env[i].Value = "http://litellm:4000"
			}
		}
		_, err = cs.AppsV1().Deployments(s.Namespace).Update(ctx, d, metav1.UpdateOptions{})
		require.NoError(t, err)
		require.NoError(t, s.MarkReady(ctx))
		r := runJob(t, ctx, s)
		assert.Equal(t, 2, r.code)
		assert.Contains(t, r.stderr, `LITELLM_API_URL is "http://litellm:4000", not the public LiteLLM route`)
		assert.Zero(t, s.Proxy.Writes())
	})
}

// The Job's identity is what the rendered RBAC grants, and nothing more.
func TestJobIdentityIsLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, devstack.Options{})
	env, err := s.JobEnv(ctx)
	require.NoError(t, err)
	var kubeconfig string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "KUBECONFIG="); ok {
			kubeconfig = v
		}
	}
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(rc)
	require.NoError(t, err)

	_, err = cs.AppsV1().Deployments(s.Namespace).Get(ctx, "litellm", metav1.GetOptions{})
	assert.NoError(t, err, "get deployments")
	_, err = cs.AppsV1().StatefulSets(s.Namespace).List(ctx, metav1.ListOptions{})
	assert.NoError(t, err, "list statefulsets")
	_, err = cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, "litemaas-sync-status", metav1.GetOptions{})
	assert.NoError(t, err, "get its status ConfigMap")

	forbidden := map[string]func() error{
		"get a Secret": func() error {
			_, err := cs.CoreV1().Secrets(s.Namespace).Get(ctx, "litellm-secret", metav1.GetOptions{})
			return err
		},
		"list Secrets": func() error { _, err := cs.CoreV1().Secrets(s.Namespace).List(ctx, metav1.ListOptions{}); return err },
		"get another ConfigMap": func() error {
			_, err := cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, "postgres-initdb", metav1.GetOptions{})
			return err
		},
		"list ConfigMaps": func() error {
			_, err := cs.CoreV1().ConfigMaps(s.Namespace).List(ctx, metav1.ListOptions{})
			return err
		},
		"deployments in another namespace": func() error {
			_, err := cs.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{})
			return err
		},
		"delete a deployment": func() error {
			return cs.AppsV1().Deployments(s.Namespace).Delete(ctx, "litellm", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		},
		"list pods":               func() error { _, err := cs.CoreV1().Pods(s.Namespace).List(ctx, metav1.ListOptions{}); return err },
		"cluster-wide namespaces": func() error { _, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); return err },
	}
	for what, call := range forbidden {
		err := call()
		assert.True(t, apierrors.IsForbidden(err), "%s: want Forbidden, got %v", what, err)
	}
}

// Outside the Job, the catalog comes straight from the ConfigMap through the API, with the same identity.
func TestCatalogFromTheConfigMap(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, devstack.Options{})
	require.NoError(t, s.MarkReady(ctx))
	var name string
	for _, o := range s.Objects {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "litemaas-models-") {
			name = o.GetName()
		}
	}
	require.NotEmpty(t, name, "the generated models ConfigMap")
	r := runJob(t, ctx, s, "MODELS_FILE=", "MODELS_CONFIGMAP="+name)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "done: litellm created=5")

	r = runJob(t, ctx, s, "MODELS_FILE=", "MODELS_CONFIGMAP=litemaas-models")
	assert.Equal(t, 2, r.code, "a Role that forbids the read stays so: %s", r.stderr)
	assert.Contains(t, r.stderr, "forbidden", "only the generated ConfigMap may be read")
	assert.Contains(t, r.stderr, "the job ServiceAccount's Role")
}

// What the job publishes is what `make verify` reads: after a run, verify passes; after a model is
// added to the catalog but not yet registered, it names that model.
func TestVerifyReadsWhatTheJobPublished(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, devstack.Options{})
	require.NoError(t, s.MarkReady(ctx))
	require.Equal(t, 0, runJob(t, ctx, s).code)

	// Running, ready pods for each component, as the kubelet would report them.
	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	for _, name := range []string{"postgres", "litellm", "backend", "frontend"} {
		p, err := cs.CoreV1().Pods(s.Namespace).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name + "-0", Labels: map[string]string{
				"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "litemaas"}},
			Spec: corev1.PodSpec{ServiceAccountName: "litemaas-sync", Containers: []corev1.Container{{Name: name, Image: "example/" + name + ":1"}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		_, err = cs.CoreV1().Pods(s.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
	conn, err := cluster.New(kube.Config, nil)
	require.NoError(t, err)
	var out bytes.Buffer
	err = verify.Verify(ctx, conn, verify.Options{Namespace: s.Namespace, Catalog: s.CatalogPath(), SkipRoutes: true, Out: &out})
	require.NoError(t, err, out.String())
	t.Logf("verify:\n%s", out.String())

	data, err := os.ReadFile(s.CatalogPath())
	require.NoError(t, err)
	extra := string(data) + "  - id: llama-3-8b\n    name: Llama 3 8B\n    contextLength: 8192\n    apiBase: http://llama:8080/v1\n"
	other := filepath.Join(t.TempDir(), "models.yaml")
	require.NoError(t, os.WriteFile(other, []byte(extra), 0o644))
	out.Reset()
	err = verify.Verify(ctx, conn, verify.Options{Namespace: s.Namespace, Catalog: other, SkipRoutes: true, Out: &out})
	require.Error(t, err)
	assert.Contains(t, out.String(), "llama-3-8b")
}
