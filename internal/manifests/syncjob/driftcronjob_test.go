package syncjob

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

func TestDriftCronJobRunsTheHooksReconcile(t *testing.T) {
	for _, tg := range manifeststest.Targets(t) {
		if tg.Kind != targets.AppTarget {
			continue
		}
		t.Run(tg.Dir, func(t *testing.T) {
			manifeststest.Report(t, "drift CronJob", CheckDriftCronJob(manifeststest.Rendered(t, tg.Dir)))
		})
	}
}

// Each way the CronJob can go wrong that kustomize does not rule out is caught.
func TestDriftCronJobCheckCanFail(t *testing.T) {
	cronJob := func(o []*unstructured.Unstructured) *unstructured.Unstructured {
		return objects.Find(o, "CronJob", driftCronJobName)
	}
	tests := []struct {
		name   string
		mutate func(t *testing.T, o []*unstructured.Unstructured)
		want   string
	}{
		{"no pod: the overlay does not run base/drift-cronjob", func(t *testing.T, o []*unstructured.Unstructured) {
			unstructured.RemoveNestedField(cronJob(o).Object, "spec", "jobTemplate", "spec", "template")
		}, "no container litemaas-sync"},
		{"concurrent runs allowed", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(cronJob(o).Object, "Allow", "spec", "concurrencyPolicy"))
		}, "concurrencyPolicy"},
		{"no schedule", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(cronJob(o).Object, "hourly", "spec", "schedule"))
		}, "not a cron schedule"},
		{"counted in the Application's health", func(t *testing.T, o []*unstructured.Unstructured) {
			cron := cronJob(o)
			ann := cron.GetAnnotations()
			delete(ann, "argocd.argoproj.io/ignore-healthcheck")
			cron.SetAnnotations(ann)
		}, "ignore-healthcheck"},
		{"updated in place by a sync", func(t *testing.T, o []*unstructured.Unstructured) {
			cron := cronJob(o)
			ann := cron.GetAnnotations()
			ann["argocd.argoproj.io/sync-options"] = "Replace=true"
			cron.SetAnnotations(ann)
		}, "Force=true and Replace=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := manifeststest.Rendered(t, manifeststest.SampleOverlay(t).Dir)
			require.Empty(t, CheckDriftCronJob(o))
			tc.mutate(t, o)
			ps := CheckDriftCronJob(o)
			require.NotEmpty(t, ps)
			assert.Contains(t, ps[0], tc.want)
		})
	}
}

// sameRun is what differs between the drift CronJob's run and the PostSync Job's in a rendering (the
// pod template and podFailurePolicy base/drift-cronjob copies), or "".
func sameRun(objs []*unstructured.Unstructured) string {
	job, cron := objects.Find(objs, "Job", objects.SyncJobName), objects.Find(objs, "CronJob", driftCronJobName)
	if job == nil || cron == nil {
		return "Job or CronJob not rendered"
	}
	for _, field := range []string{"template", "podFailurePolicy"} {
		want, got := objects.MapAt(job.Object, "spec", field), objects.MapAt(cron.Object, "spec", "jobTemplate", "spec", field)
		if want == nil || !equality.Semantic.DeepEqual(want, got) {
			return "spec.jobTemplate.spec." + field + " is not the Job's spec." + field
		}
	}
	return ""
}

// The replacement of base/drift-cronjob, in every rendered overlay: the CronJob runs exactly the
// PostSync Job's pod (container, volumes, identity, security, labels) and failure policy, with every
// component's and overlay's changes to the Job.
func TestDriftCronJobRunsTheJobsPod(t *testing.T) {
	n := 0
	for _, tg := range manifeststest.Targets(t) {
		if tg.Kind != targets.AppTarget && tg.Kind != targets.HATarget {
			continue
		}
		n++
		t.Run(tg.Dir, func(t *testing.T) {
			assert.Empty(t, sameRun(manifeststest.Rendered(t, tg.Dir)))
		})
	}
	require.NotZero(t, n, "no overlay rendered")
}

// base/drift-cronjob runs after a component's patch and after the overlay's own patch of the Job, at
// the level that lists it; an overlay on top of another that changes the Job without listing it keeps
// the lower level's copy, and the comparison above reports it.
func TestDriftCronJobFollowsEveryPatch(t *testing.T) {
	root := manifeststest.CopyTree(t)
	overlay := func(transformers string) []*unstructured.Unstructured {
		dir := filepath.Join(root, "gitops", "overlays", "drift-probe")
		require.NoError(t, os.MkdirAll(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(`resources:
  - ../example
components:
  - ../../components/job-image-pull-secret
patches:
  - target: {kind: Job, name: litemaas-sync}
    patch: |-
      - op: add
        path: /spec/template/spec/containers/0/env/-
        value: {name: DRIFT_PROBE, value: overlay}
`+transformers), 0o644))
		objs, err := objects.Render(dir)
		require.NoError(t, err)
		return objs
	}
	objs := overlay("transformers:\n  - ../../base/drift-cronjob\n")
	require.Empty(t, sameRun(objs))
	pod := objects.MapAt(objects.Find(objs, "CronJob", driftCronJobName).Object, "spec", "jobTemplate", "spec", "template", "spec")
	assert.Contains(t, objects.EnvOf(objects.ContainerNamed(pod, objects.SyncJobName)), "DRIFT_PROBE", "the overlay's own patch")
	assert.NotEmpty(t, objects.ListAt(pod, "imagePullSecrets"), "the component's patch")

	assert.Contains(t, sameRun(overlay("")), "spec.jobTemplate.spec.template", "without the transformer at this level")
}
