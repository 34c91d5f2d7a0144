// Package workload holds the rules over every workload's pod template and images: what OpenShift's
// restricted-v2 adds to Pod Security Admission, resources and probes, pinned and inventoried images,
// labels and namespace, no Secret data, and the hardening (HSTS, tokens, read-only root, TLS).
//
// The restricted level of Pod Security Admission (non-root, no privilege escalation, all capabilities
// dropped, a seccomp profile, no host namespaces, ports or paths, only the safe volume types) is judged
// by the kube-apiserver itself: the tests dry-run every overlay in a namespace labelled
// pod-security.kubernetes.io/enforce and warn: restricted (internal/manifests dryrun_test.go). What
// CheckRestrictedV2 adds is only what OpenShift's restricted-v2 SecurityContextConstraints refuses and
// PSA accepts.
package workload

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// CheckRestrictedV2: no pod template asks for a UID, GID or fsGroup (restricted-v2 assigns them from the
// namespace's range, and a fixed one outside it is refused; PSA accepts any UID but 0), and a seccomp
// profile, where set, is RuntimeDefault (restricted-v2 allows runtime/default only; PSA also Localhost).
func CheckRestrictedV2(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, pt := range objects.PodTemplates(objs) {
		psc := objects.MapAt(pt.Spec, "securityContext")
		for _, f := range []string{"runAsUser", "runAsGroup", "fsGroup"} {
			if objects.Has(psc, f) {
				p.Addf("%s: pod securityContext.%s is set; restricted-v2 assigns it from the namespace's range", pt.Owner, f)
			}
		}
		if t := objects.StringAt(psc, "seccompProfile", "type"); t != "" && t != "RuntimeDefault" {
			p.Addf("%s: pod seccompProfile is %s; restricted-v2 allows RuntimeDefault only", pt.Owner, t)
		}
		for _, c := range objects.ContainersOf(pt.Spec) {
			where := fmt.Sprintf("%s container %s", pt.Owner, c.Name)
			sc := objects.MapAt(c.Spec, "securityContext")
			for _, f := range []string{"runAsUser", "runAsGroup"} {
				if objects.Has(sc, f) {
					p.Addf("%s: securityContext.%s is set; restricted-v2 assigns it", where, f)
				}
			}
			if t := objects.StringAt(sc, "seccompProfile", "type"); t != "" && t != "RuntimeDefault" {
				p.Addf("%s: seccompProfile is %s; restricted-v2 allows RuntimeDefault only", where, t)
			}
		}
	}
	return p
}

// Pinned reports why an image reference is not pinned, or "" if it is: it needs a digest, or a tag
// that is not a moving branch name.
func Pinned(image string) string {
	if image == "" {
		return "empty image"
	}
	if _, digest, ok := strings.Cut(image, "@"); ok {
		if strings.HasPrefix(digest, "sha256:") && len(digest) == len("sha256:")+64 {
			return ""
		}
		return "malformed digest"
	}
	lastSlash := strings.LastIndex(image, "/")
	colon := strings.LastIndex(image, ":")
	if colon <= lastSlash {
		return "no tag (means latest)"
	}
	switch tag := image[colon+1:]; tag {
	case "", "latest", "main", "master", "stable", "nightly", "dev":
		return fmt.Sprintf("moving tag %q", tag)
	}
	return ""
}

// CheckImageInventory: the images used are exactly the images listed in images/images.yaml.
func CheckImageInventory(used, listed []string) []string {
	var p objects.Problems
	for _, img := range used {
		if !slices.Contains(listed, img) {
			p.Addf("image %s is used but not listed in images/images.yaml", img)
		}
	}
	for _, img := range listed {
		if !slices.Contains(used, img) {
			p.Addf("image %s is listed in images/images.yaml but no manifest uses it", img)
		}
	}
	seen := map[string]bool{}
	for _, img := range listed {
		if seen[img] {
			p.Addf("image %s is listed twice in images/images.yaml", img)
		}
		seen[img] = true
	}
	return p
}

// ImageSetImages parses an oc-mirror ImageSetConfiguration and returns its additionalImages.
func ImageSetImages(data []byte) ([]string, error) {
	var isc struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
		Mirror     struct {
			AdditionalImages []struct {
				Name string `json:"name"`
			} `json:"additionalImages"`
		} `json:"mirror"`
	}
	if err := yaml.UnmarshalStrict(data, &isc); err != nil {
		return nil, err
	}
	if isc.Kind != "ImageSetConfiguration" {
		return nil, fmt.Errorf("kind is %q, want ImageSetConfiguration", isc.Kind)
	}
	switch isc.APIVersion {
	case "mirror.openshift.io/v1alpha2", "mirror.openshift.io/v2alpha1":
	default:
		return nil, fmt.Errorf("apiVersion %q is not an oc-mirror ImageSetConfiguration version", isc.APIVersion)
	}
	var out []string
	for _, i := range isc.Mirror.AdditionalImages {
		out = append(out, i.Name)
	}
	return out, nil
}

// CheckNoSecretData: no Secret object carries values. Secrets are generated in the cluster.
func CheckNoSecretData(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		if o.GetKind() != "Secret" {
			continue
		}
		for _, f := range []string{"data", "stringData"} {
			if objects.Has(o.Object, f) {
				p.Addf("%s: Secret with %s in git; Secrets are generated in the cluster, never committed", objects.Ref(o), f)
			}
		}
	}
	return p
}

// CheckLabels: the app.kubernetes.io labels on every object, the component on workloads, and pod
// templates labelled so that `oc wait --for=condition=Ready pod -l app.kubernetes.io/part-of=litemaas`
// finds every long-running pod and no pod that runs to completion (a finished Job pod is never Ready).
func CheckLabels(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		l := o.GetLabels()
		for _, k := range []string{objects.LabelName, objects.LabelVersion} {
			if l[k] == "" {
				p.Addf("%s: label %s missing", objects.Ref(o), k)
			}
		}
		if l[objects.LabelPartOf] != "litemaas" {
			p.Addf("%s: label %s is %q, want litemaas", objects.Ref(o), objects.LabelPartOf, l[objects.LabelPartOf])
		}
		if slices.Contains(objects.WorkloadKinds, o.GetKind()) && l[objects.LabelComponent] == "" {
			p.Addf("%s: workload without label %s", objects.Ref(o), objects.LabelComponent)
		}
	}
	for _, pt := range objects.PodTemplates(objs) {
		if pt.Labels[objects.LabelName] == nil || pt.Labels[objects.LabelComponent] == nil {
			p.Addf("%s: pod template without %s and %s labels", pt.Owner, objects.LabelName, objects.LabelComponent)
		}
		switch pt.Kind {
		case "Job", "CronJob", "Pod":
			if pt.Labels[objects.LabelPartOf] != nil {
				p.Addf("%s: pod template labelled %s; its finished pod would block `oc wait --for=condition=Ready -l %s=litemaas`", pt.Owner, objects.LabelPartOf, objects.LabelPartOf)
			}
		default:
			if pt.Labels[objects.LabelPartOf] != "litemaas" {
				p.Addf("%s: pod template without %s=litemaas; `oc wait -l %s=litemaas` would miss its pods", pt.Owner, objects.LabelPartOf, objects.LabelPartOf)
			}
		}
	}
	return p
}

// CheckNamespace: the namespace exists and the default openshift-gitops instance may manage it.
func CheckNamespace(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	ns := objects.Find(objs, "Namespace", "litemaas")
	if ns == nil {
		return []string{"Namespace/litemaas is missing"}
	}
	if v := ns.GetLabels()["argocd.argoproj.io/managed-by"]; v != "openshift-gitops" {
		p.Addf("Namespace/litemaas: label argocd.argoproj.io/managed-by is %q, want openshift-gitops", v)
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != "litemaas" {
			p.Addf("%s: in namespace %q, want litemaas", objects.Ref(o), ns)
		}
	}
	return p
}
