package upstream_test

import (
	"slices"
	"testing"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/upstream"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// allTestCRDs is every CRD the dry run installs: the tree's minimal ones and the upstream ones.
func allTestCRDs(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	return append(manifeststest.Rendered(t, "gitops/test/crds"), manifeststest.UpstreamCRDs(t)...)
}

// Every upstream file is a CRD and names what it serves: a wrong path or version fails here.
func TestUpstreamCRDs(t *testing.T) {
	want := map[string]bool{
		"clusters.postgresql.cnpg.io": true, "databases.postgresql.cnpg.io": true, "scheduledbackups.postgresql.cnpg.io": true,
		"backups.postgresql.cnpg.io": true, "subscriptions.operators.coreos.com": true, "prometheusrules.monitoring.coreos.com": true,
		"podmonitors.monitoring.coreos.com": true, "applicationsets.argoproj.io": true,
	}
	for _, o := range manifeststest.UpstreamCRDs(t) {
		if o.GetKind() != "CustomResourceDefinition" {
			t.Errorf("%s: not a CRD", objects.Ref(o))
		}
		if !want[o.GetName()] {
			t.Errorf("unexpected CRD %s", o.GetName())
		}
		delete(want, o.GetName())
	}
	for name := range want {
		t.Errorf("CRD %s missing", name)
	}
	// The kinds upstream-crds.yaml declares are exactly what the files serve.
	var served []string
	for _, o := range manifeststest.UpstreamCRDs(t) {
		for _, v := range objects.Maps(objects.ListAt(o.Object, "spec", "versions")) {
			if objects.IsTrue(v, "served") {
				served = append(served, objects.StringAt(o.Object, "spec", "group")+"/"+objects.StringAt(v, "name")+"/"+objects.StringAt(o.Object, "spec", "names", "kind"))
			}
		}
	}
	declared, err := upstream.Kinds()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range declared {
		if !slices.Contains(served, k) {
			t.Errorf("upstream-crds.yaml declares %s, which its files do not serve", k)
		}
	}
}
