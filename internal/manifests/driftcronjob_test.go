package manifests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const driftCronJobName = "litemaas-sync-drift"

// checkDriftCronJob: the drift CronJob runs exactly what the PostSync hook runs (same container:
// image, arguments, environment, mounts, limits; same identity, catalog volume, pod security, failure
// policy and pod labels), never two at once, on by default every 15 minutes, and is no hook.
func checkDriftCronJob(objs []*unstructured.Unstructured) []string {
	var p problems
	job := Find(objs, "Job", syncJobName)
	cron := Find(objs, "CronJob", driftCronJobName)
	if job == nil || cron == nil {
		return []string{"Job/" + syncJobName + " and CronJob/" + driftCronJobName + " must both be rendered"}
	}
	spec := mapAt(cron.Object, "spec")
	if got := stringAt(spec, "schedule"); got != "*/15 * * * *" {
		p.addf("%s: schedule %q, want the default */15 * * * *", ref(cron), got)
	}
	if got := stringAt(spec, "concurrencyPolicy"); got != "Forbid" {
		p.addf("%s: concurrencyPolicy %q, want Forbid", ref(cron), got)
	}
	if isTrue(spec, "suspend") {
		p.addf("%s: suspended; it is on by default", ref(cron))
	}
	if cron.GetAnnotations()["argocd.argoproj.io/hook"] != "" {
		p.addf("%s: an Argo CD hook; it must be an ordinary resource", ref(cron))
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

func TestDriftCronJobRunsTheHooksReconcile(t *testing.T) {
	for _, tg := range targets {
		if tg.kind != appTarget {
			continue
		}
		t.Run(tg.dir, func(t *testing.T) {
			report(t, "drift CronJob", checkDriftCronJob(rendered(t, tg.dir)))
		})
	}
}

// Each way the CronJob can drift from the hook is caught.
func TestDriftCronJobCheckCanFail(t *testing.T) {
	container := func(o []*unstructured.Unstructured) map[string]any {
		return containerNamed(mapAt(Find(o, "CronJob", driftCronJobName).Object, "spec", "jobTemplate", "spec", "template", "spec"), syncJobName)
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, o []*unstructured.Unstructured)
		want   string
	}{
		{"another image", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(container(o), "ghcr.io/litemaas-gitops/litemaas-sync:0.0.9", "image"))
		}, "container litemaas-sync differs"},
		{"an env value", func(t *testing.T, o []*unstructured.Unstructured) {
			env := listAt(container(o), "env")
			env[0].(map[string]any)["value"] = "/elsewhere.yaml"
		}, "container litemaas-sync differs"},
		{"another identity", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(Find(o, "CronJob", driftCronJobName).Object, "default", "spec", "jobTemplate", "spec", "template", "spec", "serviceAccountName"))
		}, "pod serviceAccountName differs"},
		{"concurrent runs allowed", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(Find(o, "CronJob", driftCronJobName).Object, "Allow", "spec", "concurrencyPolicy"))
		}, "concurrencyPolicy"},
		{"suspended", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(Find(o, "CronJob", driftCronJobName).Object, true, "spec", "suspend"))
		}, "suspended"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := rendered(t, targets[0].dir)
			require.Empty(t, checkDriftCronJob(o))
			tc.mutate(t, o)
			ps := checkDriftCronJob(o)
			require.NotEmpty(t, ps)
			assert.Contains(t, ps[0], tc.want)
		})
	}
}
