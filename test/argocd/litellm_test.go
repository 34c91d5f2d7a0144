package argocd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kubelettest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

const (
	driftCronJob = "litemaas-sync-drift"
	// prunedModel is the model the prune scenario removes from the catalog.
	prunedModel = "mistral-3-bf16"
	// duplicatedModel is the model the LiteLLM self-heal scenario gives a hand-made second deployment.
	duplicatedModel = "mistral-3-int4"
)

// hookJobs are the Jobs Argo CD runs as hooks; the drift CronJob's Jobs are not hooks.
var hookJobs = []string{"litemaas-secrets", "litemaas-sync"}

// hookRuns keeps the runs of hook Jobs: the drift CronJob's own schedule (every 15 minutes) may start
// a run during any scenario, and such a run is no hook.
func hookRuns(runs []kubelettest.Run) []kubelettest.Run {
	var out []kubelettest.Run
	for _, r := range runs {
		if slices.Contains(hookJobs, r.Job) {
			out = append(out, r)
		}
	}
	return out
}

// awayFromSchedule returns once no run of the drift CronJob's schedule (*/15 * * * *) can start within
// margin, waiting out a closer one and the Job it starts: a scenario proving that a sync's PostSync
// job repaired something must not have the drift job repair it first.
func awayFromSchedule(t *testing.T, f *fixture, margin time.Duration) {
	t.Helper()
	next := time.Now().Truncate(15 * time.Minute).Add(15 * time.Minute)
	if time.Until(next) > margin {
		return
	}
	t.Logf("the drift CronJob's next run is at %s: waiting it out", next.Format("15:04:05"))
	time.Sleep(time.Until(next) + 3*time.Second)
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		jobs, err := f.kube.Clientset().BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		active := false
		for _, j := range jobs.Items {
			if strings.HasPrefix(j.Name, driftCronJob+"-") && j.Status.CompletionTime == nil && j.Status.Failed == 0 {
				active = true
			}
		}
		if !active {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the drift CronJob's scheduled Job did not finish within a minute")
}

// testLiteLLMSelfHeal: a second deployment of a catalog model, made by hand as the runbook's loop
// makes one (POST /model/new, LiteLLM picks the id), is removed by the PostSync job of the next sync,
// started as the console's Sync button starts one; the job's own deployment stays, alone.
func testLiteLLMSelfHeal(t *testing.T, f *fixture) {
	ctx := context.Background()
	proxy := f.svc.LiteLLM(namespace)
	require.NotNil(t, proxy)
	ours := deploymentsOf(proxy.Deployments(), duplicatedModel)
	require.Len(t, ours, 1, "one deployment of %s before the hand-made one", duplicatedModel)
	othersBefore := deploymentsExcept(t, proxy.Deployments(), duplicatedModel)

	awayFromSchedule(t, f, 45*time.Second)
	sec, err := f.kube.Clientset().CoreV1().Secrets(namespace).Get(ctx, "litellm-secret", metav1.GetOptions{})
	require.NoError(t, err)
	body := fmt.Sprintf(`{"model_name": %q, "litellm_params": {"model": "openai/%s", "api_base": "http://%s-predictor.private-ai.svc.cluster.local:8080/v1", "api_key": "none"}}`,
		duplicatedModel, duplicatedModel, duplicatedModel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.svc.LiteLLMURL(namespace)+"/model/new", bytes.NewBufferString(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+string(sec.Data["LITELLM_MASTER_KEY"]))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "POST /model/new")
	both := deploymentsOf(proxy.Deployments(), duplicatedModel)
	require.Len(t, both, 2, "the hand-made deployment is there, beside the job's")
	var extra string
	for _, d := range both {
		if d.ID() != ours[0].ID() {
			extra = d.ID()
		}
	}
	require.NotEmpty(t, extra, "the hand-made deployment has an id of its own")

	head, err := f.repo.Head(ctx)
	require.NoError(t, err)
	runs := len(f.h.Kubelet.Runs())
	t0 := time.Now()
	require.NoError(t, f.h.Sync(ctx, childApp, head))
	a, err := f.h.WaitApp(ctx, childApp, 2*time.Minute, func(a *argocdtest.App) bool {
		op := a.Status.OperationState
		return op != nil && op.StartedAt != nil && op.StartedAt.After(t0.Add(-time.Second)) && a.Done(head)
	})
	require.NoError(t, err)
	newRuns := hookRuns(f.h.Kubelet.Runs()[runs:])
	t.Logf("a sync started as the Sync button does: %s in %.1fs; hooks run: %s", a.Status.OperationState.Message, time.Since(t0).Seconds(), runNames(newRuns))

	after := deploymentsOf(proxy.Deployments(), duplicatedModel)
	require.Len(t, after, 1, "exactly one deployment of %s after the sync", duplicatedModel)
	assert.Equal(t, ours[0].ID(), after[0].ID(), "the job's own deployment is the one kept")
	assert.Equal(t, othersBefore, deploymentsExcept(t, proxy.Deployments(), duplicatedModel), "the other models' deployments are untouched")
	var postSync *kubelettest.Run
	for i := range newRuns {
		if newRuns[i].Job == "litemaas-sync" {
			postSync = &newRuns[i]
		}
	}
	require.NotNil(t, postSync, "the sync ran the PostSync hook")
	assert.Zero(t, postSync.ExitCode, postSync.Output)
	assert.Contains(t, postSync.Output, extra, "the PostSync job is the one that deleted the hand-made deployment %s", extra)
}

// testPrune: a commit removing a model from the catalog, with PRUNE=true set by the overlay (a patch
// of the hook Job's environment, which the drift CronJob's pod is copied from), makes the PostSync
// job delete that model's deployment from LiteLLM and mark its row unavailable; the other models'
// deployments and rows stay as they were.
func testPrune(t *testing.T, f *fixture) {
	ctx := context.Background()
	proxy := f.svc.LiteLLM(namespace)
	require.NotNil(t, proxy)
	require.Len(t, deploymentsOf(proxy.Deployments(), prunedModel), 1, "%s is in LiteLLM before", prunedModel)
	require.Equal(t, "available", dbAvailability(t, f, prunedModel))
	llmBefore := deploymentsExcept(t, proxy.Deployments(), prunedModel)
	dbBefore := dbRowsExcept(t, f, prunedModel)

	awayFromSchedule(t, f, 45*time.Second)
	runs := len(f.h.Kubelet.Runs())
	head, took := commitAndSync(t, f, "catalog: "+prunedModel+" removed, PRUNE=true in the overlay", func(work string) error {
		block := "  - id: mistral-3-bf16\n    name: Mistral-3 BF16\n    description: Mistral-3 BF16 (4-GPU)\n    category: chat\n" +
			"    provider: vLLM\n    contextLength: 32768\n    supportsStreaming: true\n    availability: available\n" +
			"    apiBase: http://mistral-3-bf16-predictor.private-ai.svc.cluster.local:8080/v1\n    model: openai/mistral-3-bf16\n"
		if err := argocdtest.EditFile(work, modelsFile, block, ""); err != nil {
			return err
		}
		return appendFile(work, "gitops/overlays/example/kustomization.yaml", prunePatch)
	})
	newRuns := hookRuns(f.h.Kubelet.Runs()[runs:])
	t.Logf("commit %.8s (%s removed, PRUNE=true) -> Succeeded/Synced/Healthy in %.1fs; hooks run: %s", head, prunedModel, took.Seconds(), runNames(newRuns))

	for _, name := range []string{"litemaas-sync"} {
		job, err := f.kube.Clientset().BatchV1().Jobs(namespace).Get(ctx, name, metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, "true", envOf(job.Spec.Template.Spec.Containers[0].Env, "PRUNE"), "the hook Job %s runs with PRUNE=true", name)
	}
	cj, err := f.kube.Clientset().BatchV1().CronJobs(namespace).Get(ctx, driftCronJob, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "true", envOf(cj.Spec.JobTemplate.Spec.Template.Spec.Containers[0].Env, "PRUNE"), "the drift CronJob runs with PRUNE=true")

	assert.Empty(t, deploymentsOf(proxy.Deployments(), prunedModel), "%s's deployment is deleted from LiteLLM", prunedModel)
	assert.Equal(t, "unavailable", dbAvailability(t, f, prunedModel), "%s's row is marked unavailable, not deleted", prunedModel)
	assert.Equal(t, llmBefore, deploymentsExcept(t, proxy.Deployments(), prunedModel), "the other models' deployments are untouched")
	assert.Equal(t, dbBefore, dbRowsExcept(t, f, prunedModel), "the other models' rows are untouched")
	var postSync []string
	for _, r := range newRuns {
		if r.Job == "litemaas-sync" {
			postSync = append(postSync, r.Output)
		}
	}
	require.Len(t, postSync, 1, "one PostSync run")
	assert.Contains(t, postSync[0], prunedModel+" deployment=", "the PostSync job's log names the pruned deployment")
	assert.Contains(t, postSync[0], "(no longer in the catalog, PRUNE=true)", "the PostSync job pruned it because PRUNE is on")
}

// prunePatch is what an overlay adds to turn PRUNE on: a strategic merge patch of the hook Job (env
// merged by name), which the drift CronJob runs too (base/drift-cronjob copies the Job's pod).
const prunePatch = `
patches:
  - target: {kind: Job, name: litemaas-sync}
    patch: |-
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: litemaas-sync
      spec:
        template:
          spec:
            containers:
              - name: litemaas-sync
                env:
                  - name: PRUNE
                    value: "true"
`

// createDriftJob creates a Job from the drift CronJob as `kubectl create job --from=cronjob/...` does:
// the template's labels and annotations, the manual-instantiation annotation, and an ownerReference
// to the CronJob.
func createDriftJob(ctx context.Context, f *fixture, name string) (*batchv1.Job, error) {
	cj, err := f.kube.Clientset().BatchV1().CronJobs(namespace).Get(ctx, driftCronJob, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading CronJob %s: %w", driftCronJob, err)
	}
	annotations := map[string]string{"cronjob.kubernetes.io/instantiate": "manual"}
	for k, v := range cj.Spec.JobTemplate.Annotations {
		annotations[k] = v
	}
	controller := true
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace, Labels: cj.Spec.JobTemplate.Labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: &controller,
			}},
		},
		Spec: cj.Spec.JobTemplate.Spec,
	}
	job, err = f.kube.Clientset().BatchV1().Jobs(namespace).Create(ctx, job, metav1.CreateOptions{FieldManager: "kubectl-create"})
	if err != nil {
		return nil, fmt.Errorf("creating Job %s from CronJob %s: %w", name, driftCronJob, err)
	}
	return job, nil
}

func jobComplete(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func deploymentsOf(ds []litellm.Deployment, model string) []litellm.Deployment {
	var out []litellm.Deployment
	for _, d := range ds {
		if d.ModelName == model {
			out = append(out, d)
		}
	}
	return out
}

// deploymentsExcept is the deployments of every model but model, as JSON.
func deploymentsExcept(t testing.TB, ds []litellm.Deployment, model string) string {
	t.Helper()
	var keep []litellm.Deployment
	for _, d := range ds {
		if d.ModelName != model {
			keep = append(keep, d)
		}
	}
	b, err := json.Marshal(keep)
	require.NoError(t, err)
	return string(b)
}

// dbRowsExcept is the models table without model's row, as JSON rows.
func dbRowsExcept(t testing.TB, f *fixture, model string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.svc.DatabaseURL(namespace, "litemaas_db"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var s string
	err = conn.QueryRow(ctx, `SELECT coalesce(json_agg(m ORDER BY id)::text, '[]') FROM models m WHERE id <> $1`, model).Scan(&s)
	require.NoError(t, err)
	return s
}

func dbAvailability(t testing.TB, f *fixture, id string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.svc.DatabaseURL(namespace, "litemaas_db"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var s string
	require.NoError(t, conn.QueryRow(ctx, `SELECT availability FROM models WHERE id = $1`, id).Scan(&s))
	return s
}

func envOf(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func appendFile(work, rel, text string) error {
	p := filepath.Join(work, rel)
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, text...), 0o644)
}
