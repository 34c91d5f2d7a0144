package manifests

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

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
		{"no schedule", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(Find(o, "CronJob", driftCronJobName).Object, "hourly", "spec", "schedule"))
		}, "not a cron schedule"},
		{"counted in the Application's health", func(t *testing.T, o []*unstructured.Unstructured) {
			cron := Find(o, "CronJob", driftCronJobName)
			ann := cron.GetAnnotations()
			delete(ann, "argocd.argoproj.io/ignore-healthcheck")
			cron.SetAnnotations(ann)
		}, "ignore-healthcheck"},
		{"updated in place by a sync", func(t *testing.T, o []*unstructured.Unstructured) {
			cron := Find(o, "CronJob", driftCronJobName)
			ann := cron.GetAnnotations()
			ann["argocd.argoproj.io/sync-options"] = "Replace=true"
			cron.SetAnnotations(ann)
		}, "Force=true and Replace=true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := rendered(t, sampleOverlay(t).dir)
			require.Empty(t, checkDriftCronJob(o))
			tc.mutate(t, o)
			ps := checkDriftCronJob(o)
			require.NotEmpty(t, ps)
			assert.Contains(t, ps[0], tc.want)
		})
	}
}
