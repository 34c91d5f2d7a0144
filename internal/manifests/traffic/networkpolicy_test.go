package traffic

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// The truth table of networkpolicy.go over every overlay, printed, and the cases that must break it.

// TestNetworkPolicyTruthTable prints each overlay's table; its problems are those CheckNetworkPolicies
// reports to `litemaas-ops check`.
func TestNetworkPolicyTruthTable(t *testing.T) {
	for _, dir := range manifeststest.LiteMaaSOverlays(t) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			objs := manifeststest.Rendered(t, dir)
			table, ps := truthTable(objs)
			t.Logf("%s (rows: source; columns: service:port; ! = differs from what LiteMaaS needs):\n%s", dir, table)
			assert.Equal(t, ps, CheckNetworkPolicies(objs), "the check reports the table's problems")
			manifeststest.Report(t, dir, ps)
		})
	}
}

// The truth table fails when a policy is missing, too wide or unlabelled.
func TestNetworkPolicyTruthTableRejects(t *testing.T) {
	const overlay = "gitops/overlays/example-with-options"
	deletePolicy := func(name string) func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
		return func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.MustFind(t, o, "NetworkPolicy", name)
			return slices.DeleteFunc(o, func(x *unstructured.Unstructured) bool { return x.GetKind() == "NetworkPolicy" && x.GetName() == name })
		}
	}
	tests := []struct {
		name    string
		breakIt func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured
		want    string
	}{
		{"no default deny", deletePolicy("default-deny-ingress"), "no default-deny policy"},
		{"postgres policy removed", deletePolicy("postgres"), "backend -> postgres:5432 is refused but LiteMaaS needs it"},
		{"redis policy removed", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return deletePolicy("default-deny-ingress")(t, deletePolicy("redis")(t, o))
		}, "stray-pod -> redis:6379 is allowed"},
		{"litellm policy removed", deletePolicy("litellm"), "router -> litellm:4000 is refused but LiteMaaS needs it"},
		{"no policies at all", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return slices.DeleteFunc(o, func(x *unstructured.Unstructured) bool { return x.GetKind() == "NetworkPolicy" })
		}, "no NetworkPolicy rendered"},
		{"postgres open to the whole namespace", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			np := manifeststest.MustFind(t, o, "NetworkPolicy", "postgres")
			rules := objects.ListAt(np.Object, "spec", "ingress")
			rules[0].(map[string]any)["from"] = append(objects.ListAt(rules[0].(map[string]any), "from"), map[string]any{"podSelector": map[string]any{}})
			return o
		}, "frontend -> postgres:5432 is allowed (by litemaas/postgres)"},
		{"postgres open to every namespace", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			np := manifeststest.MustFind(t, o, "NetworkPolicy", "postgres")
			rules := objects.ListAt(np.Object, "spec", "ingress")
			rules[0].(map[string]any)["from"] = append(objects.ListAt(rules[0].(map[string]any), "from"), map[string]any{"namespaceSelector": map[string]any{}})
			return o
		}, "other-namespace -> postgres:5432 is allowed"},
		{"the PostSync job without its network label", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			job := manifeststest.MustFind(t, o, "Job", "litemaas-sync")
			unstructured.RemoveNestedField(job.Object, "spec", "template", "metadata", "labels", "litemaas.io/network")
			return o
		}, "litemaas-sync -> postgres:5432 is refused but LiteMaaS needs it"},
		{"the backup pods relabelled", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			cj := manifeststest.MustFind(t, o, "CronJob", "postgres-backup")
			manifeststest.Set(t, cj.Object, "dump", "spec", "jobTemplate", "spec", "template", "metadata", "labels", objects.LabelName)
			return o
		}, "postgres-backup -> postgres:5432 is refused but LiteMaaS needs it"},
		{"a Route LiteMaaS does not have", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			rt := manifeststest.MustFind(t, o, "Route", "litemaas-api")
			unstructured.RemoveNestedField(rt.Object, "metadata", "annotations")
			o = slices.DeleteFunc(o, func(x *unstructured.Unstructured) bool { return x == rt })
			return o
		}, "router -> backend:8080 is allowed (by litemaas/backend-from-router) but LiteMaaS does not need it"},
		{"an egress policy", func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			np := manifeststest.MustFind(t, o, "NetworkPolicy", "frontend")
			manifeststest.Set(t, np.Object, []any{"Ingress", "Egress"}, "spec", "policyTypes")
			return o
		}, "restricts egress"},
	}
	require.Empty(t, CheckNetworkPolicies(manifeststest.Rendered(t, overlay)), "the unbroken overlay passes")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.breakIt(t, manifeststest.Rendered(t, overlay))
			assert.Contains(t, strings.Join(CheckNetworkPolicies(objs), "\n"), tt.want)
		})
	}
}
