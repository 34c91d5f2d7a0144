package admission

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// celEnvOptions are the parts of the API server's base CEL environment for admission policies
// (k8s.io/apiserver/pkg/cel/environment, base.go, as of Kubernetes 1.37) that cel-go provides: the
// standard library with its macros, the strings (version 2), sets, lists (version 3) and two-variable
// comprehension extensions, optional types, homogeneous literals and cross-type numeric comparisons.
// Kubernetes' own libraries (quantity, url, ip, cidr, format, semver, authorizer, its regex and list
// additions) are not here: an expression calling one does not compile, and the check says so rather
// than passing it.
func celEnvOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.HomogeneousAggregateLiterals(),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(ext.StringsVersion(2)),
		ext.Sets(),
		ext.TwoVarComprehensions(),
		ext.Lists(ext.ListsVersion(3)),
		cel.Variable("object", cel.DynType),
		cel.Variable("oldObject", cel.DynType),
		cel.Variable("request", cel.DynType),
		cel.Variable("namespaceObject", cel.DynType),
		cel.Variable("variables", cel.MapType(cel.StringType, cel.DynType)),
	}
}

// Applier is who creates the rendered objects on the cluster: OpenShift GitOps' application controller.
// Policies' matchConditions and validations see it as request.userInfo.
const Applier = "system:serviceaccount:openshift-gitops:openshift-gitops-argocd-application-controller"

// CheckPolicies evaluates, for every object of objs, each ValidatingAdmissionPolicy of policyObjs that a
// binding with validationActions Deny matches, as the API server would on its creation by Applier, and
// returns one line per refusal in the API server's words. namespaceLabels gives a namespace's labels (the
// API server adds kubernetes.io/metadata.name itself). A policy feature judged here only on a cluster
// (parameters, excluded resources, Kubernetes' own CEL libraries) is reported, not skipped.
func CheckPolicies(policyObjs, objs []*unstructured.Unstructured, namespaceLabels func(ns string) map[string]string) []string {
	var p objects.Problems
	policies := map[string]*compiled{}
	var bindings []admissionv1.ValidatingAdmissionPolicyBinding
	for _, o := range policyObjs {
		switch o.GetKind() {
		case "ValidatingAdmissionPolicy":
			var vap admissionv1.ValidatingAdmissionPolicy
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &vap); err != nil {
				p.Addf("%s: %v", objects.Ref(o), err)
				continue
			}
			c, err := compile(&vap)
			if err != nil {
				p.Addf("%s: %v", objects.Ref(o), err)
				continue
			}
			policies[vap.Name] = c
		case "ValidatingAdmissionPolicyBinding":
			var b admissionv1.ValidatingAdmissionPolicyBinding
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &b); err != nil {
				p.Addf("%s: %v", objects.Ref(o), err)
				continue
			}
			if b.Spec.ParamRef != nil {
				p.Addf("%s: paramRef is judged on a cluster only", objects.Ref(o))
				continue
			}
			bindings = append(bindings, b)
		}
	}
	for _, b := range bindings {
		c := policies[b.Spec.PolicyName]
		if c == nil || !slices.Contains(b.Spec.ValidationActions, admissionv1.Deny) {
			continue
		}
		for _, o := range objs {
			matched, err := c.matches(o, b.Spec.MatchResources, namespaceLabels)
			if err != nil {
				p.Addf("ValidatingAdmissionPolicyBinding/%s: %v", b.Name, err)
				break
			}
			if !matched {
				continue
			}
			act := activation(o, namespaceLabels(o.GetNamespace()))
			if ok, err := c.conditionsHold(act); err != nil || !ok {
				if err != nil {
					p.Addf("%s: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %v", objects.Ref(o), c.name, b.Name, err)
				}
				continue
			}
			for _, msg := range c.validate(act) {
				p.Addf("%s: ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", objects.Ref(o), c.name, b.Name, msg)
			}
		}
	}
	return p
}

// compiled is a policy with its expressions compiled.
type compiled struct {
	name        string
	constraints *admissionv1.MatchResources
	conditions  []namedProgram
	variables   []namedProgram
	validations []validation
}

type namedProgram struct {
	name string
	prg  cel.Program
}

type validation struct {
	expression, message string
	check, msgExpr      cel.Program // msgExpr nil without a messageExpression
}

func compile(vap *admissionv1.ValidatingAdmissionPolicy) (*compiled, error) {
	s := vap.Spec
	switch {
	case s.ParamKind != nil:
		return nil, fmt.Errorf("paramKind is judged on a cluster only")
	case s.MatchConstraints == nil:
		return nil, fmt.Errorf("no matchConstraints")
	case len(s.MatchConstraints.ExcludeResourceRules) > 0:
		return nil, fmt.Errorf("matchConstraints.excludeResourceRules are judged on a cluster only")
	}
	env, err := cel.NewEnv(celEnvOptions()...)
	if err != nil {
		return nil, err
	}
	c := &compiled{name: vap.Name, constraints: s.MatchConstraints}
	program := func(what, expr string) (cel.Program, error) {
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			return nil, fmt.Errorf("%s does not compile with the CEL libraries checked offline: %w", what, iss.Err())
		}
		return env.Program(ast)
	}
	for _, m := range s.MatchConditions {
		prg, err := program("matchCondition "+m.Name, m.Expression)
		if err != nil {
			return nil, err
		}
		c.conditions = append(c.conditions, namedProgram{m.Name, prg})
	}
	for _, v := range s.Variables {
		prg, err := program("variable "+v.Name, v.Expression)
		if err != nil {
			return nil, err
		}
		c.variables = append(c.variables, namedProgram{v.Name, prg})
	}
	for i, v := range s.Validations {
		val := validation{expression: v.Expression, message: v.Message}
		if val.check, err = program(fmt.Sprintf("validation %d", i), v.Expression); err != nil {
			return nil, err
		}
		if v.MessageExpression != "" {
			if val.msgExpr, err = program(fmt.Sprintf("validation %d's messageExpression", i), v.MessageExpression); err != nil {
				return nil, err
			}
		}
		c.validations = append(c.validations, val)
	}
	return c, nil
}

// matches says whether the API server would send o to this policy through a binding with mr: the
// policy's matchConstraints and the binding's matchResources both select it.
func (c *compiled) matches(o *unstructured.Unstructured, mr *admissionv1.MatchResources, nsLabels func(string) map[string]string) (bool, error) {
	for _, m := range []*admissionv1.MatchResources{c.constraints, mr} {
		if m == nil {
			continue
		}
		ok, err := matchResources(o, m, nsLabels)
		if !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

func matchResources(o *unstructured.Unstructured, m *admissionv1.MatchResources, nsLabels func(string) map[string]string) (bool, error) {
	if len(m.ExcludeResourceRules) > 0 {
		return false, fmt.Errorf("excludeResourceRules are judged on a cluster only")
	}
	gvk := o.GroupVersionKind()
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	if len(m.ResourceRules) > 0 && !slices.ContainsFunc(m.ResourceRules, func(r admissionv1.NamedRuleWithOperations) bool {
		return ruleMatches(r, gvr, o.GetName())
	}) {
		return false, nil
	}
	for _, sel := range []struct {
		what   string
		s      *metav1.LabelSelector
		labels map[string]string
	}{{"objectSelector", m.ObjectSelector, o.GetLabels()}, {"namespaceSelector", m.NamespaceSelector, nsLabels(o.GetNamespace())}} {
		if sel.s == nil {
			continue
		}
		s, err := metav1.LabelSelectorAsSelector(sel.s)
		if err != nil {
			return false, fmt.Errorf("%s: %w", sel.what, err)
		}
		if !s.Matches(labels.Set(sel.labels)) {
			return false, nil
		}
	}
	return true, nil
}

// ruleMatches: a rule selects the object's group, version and resource for CREATE ("*" is any).
func ruleMatches(r admissionv1.NamedRuleWithOperations, gvr schema.GroupVersionResource, name string) bool {
	has := func(list []string, v string) bool { return slices.Contains(list, "*") || slices.Contains(list, v) }
	ops := make([]string, len(r.Operations))
	for i, op := range r.Operations {
		ops[i] = string(op)
	}
	return has(r.APIGroups, gvr.Group) && has(r.APIVersions, gvr.Version) && has(r.Resources, gvr.Resource) &&
		has(ops, string(admissionv1.Create)) && (len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name))
}

// activation is what the expressions see of the creation of o by Applier.
func activation(o *unstructured.Unstructured, nsLabels map[string]string) map[string]any {
	gvk := o.GroupVersionKind()
	gvr, _ := meta.UnsafeGuessKindToResource(gvk)
	nsl := map[string]any{}
	for k, v := range nsLabels {
		nsl[k] = v
	}
	return map[string]any{
		"object":    o.Object,
		"oldObject": nil,
		"request": map[string]any{
			"kind":      map[string]any{"group": gvk.Group, "version": gvk.Version, "kind": gvk.Kind},
			"resource":  map[string]any{"group": gvr.Group, "version": gvr.Version, "resource": gvr.Resource},
			"name":      o.GetName(),
			"namespace": o.GetNamespace(),
			"operation": string(admissionv1.Create),
			"userInfo": map[string]any{
				"username": Applier,
				"groups":   []any{"system:serviceaccounts", "system:serviceaccounts:openshift-gitops", "system:authenticated"},
			},
			"dryRun": false,
		},
		"namespaceObject": map[string]any{"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{"name": o.GetNamespace(), "labels": nsl}},
		"variables": map[string]any{},
	}
}

// conditionsHold: every matchCondition is true. An error fails the request, as with failurePolicy Fail.
func (c *compiled) conditionsHold(act map[string]any) (bool, error) {
	for _, m := range c.conditions {
		val, _, err := m.prg.Eval(act)
		if err != nil {
			return false, fmt.Errorf("matchCondition %s resulted in error: %v", m.name, err)
		}
		if val != types.True {
			return false, nil
		}
	}
	return true, nil
}

// validate evaluates the variables, then each validation, and returns the message of each validation
// that fails. An evaluation error is a refusal too, as with failurePolicy Fail, in the API server's words.
func (c *compiled) validate(act map[string]any) []string {
	vars := act["variables"].(map[string]any)
	for _, v := range c.variables {
		val, _, err := v.prg.Eval(act)
		if err != nil {
			// Kubernetes evaluates variables lazily: one that fails only fails the validations using it.
			vars[v.name] = types.NewErr("variable %s: %v", v.name, err)
			continue
		}
		vars[v.name] = val
	}
	var out []string
	for _, v := range c.validations {
		val, _, err := v.check.Eval(act)
		if err != nil {
			out = append(out, fmt.Sprintf("expression '%s' resulted in error: %v", v.expression, err))
			continue
		}
		if val == types.True {
			continue
		}
		out = append(out, v.messageFor(act))
	}
	return out
}

// messageFor: the messageExpression's string when it gives a non-empty one, else message, else the
// API server's "failed expression" line.
func (v validation) messageFor(act map[string]any) string {
	if v.msgExpr != nil {
		if val, _, err := v.msgExpr.Eval(act); err == nil {
			if s, ok := val.Value().(string); ok && strings.TrimSpace(s) != "" {
				return s
			}
		}
	}
	if v.message != "" {
		return v.message
	}
	return fmt.Sprintf("failed expression: %s", v.expression)
}
