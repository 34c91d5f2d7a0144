package manifests

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

func TestOtherChecksRejectBrokenObjects(t *testing.T) {
	t.Run("CRD with an open spec", func(t *testing.T) {
		crd := manifeststest.MustFind(t, manifeststest.Rendered(t, "gitops/test/crds"), "CustomResourceDefinition", "routes.route.openshift.io")
		if got := checkCRD(crd); len(got) != 0 {
			t.Fatalf("unbroken CRD fails: %v", got)
		}
		v := objects.Maps(objects.ListAt(crd.Object, "spec", "versions"))[0]
		manifeststest.Set(t, v, true, "schema", "openAPIV3Schema", "properties", "spec", "x-kubernetes-preserve-unknown-fields")
		if got := checkCRD(crd); len(got) == 0 || !strings.Contains(got[0], ".spec") {
			t.Errorf("checkCRD did not reject preserve-unknown-fields at spec: %v", got)
		}
	})
	t.Run("kind without a CRD", func(t *testing.T) {
		crds := manifeststest.Rendered(t, "gitops/test/crds")
		extra := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": map[string]any{"name": "litellm"}}}
		if got := checkCRDCoverage([]*unstructured.Unstructured{extra}, crds); len(got) != 1 {
			t.Errorf("checkCRDCoverage = %v, want one problem", got)
		}
	})
	t.Run("Application without retry or on a missing path", func(t *testing.T) {
		app := manifeststest.MustFind(t, manifeststest.Rendered(t, "gitops/argocd/app-of-apps"), "Application", "step-06b-private-ai-litemaas")
		good := objects.StringAt(app.Object, "spec", "source", "path")
		exists := func(p string) bool { return p == good }
		if got := checkApplication(app, exists); len(got) != 0 {
			t.Fatalf("unbroken Application fails: %v", got)
		}
		delete(objects.MapAt(app.Object, "spec", "syncPolicy"), "retry")
		manifeststest.Set(t, app.Object, "gitops/overlays/typo", "spec", "source", "path")
		app.SetFinalizers([]string{"resources-finalizer.argocd.argoproj.io"})
		got := strings.Join(checkApplication(app, exists), "\n")
		for _, want := range []string{"retry.limit", "source.path", "finalizers"} {
			if !strings.Contains(got, want) {
				t.Errorf("checkApplication did not report %q: %s", want, got)
			}
		}
	})
}
