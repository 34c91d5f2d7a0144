package admission

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func parse(t *testing.T, docs string) []*unstructured.Unstructured {
	t.Helper()
	var out []*unstructured.Unstructured
	for _, doc := range strings.Split(docs, "\n---\n") {
		var m map[string]any
		require.NoError(t, yaml.Unmarshal([]byte(doc), &m))
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// The pod template is found in each workload kind, and judged with PSA's own checks.
func TestCheckPodSecurity(t *testing.T) {
	tests := []struct {
		name, obj, want string
	}{
		{"restricted Deployment", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: d}, spec: {template: {spec: ` + restrictedSpec + `}}}`, ""},
		{"root CronJob", `{apiVersion: batch/v1, kind: CronJob, metadata: {name: c}, spec: {jobTemplate: {spec: {template: {spec: ` +
			strings.Replace(restrictedSpec, "runAsNonRoot: true", "runAsNonRoot: true, runAsUser: 0", 1) + `}}}}}`,
			`CronJob/c: would violate PodSecurity "restricted:latest": runAsUser=0 (pod must not set runAsUser=0)`},
		{"hostPath in a Pod", `{apiVersion: v1, kind: Pod, metadata: {name: p}, spec: ` +
			strings.Replace(restrictedSpec, "containers:", "volumes: [{name: h, hostPath: {path: /var}}], containers:", 1) + `}`,
			`Pod/p: would violate PodSecurity "restricted:latest": restricted volume types (volume "h" uses restricted volume type "hostPath")`},
		{"not a workload", `{apiVersion: v1, kind: ConfigMap, metadata: {name: m}, data: {a: b}}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckPodSecurity(parse(t, tt.obj))
			if tt.want == "" {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			assert.Equal(t, tt.want, got[0])
		})
	}
}

// restrictedSpec is restrictedPod in flow style, to embed in one-line objects.
const restrictedSpec = `{securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}, ` +
	`containers: [{name: app, image: "quay.io/x/app:1.0", securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}}]}`

const testPolicy = `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: p}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [configmaps]}
  variables:
    - {name: size, expression: "has(object.data) ? size(object.data) : 0"}
  validations:
    - expression: "variables.size <= 1"
      messageExpression: "'ConfigMap ' + object.metadata.name + ' has ' + string(variables.size) + ' keys'"
    - expression: "!object.metadata.name.contains('bad')"
      message: "no bad names"
    - expression: "object.metadata.name != 'plain'"
    - expression: "!has(object.data) || !('num' in object.data) || int(object.data.num) >= 0"
`

func binding(extra string) string {
	return `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: b}
spec:
  policyName: p
  validationActions: [Deny]
` + extra
}

func configMap(name, ns, labels, data string) string {
	return `{apiVersion: v1, kind: ConfigMap, metadata: {name: "` + name + `", namespace: ` + ns + `, labels: {` + labels + `}}, data: {` + data + `}}`
}

func nsLabels(ns string) map[string]string {
	l := map[string]string{"kubernetes.io/metadata.name": ns}
	if ns == "litemaas" {
		l["team"] = "ai"
	}
	return l
}

func TestCheckPolicies(t *testing.T) {
	tests := []struct {
		name, testPolicy, binding, obj string
		want                           []string
	}{
		{"passes", testPolicy, binding(""), configMap("ok", "litemaas", "", "a: b"), nil},
		{"messageExpression", testPolicy, binding(""), configMap("big", "litemaas", "", "a: b, c: d"),
			[]string{"ConfigMap/big: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ConfigMap big has 2 keys"}},
		{"message", testPolicy, binding(""), configMap("badname", "litemaas", "", ""),
			[]string{"ConfigMap/badname: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no bad names"}},
		{"neither: the expression", testPolicy, binding(""), configMap("plain", "litemaas", "", ""),
			[]string{"ConfigMap/plain: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: failed expression: object.metadata.name != 'plain'"}},
		{"an evaluation error refuses", testPolicy, binding(""), configMap("num", "litemaas", "", "num: x"),
			[]string{"ConfigMap/num: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: expression '!has(object.data) || !('num' in object.data) || int(object.data.num) >= 0' resulted in error"}},
		{"objectSelector does not select it", testPolicy, binding("  matchResources: {objectSelector: {matchLabels: {judged: 'yes'}}}\n"),
			configMap("big", "litemaas", "", "a: b, c: d"), nil},
		{"objectSelector selects it", testPolicy, binding("  matchResources: {objectSelector: {matchLabels: {judged: 'yes'}}}\n"),
			configMap("big", "litemaas", "judged: 'yes'", "a: b, c: d"), []string{"has 2 keys"}},
		{"namespaceSelector: another namespace", testPolicy, binding("  matchResources: {namespaceSelector: {matchLabels: {team: ai}}}\n"),
			configMap("big", "other", "", "a: b, c: d"), nil},
		{"namespaceSelector: the namespace's labels", testPolicy, binding("  matchResources: {namespaceSelector: {matchLabels: {team: ai}}}\n"),
			configMap("big", "litemaas", "", "a: b, c: d"), []string{"has 2 keys"}},
		{"Warn only does not refuse", testPolicy, strings.Replace(binding(""), "[Deny]", "[Warn]", 1),
			configMap("big", "litemaas", "", "a: b, c: d"), nil},
		{"another resource", testPolicy, binding(""), `{apiVersion: v1, kind: Secret, metadata: {name: badname, namespace: litemaas}}`, nil},
		{"matchConditions see Argo CD's controller as the requester", testPolicy + `  matchConditions:
    - {name: argocd, expression: "request.userInfo.username == 'system:serviceaccount:openshift-gitops:openshift-gitops-argocd-application-controller'"}
`, binding(""), configMap("badname", "litemaas", "", ""), []string{"no bad names"}},
		{"matchConditions for another requester", testPolicy + `  matchConditions:
    - {name: job, expression: "request.userInfo.username == 'system:serviceaccount:' + request.namespace + ':litemaas-secrets'"}
`, binding(""), configMap("badname", "litemaas", "", ""), nil},
		{"request and namespaceObject", strings.Replace(testPolicy, `"!object.metadata.name.contains('bad')"`,
			`"request.resource.resource == 'configmaps' && request.operation == 'CREATE' && namespaceObject.metadata.labels.team != 'ai'"`, 1),
			binding(""), configMap("x", "litemaas", "", ""), []string{"no bad names"}},
		{"a Kubernetes-only CEL function is reported", strings.Replace(testPolicy, "variables.size <= 1", "quantity('1Gi').isGreaterThan(quantity('1'))", 1),
			binding(""), configMap("ok", "litemaas", "", ""), []string{"ValidatingAdmissionPolicy/p: validation 0 does not compile with the CEL libraries checked offline"}},
		{"parameters are reported", strings.Replace(testPolicy, "failurePolicy: Fail", "failurePolicy: Fail\n  paramKind: {apiVersion: v1, kind: ConfigMap}", 1),
			binding(""), configMap("ok", "litemaas", "", ""), []string{"ValidatingAdmissionPolicy/p: paramKind is judged on a cluster only"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckPolicies(parse(t, tt.testPolicy+"\n---\n"+tt.binding), parse(t, tt.obj), nsLabels)
			require.Len(t, got, len(tt.want), "%q", got)
			for i, w := range tt.want {
				assert.Contains(t, got[i], w)
			}
		})
	}
}
