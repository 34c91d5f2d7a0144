package e2e

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/verify"
	"github.com/litemaas-gitops/litemaas-gitops/internal/store"
)

// chatTable sends one completion per model through replica base with a temporary virtual key, as
// `litemaas-ops verify --chat` does, logs the table and fails the test for any model that failed.
func chatTable(t *testing.T, s *devstack.Stack, replica int, models []string) {
	t.Helper()
	results, err := verify.ChatCheck(context.Background(), verify.ChatOptions{BaseURL: s.Replicas[replica].URL(), MasterKey: s.MasterKey, Models: models})
	require.NoError(t, err)
	var out bytes.Buffer
	terr := verify.PrintChatTable(&out, results)
	t.Logf("chat through LiteLLM replica %d:\n%s", replica+1, out.String())
	require.NoError(t, terr)
	assert.Empty(t, s.Proxy.Keys(), "the virtual key is gone")
}

// servedBy groups what one replica serves by model name.
func servedBy(t *testing.T, s *devstack.Stack, replica int) map[string][]litellm.Deployment {
	t.Helper()
	ds, err := litellm.New(s.Replicas[replica].URL(), s.MasterKey).ListModels(context.Background())
	require.NoError(t, err)
	out := map[string][]litellm.Deployment{}
	for _, d := range ds {
		out[d.ModelName] = append(out[d.ModelName], d)
	}
	return out
}

// Every served catalog model answers a chat through LiteLLM on both replicas after the first run;
// after an edit of contextLength and of a capability the second replica (never written to) serves
// the new values, and the rows are a fixed point of what it serves.
func TestEveryModelAnswersAChatOnTwoReplicas(t *testing.T) {
	s := newStack(t, devstack.Options{LiteLLMReplicas: 2, LiteLLM: litellmtest.Options{PollInterval: 200 * time.Millisecond}})
	ctx := context.Background()
	require.NoError(t, s.MarkReady(ctx))
	r := runJob(t, ctx, s)
	require.Equal(t, 0, r.code, r.stderr)
	s.Replicas[1].Proxy().Poll()
	chatTable(t, s, 0, runbookModels)
	chatTable(t, s, 1, runbookModels)
	for _, id := range runbookModels {
		assert.Equal(t, 2, s.VLLM.Calls(id), "%s answered once per replica", id)
	}

	data, err := os.ReadFile(s.CatalogPath())
	require.NoError(t, err)
	i := strings.Index(string(data), "  - id: mistral-3-bf16")
	require.Positive(t, i)
	head, rest := string(data[:i]), string(data[i:])
	edited := strings.Replace(rest, "contextLength: 32768", "contextLength: 24576\n    supportsVision: true", 1)
	require.NotEqual(t, rest, edited)
	require.NoError(t, os.WriteFile(s.CatalogPath(), []byte(head+edited), 0o644))
	r = runJob(t, ctx, s)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "litellm created=0 updated=1 unchanged=4 deleted=0")
	s.Replicas[1].Proxy().Poll()

	second := servedBy(t, s, 1)
	require.Len(t, second["mistral-3-bf16"], 1, "the old version is gone from the second replica")
	d := second["mistral-3-bf16"][0]
	assert.EqualValues(t, 24576, d.ModelInfo["max_tokens"])
	assert.Equal(t, true, d.ModelInfo["supports_vision"])
	st, err := store.Open(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer st.Close()
	rows, err := st.Models(ctx, runbookModels)
	require.NoError(t, err)
	for _, id := range runbookModels {
		require.Len(t, second[id], 1, id)
		assert.Empty(t, modelsync.Drift(rows[id], second[id][0]), "the backend reading through the second replica would rewrite %s", id)
	}
	chatTable(t, s, 1, runbookModels)
}

// With LiteLLM failing every write, the run ends at RETRY_TIMEOUT and the status ConfigMap names
// each model that failed and what state it was left in.
func TestFailingLiteLLMIsReportedInTheStatus(t *testing.T) {
	s := newStack(t, devstack.Options{})
	ctx := context.Background()
	require.NoError(t, s.MarkReady(ctx))
	s.Proxy.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 503, Times: 1 << 30})
	const retry = 3 * time.Second
	r := runJob(t, ctx, s, "RETRY_TIMEOUT="+retry.String())
	assert.Equal(t, 1, r.code, r.stderr)
	// The stack is ready at once; the reconcile is then bounded by RETRY_TIMEOUT, plus one backoff
	// step of the pass loop at most.
	assert.Less(t, r.duration, retry+2*time.Second)
	t.Logf("failed run took %s", r.duration.Round(time.Millisecond))

	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	cm, err := cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, "litemaas-sync-status", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "failed", cm.Data["result"])
	assert.True(t, strings.HasPrefix(cm.Data["summary"], "failed: litellm created=0"), cm.Data["summary"])
	assert.Contains(t, cm.Data["summary"], "RETRY_TIMEOUT (3s) reached")
	for _, id := range runbookModels {
		assert.Contains(t, cm.Data["summary"], id+": ", "the summary names the failed model %s", id)
	}
	var models []struct {
		ID, Database, Error string
		LiteLLMDeployments  int `json:"litellmDeployments"`
	}
	require.NoError(t, json.Unmarshal([]byte(cm.Data["models.json"]), &models))
	require.Len(t, models, len(runbookModels))
	for _, m := range models {
		assert.Contains(t, runbookModels, m.ID)
		assert.Equal(t, "not written", m.Database, m.ID)
		assert.Equal(t, -1, m.LiteLLMDeployments, m.ID)
		assert.Contains(t, m.Error, "RETRY_TIMEOUT", m.ID)
	}
	t.Logf("status summary: %s", cm.Data["summary"])
}

// The drift CronJob, run as rendered, repairs a model edited directly in LiteLLM (a deployment
// deleted, another one's model_info changed) and a row edited directly in PostgreSQL.
func TestDriftCronJobRepairs(t *testing.T) {
	s := newStack(t, devstack.Options{})
	ctx := context.Background()
	require.NoError(t, s.MarkReady(ctx))
	require.Equal(t, 0, runJob(t, ctx, s).code)

	llm := litellm.New(s.LiteLLM.URL(), s.MasterKey)
	byName := servedBy(t, s, 0)
	require.NoError(t, llm.UpdateModel(ctx, byName["devstral-2"][0].ID(), litellm.Deployment{ModelInfo: map[string]any{"max_tokens": 1024}}))
	require.NoError(t, llm.DeleteModel(ctx, byName["gpt-oss-20b"][0].ID()))
	conn, err := pgx.Connect(ctx, s.DatabaseURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `UPDATE models SET name = 'edited by hand', context_length = 1 WHERE id = 'granite-8b-agent'`)
	require.NoError(t, err)

	cmd, err := s.CronJobCommand(ctx, devstack.DriftCronJobName, binary)
	require.NoError(t, err)
	r := wait(t, cmd, start(t, cmd))
	require.Equal(t, 0, r.code, r.stderr)
	t.Logf("drift run:\n%s", r.stdout)
	assert.Contains(t, r.stdout, "litellm created=1 updated=1 unchanged=3 deleted=0")
	assertConverged(t, s, runbookModels)
	var name string
	require.NoError(t, conn.QueryRow(ctx, `SELECT name FROM models WHERE id = 'granite-8b-agent'`).Scan(&name))
	assert.Equal(t, "Granite-8B Agent", name)
	assert.EqualValues(t, 131072, servedBy(t, s, 0)["devstral-2"][0].ModelInfo["max_tokens"])

	cs, err := kubernetes.NewForConfig(kube.Config)
	require.NoError(t, err)
	cm, err := cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, "litemaas-sync-status", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "succeeded", cm.Data["result"])
	assert.Equal(t, strings.TrimSpace(lastLine(r.stdout)), cm.Data["summary"], "the drift run's outcome is the published one")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
