package manifests

import (
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const driftCronJobName = "litemaas-sync-drift"

// checkDriftCronJob: the drift CronJob runs exactly what the PostSync hook runs (same container:
// image, arguments, environment, mounts, limits; same identity, catalog volume, pod security, failure
// policy and pod labels), never two at once, on a cron schedule (the overlay may change it, or suspend the CronJob), and is no hook.
// A failed run makes Argo CD (3.2 and later) call the CronJob Degraded; two annotations keep that from
// the Application: ignore-healthcheck (its health between syncs) and Replace with Force (every sync
// recreates it with an empty, Healthy status, as a sync health-checks what it applies and ignores
// ignore-healthcheck).
func checkDriftCronJob(objs []*unstructured.Unstructured) []string {
	var p problems
	job := Find(objs, "Job", syncJobName)
	cron := Find(objs, "CronJob", driftCronJobName)
	if job == nil || cron == nil {
		return []string{"Job/" + syncJobName + " and CronJob/" + driftCronJobName + " must both be rendered"}
	}
	spec := mapAt(cron.Object, "spec")
	// The period is the overlay's to choose (default every 15 minutes); it must still be a schedule.
	if got := stringAt(spec, "schedule"); len(strings.Fields(got)) != 5 && !strings.HasPrefix(got, "@") {
		p.addf("%s: schedule %q is not a cron schedule (five fields, e.g. */15 * * * *)", ref(cron), got)
	}
	if got := stringAt(spec, "concurrencyPolicy"); got != "Forbid" {
		p.addf("%s: concurrencyPolicy %q, want Forbid", ref(cron), got)
	}
	if cron.GetAnnotations()["argocd.argoproj.io/hook"] != "" {
		p.addf("%s: an Argo CD hook; it must be an ordinary resource", ref(cron))
	}
	ann := cron.GetAnnotations()
	if ann["argocd.argoproj.io/ignore-healthcheck"] != "true" {
		p.addf("%s: annotation argocd.argoproj.io/ignore-healthcheck must be \"true\": a failed run would make the Application Degraded", ref(cron))
	}
	opts := map[string]bool{}
	for _, o := range strings.Split(ann["argocd.argoproj.io/sync-options"], ",") {
		opts[strings.TrimSpace(o)] = true
	}
	if !opts["Force=true"] || !opts["Replace=true"] {
		p.addf("%s: annotation argocd.argoproj.io/sync-options %q must hold Force=true and Replace=true: a failed run would fail every sync's health check", ref(cron), ann["argocd.argoproj.io/sync-options"])
	}
	hook, drift := mapAt(job.Object, "spec"), mapAt(spec, "jobTemplate", "spec")
	if !equality.Semantic.DeepEqual(containerNamed(mapAt(hook, "template", "spec"), syncJobName), containerNamed(mapAt(drift, "template", "spec"), syncJobName)) {
		p.addf("%s: container %s differs from the PostSync Job's", ref(cron), syncJobName)
	}
	for _, field := range []string{"serviceAccountName", "volumes", "securityContext", "restartPolicy"} {
		if !equality.Semantic.DeepEqual(mapAt(hook, "template", "spec")[field], mapAt(drift, "template", "spec")[field]) {
			p.addf("%s: pod %s differs from the PostSync Job's", ref(cron), field)
		}
	}
	if !equality.Semantic.DeepEqual(mapAt(hook, "podFailurePolicy"), mapAt(drift, "podFailurePolicy")) {
		p.addf("%s: podFailurePolicy differs from the PostSync Job's", ref(cron))
	}
	if !equality.Semantic.DeepEqual(mapAt(hook, "template", "metadata", "labels"), mapAt(drift, "template", "metadata", "labels")) {
		p.addf("%s: pod labels differ from the PostSync Job's", ref(cron))
	}
	return p
}
