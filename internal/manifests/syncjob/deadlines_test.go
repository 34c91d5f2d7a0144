package syncjob

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

// The Job deadlines of deadlines.go over every overlay, the arithmetic, and the cases that must break it.

func TestJobDeadlinesLetTheProgramEndFirst(t *testing.T) {
	for _, tg := range manifeststest.Targets(t) {
		if tg.Kind != targets.AppTarget && tg.Kind != targets.HATarget {
			continue
		}
		t.Run(tg.Dir, func(t *testing.T) {
			objs := manifeststest.Rendered(t, tg.Dir)
			require.Len(t, jobSpecs(objs), 2, "the hook Job and the drift CronJob")
			manifeststest.Report(t, "Job deadlines", CheckJobDeadlines(objs))
		})
	}
}

func TestDeadlineArithmetic(t *testing.T) {
	tests := []struct {
		name     string
		deadline int64
		ok       bool
	}{
		{"the old deadline, exactly WAIT_TIMEOUT + RETRY_TIMEOUT", 900, false},
		{"no room for the status write", 905, false},
		{"a minute above", 960, true},
	}
	wait, retry, err := reconcileTimeouts()
	require.NoError(t, err)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// No env: the program's defaults apply. One attempt, as the check requires.
			spec := map[string]any{
				"activeDeadlineSeconds": tc.deadline,
				"backoffLimit":          int64(0),
				"template":              map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": objects.SyncJobName}}}},
			}
			ps := checkJobDeadline("Job/"+objects.SyncJobName, spec, wait, retry)
			assert.Equal(t, tc.ok, len(ps) == 0, "%v", ps)
		})
	}
}

// The check reads the timeouts the Job sets, and fails on a deadline missing, too short or a Job gone.
func TestJobDeadlinesRejectBrokenJobs(t *testing.T) {
	const overlay = "gitops/overlays/example"
	driftSpec := func(t *testing.T, o []*unstructured.Unstructured) map[string]any {
		return objects.MapAt(manifeststest.MustFind(t, o, "CronJob", driftCronJobName).Object, "spec", "jobTemplate", "spec")
	}
	tests := []struct {
		name    string
		breakIt func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured
		want    string
	}{
		{"the drift CronJob at WAIT_TIMEOUT + RETRY_TIMEOUT", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, driftSpec(t, o), int64(900), "activeDeadlineSeconds")
			return o
		}, "CronJob/" + driftCronJobName + ": activeDeadlineSeconds 900 must be above 15m30s = WAIT_TIMEOUT + RETRY_TIMEOUT"},
		{"the hook Job without a deadline", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			unstructured.RemoveNestedField(manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "spec", "activeDeadlineSeconds")
			return o
		}, "Job/" + objects.SyncJobName + ": no activeDeadlineSeconds"},
		{"a longer wait set on the Job", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Job", objects.SyncJobName, objects.SyncJobName, "WAIT_TIMEOUT", "30m")
			return o
		}, "Job/" + objects.SyncJobName + ": activeDeadlineSeconds 960 must be above 35m30s"},
		{"an unreadable retry timeout", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Job", objects.SyncJobName, objects.SyncJobName, "RETRY_TIMEOUT", "five minutes")
			return o
		}, "Job/" + objects.SyncJobName + ": env RETRY_TIMEOUT: "},
		{"the hook Job retried", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, int64(2), "spec", "backoffLimit")
			return o
		}, "Job/" + objects.SyncJobName + ": backoffLimit 2: activeDeadlineSeconds covers all attempts"},
		{"the secrets hook Job at Kubernetes' default retries", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			unstructured.RemoveNestedField(manifeststest.MustFind(t, o, "Job", "litemaas-secrets").Object, "spec", "backoffLimit")
			return o
		}, "Job/litemaas-secrets: backoffLimit 6"},
		{"the drift CronJob gone", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.MustFind(t, o, "CronJob", driftCronJobName)
			return manifeststest.DeleteObject(o, "CronJob", driftCronJobName)
		}, "CronJob/" + driftCronJobName + " is missing"},
	}
	require.Empty(t, CheckJobDeadlines(manifeststest.Rendered(t, overlay)), "the unbroken overlay passes")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.breakIt(t, manifeststest.Rendered(t, overlay))
			assert.Contains(t, strings.Join(CheckJobDeadlines(objs), "\n"), tt.want)
		})
	}
}
