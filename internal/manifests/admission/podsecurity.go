// Package admission judges rendered objects offline as the cluster's admission will: Pod Security
// Admission at the restricted level, with PSA's own checks (k8s.io/pod-security-admission/policy),
// and the ValidatingAdmissionPolicies the cluster-admin part ships, with their own CEL expressions
// evaluated by cel-go. `litemaas-ops check` runs both before a push; the tests' server-side dry run
// applies the same rules on a real kube-apiserver, and a test holds the two to the same verdicts.
package admission

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// restricted is the level the stack's namespace enforces (manifeststest.PodSecurityLabels for the
// tests; OpenShift's restricted-v2 SCC admits no less).
var restricted = psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}

// CheckPodSecurity evaluates the pod template of every workload in objs at Pod Security Admission's
// restricted level, with PSA's own checks, and returns one line per refusal in the API server's words.
func CheckPodSecurity(objs []*unstructured.Unstructured) []string {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return []string{fmt.Sprintf("Pod Security Admission's checks: %v", err)}
	}
	var p objects.Problems
	for _, t := range objects.PodTemplates(objs) {
		var pod corev1.PodTemplateSpec
		tmpl := map[string]any{"metadata": t.Metadata, "spec": t.Spec}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pod); err != nil {
			p.Addf("%s: its pod template cannot be read as a Kubernetes pod: %v", t.Owner, err)
			continue
		}
		res := policy.AggregateCheckResults(eval.EvaluatePod(restricted, &pod.ObjectMeta, &pod.Spec))
		if !res.Allowed {
			// The API server's warning for a workload, and its refusal for a bare Pod.
			p.Addf("%s: would violate PodSecurity %q: %s", t.Owner, restricted.String(), res.ForbiddenDetail())
		}
	}
	return p
}
