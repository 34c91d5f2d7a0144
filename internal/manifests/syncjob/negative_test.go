package syncjob

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// brokenCase is manifeststest.BrokenCase, declared here so that the table lists its fields in order.
type brokenCase struct {
	Name  string
	Check func(t *testing.T, objs []*unstructured.Unstructured) []string
	Break func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured
	Want  string // a substring of one reported problem
}

// Each rule must be able to fail: every case below breaks one thing in an otherwise good rendering of
// the sample overlay and asserts that the rule reports it (and that the unbroken rendering passes it).
func TestRulesRejectBrokenObjects(t *testing.T) {
	manifeststest.RunBrokenCases(t, manifeststest.SampleOverlay(t).Dir, []brokenCase{
		// hooks
		{"hook Job without deadline", manifeststest.Plain(CheckHookJobs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(objects.MapAt(manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "spec"), "activeDeadlineSeconds")
			return o
		}, "activeDeadlineSeconds"},
		{"hook Job without delete policy", manifeststest.Plain(CheckHookJobs), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			j := manifeststest.MustFind(t, o, "Job", objects.SyncJobName)
			a := j.GetAnnotations()
			delete(a, objects.HookDeleteAnnotation)
			j.SetAnnotations(a)
			return o
		}, objects.HookDeleteAnnotation},

		// the sync Job
		{"extra Job env", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Job", objects.SyncJobName, objects.SyncJobName, "LITELLM_API_KEY", "x")
			return o
		}, "env names"},
		{"missing Job env", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			c := manifeststest.ContainerOf(t, o, "Job", objects.SyncJobName, objects.SyncJobName)
			var kept []any
			for _, e := range objects.Maps(objects.ListAt(c, "env")) {
				if objects.StringAt(e, "name") != "WAIT_FOR" {
					kept = append(kept, e)
				}
			}
			c["env"] = kept
			return o
		}, "env names"},
		{"deadline below WAIT_TIMEOUT", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, int64(600), "spec", "activeDeadlineSeconds")
			return o
		}, "WAIT_TIMEOUT"},
		{"no podFailurePolicy", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			delete(objects.MapAt(manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "spec"), "podFailurePolicy")
			return o
		}, "exit code 2"},
		{"podFailurePolicy on another exit code", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			rule := objects.Maps(objects.ListAt(manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, "spec", "podFailurePolicy", "rules"))[0]
			manifeststest.Set(t, rule, []any{int64(1)}, "onExitCodes", "values")
			return o
		}, "exit code 2"},
		{"Job mounts another ConfigMap", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			v := objects.Maps(objects.ListAt(manifeststest.PodSpecOf(t, o, "Job", objects.SyncJobName), "volumes"))[0]
			manifeststest.Set(t, v, "litemaas-models", "configMap", "name")
			return o
		}, "mounts no volume"},
		{"MODELS_FILE elsewhere", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Job", objects.SyncJobName, objects.SyncJobName, "MODELS_FILE", "/models.yaml")
			return o
		}, "MODELS_FILE"},
		{"hook deletes itself too early", manifeststest.Plain(CheckSyncJob), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, int64(5), "spec", "ttlSecondsAfterFinished")
			return o
		}, "ttlSecondsAfterFinished"},

		// RBAC
		{"Role on the ungenerated ConfigMap name", manifeststest.Plain(CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			rule := objects.Maps(objects.ListAt(manifeststest.MustFind(t, o, "Role", objects.SyncJobName).Object, "rules"))[1]
			rule["resourceNames"] = []any{"litemaas-models"}
			return o
		}, "resourceNames"},
		{"Role reads secrets", manifeststest.Plain(CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			r := manifeststest.MustFind(t, o, "Role", objects.SyncJobName)
			r.Object["rules"] = append(objects.ListAt(r.Object, "rules"), map[string]any{"apiGroups": []any{""}, "resources": []any{"secrets"}, "verbs": []any{"get"}})
			return o
		}, "unexpected rule"},
		{"Role may create ConfigMaps", manifeststest.Plain(CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			for _, rule := range objects.Maps(objects.ListAt(manifeststest.MustFind(t, o, "Role", objects.SyncJobName).Object, "rules")) {
				if slices.Equal(objects.Strs(objects.ListAt(rule, "resourceNames")), []string{objects.SyncStatusConfigMap}) {
					rule["verbs"] = []any{"get", "update", "create"}
				}
			}
			return o
		}, "want get and update"},
		{"status ConfigMap not shipped", manifeststest.Plain(CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			var kept []*unstructured.Unstructured
			for _, x := range o {
				if x.GetName() != objects.SyncStatusConfigMap {
					kept = append(kept, x)
				}
			}
			return kept
		}, "ConfigMap/litemaas-sync-status is missing"},
		{"ClusterRole", manifeststest.Plain(CheckSyncRBAC), func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return append(o, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "litemaas-sync"}}})
		}, "cluster-wide"},
	})
}
