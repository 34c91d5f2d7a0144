package manifests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

const driftCronJobName = "litemaas-sync-drift"

// The drift CronJob runs exactly what the PostSync hook runs: same container (image, arguments,
// environment, mounts, limits), same identity, same catalog volume; never two at once; on by default
// every 15 minutes.
func TestDriftCronJobRunsTheHooksReconcile(t *testing.T) {
	for _, tg := range targets {
		if tg.kind != appTarget {
			continue
		}
		t.Run(tg.dir, func(t *testing.T) {
			objs := rendered(t, tg.dir)
			job := Find(objs, "Job", syncJobName)
			cron := Find(objs, "CronJob", driftCronJobName)
			require.NotNil(t, job)
			require.NotNil(t, cron, "the drift CronJob is on in every overlay")
			spec := mapAt(cron.Object, "spec")
			assert.Equal(t, "*/15 * * * *", stringAt(spec, "schedule"))
			assert.Equal(t, "Forbid", stringAt(spec, "concurrencyPolicy"))
			assert.False(t, isTrue(spec, "suspend"))
			assert.Empty(t, cron.GetAnnotations()["argocd.argoproj.io/hook"], "an ordinary resource, not a hook")

			hookPod := mapAt(job.Object, "spec", "template", "spec")
			cronPod := mapAt(spec, "jobTemplate", "spec", "template", "spec")
			assert.Equal(t, containerNamed(hookPod, syncJobName), containerNamed(cronPod, syncJobName), "the container")
			for _, field := range []string{"serviceAccountName", "volumes", "securityContext", "restartPolicy"} {
				assert.Equal(t, hookPod[field], cronPod[field], field)
			}
			assert.Equal(t, mapAt(job.Object, "spec", "podFailurePolicy"), mapAt(spec, "jobTemplate", "spec", "podFailurePolicy"))
			assert.Equal(t, mapAt(job.Object, "spec", "template", "metadata", "labels"), mapAt(spec, "jobTemplate", "spec", "template", "metadata", "labels"),
				"pod labels: no part-of, so `oc wait` skips its pods too")
		})
	}
}

// A CronJob whose container drifted from the hook's is caught.
func TestDriftCronJobCheckCanFail(t *testing.T) {
	objs := rendered(t, targets[0].dir)
	cron := Find(objs, "CronJob", driftCronJobName)
	require.NotNil(t, cron)
	c := containerNamed(mapAt(cron.Object, "spec", "jobTemplate", "spec", "template", "spec"), syncJobName)
	require.NoError(t, unstructured.SetNestedField(c, "ghcr.io/litemaas-gitops/litemaas-sync:0.0.9", "image"))
	hook := containerNamed(mapAt(Find(objs, "Job", syncJobName).Object, "spec", "template", "spec"), syncJobName)
	assert.NotEqual(t, hook, c)
}
