package manifests

// The checks of the Argo CD Applications and of the CRDs the tests install. The rules over an
// overlay's objects live in their own packages (workload, wiring, syncjob, traffic, parity, ha); each
// takes rendered objects and returns the problems it found, one readable line each, so that a failing
// test says what is wrong and where. policy.go runs them on every target (the tests and `litemaas-ops
// check`); each package's tests show that each of its rules rejects a broken object.

import (
	"fmt"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// --- Argo CD Applications -----------------------------------------------------------------------

// checkApplication: an Application in openshift-gitops, in project litemaas at a branch or tag, that
// syncs automatically, retries, and points at a path that exists (exists reports whether a repository path is a directory).
func checkApplication(app *unstructured.Unstructured, exists func(string) bool) []string {
	var p objects.Problems
	if app.GetNamespace() != "openshift-gitops" {
		p.Addf("%s: namespace %q, want openshift-gitops", objects.Ref(app), app.GetNamespace())
	}
	p = append(p, checkApplicationSource(app)...)
	if objects.StringAt(app.Object, "spec", "source", "repoURL") == "" {
		p.Addf("%s: no source.repoURL", objects.Ref(app))
	}
	if path := objects.StringAt(app.Object, "spec", "source", "path"); !exists(path) {
		p.Addf("%s: source.path %q is not a directory of this repository", objects.Ref(app), path)
	}
	if !objects.IsTrue(app.Object, "spec", "syncPolicy", "automated", "prune") || !objects.IsTrue(app.Object, "spec", "syncPolicy", "automated", "selfHeal") {
		p.Addf("%s: syncPolicy.automated needs prune and selfHeal", objects.Ref(app))
	}
	if l, _, _ := unstructured.NestedInt64(app.Object, "spec", "syncPolicy", "retry", "limit"); l <= 0 {
		p.Addf("%s: no syncPolicy.retry.limit: a failed automated sync would never be retried", objects.Ref(app))
	}
	for _, f := range []string{"duration", "maxDuration"} {
		if d, err := time.ParseDuration(objects.StringAt(app.Object, "spec", "syncPolicy", "retry", "backoff", f)); err != nil || d <= 0 {
			p.Addf("%s: syncPolicy.retry.backoff.%s is not a duration", objects.Ref(app), f)
		}
	}
	if len(app.GetFinalizers()) != 0 {
		p.Addf("%s: finalizers %v would delete the workloads (and the database) with the Application", objects.Ref(app), app.GetFinalizers())
	}
	return p
}

// --- CRDs for the later server-side dry run ---------------------------------------------------------

// copiedCRDs are the CRDs of gitops/test/crds copied unchanged from their projects
// (hack/argocd/update-crds.sh, gitops/test/crds/README.md).
var copiedCRDs = map[string]bool{"applications.argoproj.io": true, "appprojects.argoproj.io": true, "routes.route.openshift.io": true}

// checkCRD: apiextensions.k8s.io/v1, a schema for every version, x-kubernetes-preserve-unknown-fields
// nowhere but at status (so that strict validation rejects unknown spec fields).
func checkCRD(crd *unstructured.Unstructured) []string {
	var p objects.Problems
	if crd.GetAPIVersion() != "apiextensions.k8s.io/v1" || crd.GetKind() != "CustomResourceDefinition" {
		return []string{fmt.Sprintf("%s: not an apiextensions.k8s.io/v1 CustomResourceDefinition", objects.Ref(crd))}
	}
	for _, v := range objects.Maps(objects.ListAt(crd.Object, "spec", "versions")) {
		schema := objects.MapAt(v, "schema", "openAPIV3Schema")
		if schema == nil {
			p.Addf("%s version %s: no openAPIV3Schema", objects.Ref(crd), objects.StringAt(v, "name"))
			continue
		}
		walkSchema(schema, "", func(path string, s map[string]any) {
			if objects.IsTrue(s, "x-kubernetes-preserve-unknown-fields") && path != ".status" {
				p.Addf("%s version %s: x-kubernetes-preserve-unknown-fields at %q (only status may be open)", objects.Ref(crd), objects.StringAt(v, "name"), path)
			}
		})
	}
	return p
}

// walkSchema calls fn for every schema node, with its path of property names.
func walkSchema(s map[string]any, path string, fn func(path string, s map[string]any)) {
	fn(path, s)
	for name, sub := range objects.MapAt(s, "properties") {
		if m, ok := sub.(map[string]any); ok {
			walkSchema(m, path+"."+name, fn)
		}
	}
	if items := objects.MapAt(s, "items"); items != nil {
		walkSchema(items, path+"[]", fn)
	}
	if ap := objects.MapAt(s, "additionalProperties"); ap != nil {
		walkSchema(ap, path+"{}", fn)
	}
}

// builtinGroups are API groups a plain kube-apiserver serves; any other group needs a CRD for the
// server-side dry run.
var builtinGroups = []string{
	"", "apps", "batch", "autoscaling", "policy", "rbac.authorization.k8s.io", "networking.k8s.io",
	"apiextensions.k8s.io", "admissionregistration.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
	"scheduling.k8s.io", "storage.k8s.io", "node.k8s.io", "certificates.k8s.io", "flowcontrol.apiserver.k8s.io",
}

// checkCRDCoverage: every object of a non-built-in group has a CRD among crds.
func checkCRDCoverage(objs, crds []*unstructured.Unstructured) []string {
	var p objects.Problems
	have := map[string]bool{}
	for _, c := range crds {
		group := objects.StringAt(c.Object, "spec", "group")
		kind := objects.StringAt(c.Object, "spec", "names", "kind")
		for _, v := range objects.Maps(objects.ListAt(c.Object, "spec", "versions")) {
			have[group+"/"+objects.StringAt(v, "name")+"/"+kind] = true
		}
	}
	// The operators' own CRDs (upstream-crds.yaml), which the dry run installs from their modules.
	kinds, err := UpstreamKinds()
	if err != nil {
		return []string{err.Error()}
	}
	for _, k := range kinds {
		have[k] = true
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if slices.Contains(builtinGroups, gvk.Group) {
			continue
		}
		if !have[gvk.Group+"/"+gvk.Version+"/"+gvk.Kind] {
			p.Addf("%s: no CRD for %s in gitops/test/crds", objects.Ref(o), gvk)
		}
	}
	return p
}
