package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kubelettest"
)

// quietPeriod is how long the quiet scenario watches: about eight periodic comparisons (appResync) and two
// webhook refreshes, with a run of the drift CronJob inside it.
var quietPeriod = 2 * time.Minute

// testQuiet: with selfHeal on and nothing changed, the Application stays Synced and Healthy, no sync
// starts and no hook runs, although Argo CD compares again and again (the job's status ConfigMap,
// written by the PostSync hook, must cause no diff). Inside the period a Job created from the drift
// CronJob, as `oc create job --from=cronjob/litemaas-sync-drift` does, runs to completion: the
// CronJob's Jobs and pods are its children, neither extraneous nor a reason to sync.
func testQuiet(t *testing.T, f *fixture) {
	ctx := context.Background()
	before, err := f.h.App(ctx, childApp)
	require.NoError(t, err)
	require.True(t, before.Done(""), before.String())
	runs := len(f.h.Kubelet.Runs())
	started := *before.Status.OperationState.StartedAt
	t0 := time.Now()

	refreshes := time.AfterFunc(quietPeriod/3, func() {
		_ = f.h.Refresh(ctx, childApp)
		time.AfterFunc(quietPeriod/3, func() { _ = f.h.Refresh(ctx, childApp) })
	})
	defer refreshes.Stop()
	// The drift Job starts a little into the period, so that comparisons see it running and done.
	const driftJob = "litemaas-sync-drift-manual"
	created := make(chan error, 1)
	drift := time.AfterFunc(10*time.Second, func() {
		_, err := createDriftJob(ctx, f, driftJob)
		created <- err
	})
	defer drift.Stop()
	var seen int
	var last time.Time
	changed, err := f.h.WaitApp(ctx, childApp, quietPeriod, func(a *argocdtest.App) bool {
		if a.Status.ReconciledAt != nil && a.Status.ReconciledAt.After(last) {
			last = *a.Status.ReconciledAt
			seen++
		}
		op := a.Status.OperationState
		return a.Status.Sync.Status != "Synced" || a.Status.Health.Status != "Healthy" || op == nil || op.StartedAt == nil || !op.StartedAt.Equal(started)
	})
	require.ErrorIs(t, err, context.DeadlineExceeded, "something changed during the quiet period: %s", changed)
	newRuns := f.h.Kubelet.Runs()[runs:]
	assert.Empty(t, hookRuns(newRuns), "no hook ran: %s", runNames(newRuns))
	assert.GreaterOrEqual(t, seen, 6, "Argo CD compared the Application with git during the period (%d times)", seen)

	select {
	case err := <-created:
		require.NoError(t, err)
	default:
		t.Fatal("the drift Job was not created")
	}
	job, err := f.kube.Clientset().BatchV1().Jobs(namespace).Get(ctx, driftJob, metav1.GetOptions{})
	require.NoError(t, err)
	owner := metav1.GetControllerOf(job)
	require.NotNil(t, owner, "the drift Job has a controller")
	require.Equal(t, "CronJob/"+driftCronJob, owner.Kind+"/"+owner.Name, "the drift Job's controller is the CronJob")
	assert.True(t, jobComplete(job), "the drift Job completed within the period: %+v", job.Status)
	var ran []kubelettest.Run
	for _, r := range newRuns {
		if r.Job == driftJob {
			ran = append(ran, r)
		}
	}
	require.Len(t, ran, 1, "the kubelet stand-in ran the drift Job's pod once: %s", runNames(newRuns))
	assert.Zero(t, ran[0].ExitCode, ran[0].Output)
	assert.Equal(t, []string{"reconcile"}, ran[0].Args)
	a, err := f.h.App(ctx, childApp)
	require.NoError(t, err)
	for _, r := range a.Status.Resources {
		assert.False(t, r.Kind == "Job" && r.Name == driftJob, "the drift Job is not one of the Application's resources")
	}
	t.Logf("quiet for %s with selfHeal on: Synced/Healthy throughout, %d comparisons, no sync, no hook run; the drift Job %s ran %s in %.1fs",
		time.Since(t0).Round(time.Second), seen, driftJob, strings.Join(ran[0].Args, " "), ran[0].Finished.Sub(ran[0].Started).Seconds())
}

// testSelfHeal: a Deployment edited by hand is put back by the next (automated) sync.
func testSelfHeal(t *testing.T, f *fixture) {
	ctx := context.Background()
	deps := f.kube.Clientset().AppsV1().Deployments(namespace)
	d, err := deps.Get(ctx, "frontend", metav1.GetOptions{})
	require.NoError(t, err)
	want := d.Spec.Template.Spec.Containers[0].Image
	runs := len(f.h.Kubelet.Runs())

	// The cluster part's workload admission policy refuses an unpinned image outright, hand edits
	// included; a pinned one is let through and it is Argo CD that reverts it.
	unpinned := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":"quay.io/someone/else:latest"}]}}}}`, d.Spec.Template.Spec.Containers[0].Name)
	_, err = deps.Patch(ctx, "frontend", types.StrategicMergePatchType, []byte(unpinned), metav1.PatchOptions{FieldManager: "kubectl-edit"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "litemaas-workloads")
	assert.Contains(t, err.Error(), "image not pinned")
	t.Logf("a hand edit to :latest: %v", err)

	t0 := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":%q,"image":"quay.io/someone/else:1.0"}]}}}}`, d.Spec.Template.Spec.Containers[0].Name)
	_, err = deps.Patch(ctx, "frontend", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: "kubectl-edit"})
	require.NoError(t, err)
	a, err := f.h.WaitApp(ctx, childApp, 2*time.Minute, func(a *argocdtest.App) bool {
		op := a.Status.OperationState
		return op != nil && op.StartedAt != nil && op.StartedAt.After(t0.Add(-time.Second)) && a.Done("")
	})
	require.NoError(t, err)
	d, err = deps.Get(ctx, "frontend", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, want, d.Spec.Template.Spec.Containers[0].Image, "the hand edit is reverted")
	newRuns := f.h.Kubelet.Runs()[runs:]
	t.Logf("self-heal: the hand-edited Deployment was reverted after %.1fs (%s); hooks run by that sync: %s",
		time.Since(t0).Seconds(), a.Status.OperationState.Message, runNames(newRuns))
	for _, r := range newRuns {
		assert.Zero(t, r.ExitCode, "%s: %s", r.Job, r.Output)
	}
}

// testCatalogEdit: a commit that edits one model is synced at the next refresh (triggered as a
// webhook does), the old catalog ConfigMap is pruned last, and the PostSync job registers the edit.
func testCatalogEdit(t *testing.T, f *fixture) {
	ctx := context.Background()
	oldCM := catalogConfigMap(t, f)
	runs := len(f.h.Kubelet.Runs())
	t0 := time.Now()
	head, took := commitAndSync(t, f, "catalog: granite-8b-agent gets a 32k context", func(work string) error {
		return argocdtest.EditFile(work, modelsFile, "    contextLength: 16384\n    supportsStreaming: true\n    availability: available\n    apiBase: http://granite-8b-agent",
			"    contextLength: 32768\n    supportsStreaming: true\n    availability: available\n    apiBase: http://granite-8b-agent")
	})
	events := f.rec.since(t0)
	t.Logf("commit %.8s (one model edited) -> PostSync done and Application Succeeded/Synced/Healthy in %.1fs\n%s", head, took.Seconds(),
		timeline(filterNoise(events), t0, namespace))

	newCM := catalogConfigMap(t, f)
	require.NotEqual(t, oldCM, newCM, "the edit gives the catalog ConfigMap a new name")
	_, err := f.kube.Clientset().CoreV1().ConfigMaps(namespace).Get(ctx, oldCM, metav1.GetOptions{})
	assert.Error(t, err, "the old catalog ConfigMap %s is pruned", oldCM)
	created, ok1 := first(events, "ConfigMap", newCM, "created")
	pruned, ok2 := first(events, "ConfigMap", oldCM, "deleted")
	postSync, ok3 := first(events, "Job", "litemaas-sync", "created")
	require.True(t, ok1 && ok2 && ok3, "timeline lacks the new ConfigMap, the pruning or the PostSync Job")
	assert.True(t, created.T.Before(pruned.T), "the old ConfigMap is pruned after the new one exists (PruneLast)")
	assert.True(t, pruned.T.Before(postSync.T), "PruneLast prunes in the Sync phase's last wave, before PostSync")

	assert.Equal(t, 32768, dbContextLength(t, f, "granite-8b-agent"), "the backend's row")
	assert.EqualValues(t, 32768, liteLLMMaxTokens(t, f, "granite-8b-agent"), "the LiteLLM deployment's max_tokens")
	assert.Len(t, hookRuns(f.h.Kubelet.Runs()[runs:]), 2, "one pod per hook: %s", runNames(f.h.Kubelet.Runs()[runs:]))
}

// testBrokenCatalog: a commit that breaks the catalog fails the PostSync hook; the Application says
// so; nothing in LiteLLM or PostgreSQL changes; and the job's own reason is on the Job as an Event,
// the place the console shows it (scenario: what a user sees without `oc logs`).
func testBrokenCatalog(t *testing.T, f *fixture) {
	// A scheduled drift run while the broken catalog is mounted fails too (its own scenario shows that
	// this never blocks a sync). This scenario is about the hook and counts its runs: keep the schedule
	// out of its window (about 45 s from the broken commit to the fixed sync).
	awayFromSchedule(t, f, 2*time.Minute)
	ctx := context.Background()
	llmBefore := liteLLMState(t, f)
	dbBefore := dbState(t, f)
	good, err := f.repo.Head(ctx)
	require.NoError(t, err)

	broken, err := f.repo.Commit(ctx, "catalog: devstral-2 loses its contextLength", func(work string) error {
		return argocdtest.EditFile(work, modelsFile, "    contextLength: 131072\n", "")
	})
	require.NoError(t, err)
	require.NoError(t, f.h.Refresh(ctx, childApp))
	var hook argocdtest.ResourceResult
	a, err := f.h.WaitApp(ctx, childApp, 2*time.Minute, func(a *argocdtest.App) bool {
		op := a.Status.OperationState
		if op == nil || op.SyncResult == nil || op.SyncResult.Revision != broken {
			return false
		}
		for _, r := range op.SyncResult.Resources {
			if r.Kind == "Job" && r.Name == "litemaas-sync" && r.HookPhase == "Failed" {
				hook = r
				return true
			}
		}
		return false
	})
	require.NoError(t, err)
	op := a.Status.OperationState
	t.Logf("broken catalog: operation %s %q; the hook's result: %s %q", op.Phase, op.Message, hook.HookPhase, hook.Message)

	t.Run("the Application says the PostSync hook failed", func(t *testing.T) {
		// While it retries (syncPolicy.retry), the operation's message names no reason.
		assert.Contains(t, op.Message, "one or more synchronization tasks completed unsuccessfully")
		// The hook's result is the Job controller's condition text, not the program's message.
		assert.Contains(t, hook.Message, "failed with exit code 2 matching FailJob rule at index 0")
		assert.NotContains(t, hook.Message, "contextLength")
	})
	t.Run("the job's reason is an Event on the failed Job", func(t *testing.T) {
		job, err := f.kube.Clientset().BatchV1().Jobs(namespace).Get(ctx, "litemaas-sync", metav1.GetOptions{})
		require.NoError(t, err)
		// The query Argo CD's server makes for a resource's EVENTS tab.
		evs, err := f.kube.Clientset().CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: fields.Set{
			"involvedObject.name": job.Name, "involvedObject.uid": string(job.UID), "involvedObject.namespace": namespace,
		}.String()})
		require.NoError(t, err)
		var warnings []string
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == "Failed" {
				warnings = append(warnings, e.Message)
			}
		}
		require.Len(t, warnings, 1, "one Warning event of the program on the Job, among %d events", len(evs.Items))
		assert.Contains(t, warnings[0], "model devstral-2: field contextLength: required")
		t.Logf("the Job's Event: %s", warnings[0])
	})
	t.Run("nothing changed in LiteLLM or PostgreSQL", func(t *testing.T) {
		assert.Equal(t, llmBefore, liteLLMState(t, f))
		assert.Equal(t, dbBefore, dbState(t, f))
	})

	// Recovery as a user would: stop the retries of the broken revision, push the fix.
	require.NoError(t, f.h.Terminate(ctx, childApp))
	_, err = f.h.WaitApp(ctx, childApp, time.Minute, func(a *argocdtest.App) bool {
		return a.Phase() == "Failed" || a.Phase() == "Error"
	})
	require.NoError(t, err)
	_, took := commitAndSync(t, f, "catalog: devstral-2 gets its contextLength back", func(work string) error {
		return argocdtest.EditFile(work, modelsFile, "    category: coding\n    provider: vLLM\n", "    category: coding\n    provider: vLLM\n    contextLength: 131072\n")
	})
	t.Logf("the fix (reverting %.8s to the content of %.8s) synced in %.1fs", broken, good, took.Seconds())
	assert.Equal(t, llmBefore, liteLLMState(t, f), "the fix changes nothing either")
}

// commitAndSync commits edit, refreshes the Applications as a push webhook does and waits for the
// child Application to be Succeeded/Synced/Healthy at the new revision.
func commitAndSync(t testing.TB, f *fixture, msg string, edit func(string) error) (string, time.Duration) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Now()
	head, err := f.repo.Commit(ctx, msg, edit)
	require.NoError(t, err)
	for _, app := range []string{rootApp, childApp} {
		require.NoError(t, f.h.Refresh(ctx, app))
	}
	_, err = f.h.WaitApp(ctx, childApp, 2*time.Minute, func(a *argocdtest.App) bool { return a.Done(head) })
	require.NoError(t, err)
	return head, time.Since(t0)
}

func runNames(runs []kubelettest.Run) string {
	var names []string
	for _, r := range runs {
		names = append(names, fmt.Sprintf("%s (%s, exit %d)", r.Job, strings.Join(r.Args, " "), r.ExitCode))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func catalogConfigMap(t testing.TB, f *fixture) string {
	t.Helper()
	list, err := f.kube.Clientset().CoreV1().ConfigMaps(namespace).List(context.Background(),
		metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=model-catalog"})
	require.NoError(t, err)
	require.Len(t, list.Items, 1, "one catalog ConfigMap")
	return list.Items[0].Name
}

func dbContextLength(t testing.TB, f *fixture, id string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.svc.DatabaseURL(namespace, "litemaas_db"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT context_length FROM models WHERE id = $1`, id).Scan(&n))
	return n
}

func liteLLMMaxTokens(t testing.TB, f *fixture, model string) any {
	t.Helper()
	for _, d := range f.svc.LiteLLM(namespace).Deployments() {
		if d.ModelName == model {
			return d.ModelInfo["max_tokens"]
		}
	}
	t.Fatalf("model %s is not in LiteLLM", model)
	return nil
}

// liteLLMState is the double's deployments as JSON, for before/after comparisons.
func liteLLMState(t testing.TB, f *fixture) string {
	t.Helper()
	b, err := json.Marshal(f.svc.LiteLLM(namespace).Deployments())
	require.NoError(t, err)
	return string(b)
}

// dbState is the backend's models table as JSON rows.
func dbState(t testing.TB, f *fixture) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, f.svc.DatabaseURL(namespace, "litemaas_db"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var s string
	err = conn.QueryRow(ctx, `SELECT coalesce(json_agg(m ORDER BY id)::text, '[]') FROM models m`).Scan(&s)
	require.NoError(t, err)
	return s
}
