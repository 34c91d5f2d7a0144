package syncjob

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

// Each way the CronJob can drift from the hook is caught.
func TestDriftCronJobCheckCanFail(t *testing.T) {
	container := func(o []*unstructured.Unstructured) map[string]any {
		return objects.ContainerNamed(objects.MapAt(objects.Find(o, "CronJob", driftCronJobName).Object, "spec", "jobTemplate", "spec", "template", "spec"), objects.SyncJobName)
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
			env := objects.ListAt(container(o), "env")
			env[0].(map[string]any)["value"] = "/elsewhere.yaml"
		}, "container litemaas-sync differs"},
		{"another identity", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(objects.Find(o, "CronJob", driftCronJobName).Object, "default", "spec", "jobTemplate", "spec", "template", "spec", "serviceAccountName"))
		}, "pod serviceAccountName differs"},
		{"concurrent runs allowed", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(objects.Find(o, "CronJob", driftCronJobName).Object, "Allow", "spec", "concurrencyPolicy"))
		}, "concurrencyPolicy"},
		{"no schedule", func(t *testing.T, o []*unstructured.Unstructured) {
			require.NoError(t, unstructured.SetNestedField(objects.Find(o, "CronJob", driftCronJobName).Object, "hourly", "spec", "schedule"))
		}, "not a cron schedule"},
		{"counted in the Application's health", func(t *testing.T, o []*unstructured.Unstructured) {
			cron := objects.Find(o, "CronJob", driftCronJobName)
			ann := cron.GetAnnotations()
			delete(ann, "argocd.argoproj.io/ignore-healthcheck")
			cron.SetAnnotations(ann)
		}, "ignore-healthcheck"},
		{"updated in place by a sync", func(t *testing.T, o []*unstructured.Unstructured) {
			cron := objects.Find(o, "CronJob", driftCronJobName)
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
