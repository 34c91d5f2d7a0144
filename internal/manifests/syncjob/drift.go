package syncjob

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

const driftCronJobName = "litemaas-sync-drift"

// CheckDriftCronJob: the drift CronJob runs the job's program, never two at once, on a cron schedule
// (the overlay may change it, or suspend the CronJob), and is no hook. Its pod is the PostSync Job's,
// copied by kustomize (gitops/base/drift-cronjob, the last transformer of every overlay), so only its
// presence is checked here: an overlay without that transformer renders a CronJob without a pod.
// A failed run makes Argo CD (3.2 and later) call the CronJob Degraded; two annotations keep that from
// the Application: ignore-healthcheck (its health between syncs) and Replace with Force (every sync
// recreates it with an empty, Healthy status, as a sync health-checks what it applies and ignores
// ignore-healthcheck).
func CheckDriftCronJob(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	job := objects.Find(objs, "Job", objects.SyncJobName)
	cron := objects.Find(objs, "CronJob", driftCronJobName)
	if job == nil || cron == nil {
		return []string{"Job/" + objects.SyncJobName + " and CronJob/" + driftCronJobName + " must both be rendered"}
	}
	spec := objects.MapAt(cron.Object, "spec")
	// The period is the overlay's to choose (default every 15 minutes); it must still be a schedule.
	if got := objects.StringAt(spec, "schedule"); len(strings.Fields(got)) != 5 && !strings.HasPrefix(got, "@") {
		p.Addf("%s: schedule %q is not a cron schedule (five fields, e.g. */15 * * * *)", objects.Ref(cron), got)
	}
	if got := objects.StringAt(spec, "concurrencyPolicy"); got != "Forbid" {
		p.Addf("%s: concurrencyPolicy %q, want Forbid", objects.Ref(cron), got)
	}
	if cron.GetAnnotations()["argocd.argoproj.io/hook"] != "" {
		p.Addf("%s: an Argo CD hook; it must be an ordinary resource", objects.Ref(cron))
	}
	ann := cron.GetAnnotations()
	if ann["argocd.argoproj.io/ignore-healthcheck"] != "true" {
		p.Addf("%s: annotation argocd.argoproj.io/ignore-healthcheck must be \"true\": a failed run would make the Application Degraded", objects.Ref(cron))
	}
	opts := map[string]bool{}
	for _, o := range strings.Split(ann["argocd.argoproj.io/sync-options"], ",") {
		opts[strings.TrimSpace(o)] = true
	}
	if !opts["Force=true"] || !opts["Replace=true"] {
		p.Addf("%s: annotation argocd.argoproj.io/sync-options %q must hold Force=true and Replace=true: a failed run would fail every sync's health check", objects.Ref(cron), ann["argocd.argoproj.io/sync-options"])
	}
	if objects.ContainerNamed(objects.MapAt(spec, "jobTemplate", "spec", "template", "spec"), objects.SyncJobName) == nil {
		p.Addf("%s: no container %s: list gitops/base/drift-cronjob under the overlay's transformers: (last), which gives the CronJob the PostSync Job's pod", objects.Ref(cron), objects.SyncJobName)
	}
	return p
}
