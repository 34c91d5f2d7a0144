package syncjob

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

const driftCronJobName = "litemaas-sync-drift"

// CheckDriftCronJob: the drift CronJob runs exactly what the PostSync hook runs (same container:
// image, arguments, environment, mounts, limits; same identity, catalog volume, pod security, failure
// policy and pod labels), never two at once, on a cron schedule (the overlay may change it, or suspend the CronJob), and is no hook.
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
	hook, drift := objects.MapAt(job.Object, "spec"), objects.MapAt(spec, "jobTemplate", "spec")
	if !equality.Semantic.DeepEqual(objects.ContainerNamed(objects.MapAt(hook, "template", "spec"), objects.SyncJobName), objects.ContainerNamed(objects.MapAt(drift, "template", "spec"), objects.SyncJobName)) {
		p.Addf("%s: container %s differs from the PostSync Job's", objects.Ref(cron), objects.SyncJobName)
	}
	for _, field := range []string{"serviceAccountName", "volumes", "securityContext", "restartPolicy"} {
		if !equality.Semantic.DeepEqual(objects.MapAt(hook, "template", "spec")[field], objects.MapAt(drift, "template", "spec")[field]) {
			p.Addf("%s: pod %s differs from the PostSync Job's", objects.Ref(cron), field)
		}
	}
	if !equality.Semantic.DeepEqual(objects.MapAt(hook, "podFailurePolicy"), objects.MapAt(drift, "podFailurePolicy")) {
		p.Addf("%s: podFailurePolicy differs from the PostSync Job's", objects.Ref(cron))
	}
	if !equality.Semantic.DeepEqual(objects.MapAt(hook, "template", "metadata", "labels"), objects.MapAt(drift, "template", "metadata", "labels")) {
		p.Addf("%s: pod labels differ from the PostSync Job's", objects.Ref(cron))
	}
	return p
}
