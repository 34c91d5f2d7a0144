package openshifttest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

func subscription(ns, name, channel, startingCSV, approval string) *unstructured.Unstructured {
	spec := map[string]any{"name": "cloudnative-pg", "source": "certified-operators", "sourceNamespace": "openshift-marketplace",
		"installPlanApproval": approval}
	if channel != "" {
		spec["channel"] = channel
	}
	if startingCSV != "" {
		spec["startingCSV"] = startingCSV
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec,
	}}
}

func TestOLM(t *testing.T) {
	ctx := context.Background()
	root, err := manifests.RepoRoot()
	require.NoError(t, err)
	cat, err := manifests.LoadOLMCatalog(root)
	require.NoError(t, err)
	crds, err := openshifttest.OLMCRDs()
	require.NoError(t, err)
	kube.Apply(t, crds...)
	// The CRDs a bundle installs are recorded here instead of applied, so that the test does not depend
	// on (nor disturb) the CloudNativePG CRDs of the other tests.
	var installed []string
	o := &openshifttest.OLM{Dynamic: kube.Dynamic(), Catalog: cat, Log: t.Logf,
		Apply: func(ctx context.Context, objs ...*unstructured.Unstructured) error {
			for _, u := range objs {
				installed = append(installed, u.GetName())
			}
			return nil
		}}
	start(t, o.Start)
	dyn := kube.Dynamic()
	ns := kube.CreateNamespace(t, "olm")
	subs := dyn.Resource(openshifttest.SubscriptionGVR).Namespace(ns)
	plans := dyn.Resource(openshifttest.InstallPlanGVR).Namespace(ns)

	t.Run("a channel the catalog lacks resolves nothing", func(t *testing.T) {
		_, err := subs.Create(ctx, subscription(ns, "wrong-channel", "stable-v1.27", "", "Manual"), metav1.CreateOptions{})
		require.NoError(t, err)
		sub := eventually(t, "ResolutionFailed", getObj(dyn, openshifttest.SubscriptionGVR, ns, "wrong-channel"), func(u *unstructured.Unstructured) bool {
			return cond(u, "ResolutionFailed") == "True"
		})
		assert.Contains(t, condMessage(sub, "ResolutionFailed"), "no operators found in channel stable-v1.27 of package cloudnative-pg")
		list, err := plans.List(ctx, metav1.ListOptions{})
		require.NoError(t, err)
		assert.Empty(t, list.Items, "no InstallPlan")
	})
	t.Run("a startingCSV outside the channel resolves nothing", func(t *testing.T) {
		_, err := subs.Create(ctx, subscription(ns, "wrong-csv", "candidate", "cloudnative-pg.v1.27.1", "Manual"), metav1.CreateOptions{})
		require.NoError(t, err)
		eventually(t, "ResolutionFailed", getObj(dyn, openshifttest.SubscriptionGVR, ns, "wrong-csv"), func(u *unstructured.Unstructured) bool {
			return cond(u, "ResolutionFailed") == "True"
		})
	})
	require.Empty(t, installed)

	t.Run("Manual approval: the first install waits for a person, then the upgrade does", func(t *testing.T) {
		_, err := subs.Create(ctx, subscription(ns, "cloudnative-pg", "stable-v1", "cloudnative-pg.v1.27.1", "Manual"), metav1.CreateOptions{})
		require.NoError(t, err)
		sub := eventually(t, "InstallPlanPending", getObj(dyn, openshifttest.SubscriptionGVR, ns, "cloudnative-pg"), func(u *unstructured.Unstructured) bool {
			return cond(u, "InstallPlanPending") == "True"
		})
		assert.Equal(t, "UpgradePending", str(sub, "status", "state"))
		assert.Equal(t, "cloudnative-pg.v1.27.1", str(sub, "status", "currentCSV"))
		assert.Empty(t, installed, "nothing installed before the approval")
		planName := str(sub, "status", "installPlanRef", "name")
		plan := eventually(t, "RequiresApproval", getObj(dyn, openshifttest.InstallPlanGVR, ns, planName), func(u *unstructured.Unstructured) bool {
			return str(u, "status", "phase") == "RequiresApproval"
		})
		approved, _, _ := unstructured.NestedBool(plan.Object, "spec", "approved")
		assert.False(t, approved)

		// oc patch installplan <name> --type merge -p '{"spec":{"approved":true}}'
		_, err = plans.Patch(ctx, planName, "application/merge-patch+json", []byte(`{"spec":{"approved":true}}`), metav1.PatchOptions{})
		require.NoError(t, err)
		sub = eventually(t, "installedCSV", getObj(dyn, openshifttest.SubscriptionGVR, ns, "cloudnative-pg"), func(u *unstructured.Unstructured) bool {
			return str(u, "status", "installedCSV") == "cloudnative-pg.v1.27.1" && str(u, "status", "currentCSV") == "cloudnative-pg.v1.28.0"
		})
		assert.Equal(t, "UpgradePending", str(sub, "status", "state"), "the channel's next CSV waits for approval")
		assert.Contains(t, installed, "clusters.postgresql.cnpg.io")
		assert.Contains(t, installed, "databases.postgresql.cnpg.io")
		csv := eventually(t, "the CSV", getObj(dyn, openshifttest.CSVGVR, ns, "cloudnative-pg.v1.27.1"), func(u *unstructured.Unstructured) bool { return true })
		assert.Equal(t, "Succeeded", str(csv, "status", "phase"))
		assert.Equal(t, "Complete", str(eventually(t, "plan complete", getObj(dyn, openshifttest.InstallPlanGVR, ns, planName),
			func(u *unstructured.Unstructured) bool { return str(u, "status", "phase") == "Complete" }), "status", "phase"))
		_, err = dyn.Resource(openshifttest.CSVGVR).Namespace(ns).Get(ctx, "cloudnative-pg.v1.28.0", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "the upgrade is not installed without approval")
	})
}

func str(u *unstructured.Unstructured, path ...string) string {
	s, _, _ := unstructured.NestedString(u.Object, path...)
	return s
}

func findCond(u *unstructured.Unstructured, typ string) map[string]any {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

func cond(u *unstructured.Unstructured, typ string) string {
	if m := findCond(u, typ); m != nil {
		s, _ := m["status"].(string)
		return s
	}
	return ""
}

func condMessage(u *unstructured.Unstructured, typ string) string {
	if m := findCond(u, typ); m != nil {
		s, _ := m["message"].(string)
		return s
	}
	return ""
}
