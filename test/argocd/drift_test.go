package argocd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
)

// driftTwoTicks is what a commit appends to the example overlay's patches: the drift CronJob on two
// given minutes only (the first run succeeds, the second fails, then no run interferes for an hour),
// with short WAIT_TIMEOUT and RETRY_TIMEOUT in the hook Job, which the drift CronJob runs too (the
// overlay's base/drift-cronjob copies the Job's pod), so that a run against a LiteLLM that is down fails
// within seconds instead of after ten minutes.
const driftTwoTicks = `
  - target: {kind: CronJob, name: litemaas-sync-drift}
    patch: |-
      - op: replace
        path: /spec/schedule
        value: "%d,%d * * * *"
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
                  - {name: WAIT_TIMEOUT, value: 20s}
                  - {name: RETRY_TIMEOUT, value: 10s}
`

// testFailedDrift: a scheduled drift run fails (LiteLLM is down at its tick) after one that succeeded,
// which Argo CD's CronJob health check (resource_customizations/batch/CronJob/health.lua, 3.2 and later)
// calls Degraded, and which a sync's own health check of the resources it applies (gitops-engine
// pkg/sync/sync_context.go, blind to ignore-healthcheck) would fail on. The failure shows in the status
// ConfigMap and as a Warning Event on its Job, the Application stays Healthy, and the next commit syncs
// to Succeeded/Synced/Healthy with its PostSync hook run, having recreated the CronJob.
func testFailedDrift(t *testing.T, f *fixture) {
	ensureSynced(t, f)
	ctx := context.Background()
	kc := f.kube.Clientset()
	overlay := "gitops/overlays/example/kustomization.yaml"

	// The first tick at least 75 s away: the commit's sync is over by then (the kube-controller-manager
	// reads the schedule in this machine's time zone, as time.Now does).
	first := time.Now().Add(75 * time.Second).Truncate(time.Minute).Add(time.Minute)
	var added string
	commitAndSync(t, f, "drift on two given minutes, with short deadlines", func(work string) error {
		b, err := os.ReadFile(filepath.Join(work, overlay))
		if err != nil {
			return err
		}
		added = fmt.Sprintf(driftTwoTicks, first.Minute(), first.Add(time.Minute).Minute())
		if !strings.Contains(string(b), "\npatches:\n") {
			added = "\npatches:" + added
		}
		return appendFile(work, overlay, added)
	})

	cronJobs := kc.BatchV1().CronJobs(namespace)
	var cj *batchv1.CronJob
	var err error
	require.Eventually(t, func() bool {
		cj, err = cronJobs.Get(ctx, driftCronJob, metav1.GetOptions{})
		return err == nil && cj.Status.LastSuccessfulTime != nil && len(cj.Status.Active) == 0
	}, time.Until(first)+time.Minute, time.Second, "the first scheduled drift run succeeds")
	up, err := f.svc.LiteLLMDown(namespace)
	require.NoError(t, err)
	down := true
	defer func() {
		if down {
			_ = up()
		}
	}()

	// The second run fails, and health.lua's Degraded condition holds: last schedule after last
	// success, no run active.
	var failed *batchv1.Job
	require.Eventually(t, func() bool {
		if cj, err = cronJobs.Get(ctx, driftCronJob, metav1.GetOptions{}); err != nil {
			return false
		}
		jobs, err := kc.BatchV1().Jobs(namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false
		}
		for i, j := range jobs.Items {
			if metav1.IsControlledBy(&j, cj) && jobFailed(&j) {
				failed = &jobs.Items[i]
			}
		}
		return failed != nil && len(cj.Status.Active) == 0 && cj.Status.LastScheduleTime != nil &&
			cj.Status.LastSuccessfulTime.Before(cj.Status.LastScheduleTime)
	}, 2*time.Minute, time.Second, "the second scheduled drift run fails while LiteLLM is down")
	degraded := cj.UID

	cm, err := kc.CoreV1().ConfigMaps(namespace).Get(ctx, "litemaas-sync-status", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "failed", cm.Data["result"], "status ConfigMap: %v", cm.Data)
	assert.Equal(t, "NotReady", cm.Data["reason"], "status ConfigMap: %v", cm.Data)
	t.Logf("status ConfigMap after the failed run: result %s, reason %s: %s", cm.Data["result"], cm.Data["reason"], cm.Data["summary"])
	evs, err := kc.EventsV1().Events(namespace).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	// The run's own Event (reason Failed, the note led by the classified reason), next to the Job
	// controller's.
	var warning string
	for _, e := range evs.Items {
		if e.Regarding.Kind == "Job" && e.Regarding.Name == failed.Name && e.Type == corev1.EventTypeWarning &&
			e.ReportingController == "litemaas-gitops.io/litemaas-sync" && e.Reason == "Failed" {
			warning = e.Reason + ": " + e.Note
		}
	}
	assert.Contains(t, warning, "litemaas-sync (NotReady", "the run's Warning Event on the failed Job %s", failed.Name)
	t.Logf("Event on Job %s: %s", failed.Name, warning)

	a, err := f.h.App(ctx, childApp)
	require.NoError(t, err)
	assert.Equal(t, "Healthy", a.Status.Health.Status, "a failed drift run leaves the Application Healthy: %s", a)
	t.Logf("with the CronJob Degraded: Application %s/%s/%s", a.Phase(), a.Status.Sync.Status, a.Status.Health.Status)

	// LiteLLM back, the next commit (the shipped schedule again) syncs while the CronJob's last run is
	// still the failed one: no run is due before the sync recreates it.
	require.NoError(t, up())
	down = false
	_, took := commitAndSync(t, f, "drift on its shipped schedule again", func(work string) error {
		return argocdtest.EditFile(work, overlay, added, "")
	})
	a, err = f.h.App(ctx, childApp)
	require.NoError(t, err)
	var cronResult, postSync string
	for _, r := range a.Status.OperationState.SyncResult.Resources {
		switch {
		case r.Kind == "CronJob" && r.Name == driftCronJob:
			cronResult = r.Status + " (" + r.Message + ")"
		case r.HookType == "PostSync" && r.Kind == "Job":
			postSync = r.HookPhase
		}
	}
	assert.Equal(t, "Succeeded", postSync, "the PostSync hook ran: %s", a)
	cj, err = cronJobs.Get(ctx, driftCronJob, metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEqual(t, degraded, cj.UID, "the sync recreated the CronJob")
	t.Logf("after the failed run the next commit synced to %s/%s/%s in %.1fs; CronJob in the sync: %s",
		a.Phase(), a.Status.Sync.Status, a.Status.Health.Status, took.Seconds(), cronResult)
}

func jobFailed(j *batchv1.Job) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
