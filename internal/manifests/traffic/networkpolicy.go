// Package traffic holds the rules about who may reach what: the NetworkPolicy truth table (every
// party against every endpoint, evaluated with the Kubernetes ingress semantics) and the backend guard,
// the proxy that is the only way into the backend's API.
package traffic

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/netpol"
)

// The truth table of who may connect to whom, over the NetworkPolicies each overlay renders, evaluated
// with the Kubernetes ingress semantics of internal/netpol. What LiteMaaS needs is allowed, everything
// else is not: other namespaces, a stray pod of the namespace, the frontend to PostgreSQL.

const (
	appNamespace = "litemaas"
	// The label OpenShift puts on the router's namespace, and on the user-workload monitoring one.
	routerNamespaceLabel     = "policy-group.network.openshift.io/ingress"
	monitoringNamespaceLabel = "network.openshift.io/policy-group"
)

// party is a source of connections: a workload of the overlay or one of the outsiders below.
type party struct {
	name string
	pod  netpol.Pod
	// role decides what the party may reach: frontend, backend, litellm, postgres, redis, job, backup,
	// router, monitoring, or "" for nothing at all.
	role string
}

// endpoint is a destination: a Service port and the pods behind it.
type endpoint struct {
	name string // service:port
	role string // the role of the pods behind it
	pod  netpol.Pod
	port int32
}

func outsiders() []party {
	return []party{
		{name: "router", role: "router", pod: netpol.Pod{Namespace: "openshift-ingress",
			NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "openshift-ingress", routerNamespaceLabel: ""},
			Labels:          map[string]string{"ingresscontroller.operator.openshift.io/deployment-ingresscontroller": "default"}}},
		{name: "monitoring", role: "monitoring", pod: netpol.Pod{Namespace: "openshift-user-workload-monitoring",
			NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "openshift-user-workload-monitoring", monitoringNamespaceLabel: "monitoring"},
			Labels:          map[string]string{"app.kubernetes.io/name": "prometheus"}}},
		// Another tenant's pod that copies the backend's labels: podSelectors alone must not admit it.
		{name: "other-namespace", pod: netpol.Pod{Namespace: "other",
			NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "other"},
			Labels:          map[string]string{objects.LabelName: "backend", objects.LabelPartOf: "litemaas"}}},
		// A debug pod someone started in the namespace.
		{name: "stray-pod", pod: netpol.Pod{Namespace: appNamespace,
			NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": appNamespace},
			Labels:          map[string]string{"run": "debug", objects.LabelPartOf: "litemaas"}}},
	}
}

// roleOf classifies a workload: long-running components by their name label, the backup CronJob,
// and every other Job or CronJob (the hook Jobs, the drift CronJob) as the job.
func roleOf(kind, name string, podLabels map[string]string) string {
	switch {
	case kind == "CronJob" && name == "postgres-backup":
		return "backup"
	case kind == "Job" || kind == "CronJob":
		return "job"
	}
	return podLabels[objects.LabelName]
}

// allowedRoles is what LiteMaaS needs, by destination role; the router's entries come from the Routes.
var allowedRoles = map[string][]string{
	"backend":  {"frontend"},
	"litellm":  {"backend", "job"},
	"postgres": {"backend", "litellm", "job", "backup"},
	"redis":    {"litellm", "backend"}, // LiteLLM's cache; the backend flushes it after model changes
}

func stringLabels(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if s, ok := v.(string); ok {
			out[k] = s
		}
	}
	return out
}

func containerPorts(spec map[string]any) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, c := range objects.ContainersOf(spec) {
		for _, p := range objects.Maps(objects.ListAt(c.Spec, "ports")) {
			n, _ := p["containerPort"].(int64)
			out = append(out, corev1.ContainerPort{Name: objects.StringAt(p, "name"), ContainerPort: int32(n), Protocol: corev1.Protocol(objects.StringAt(p, "protocol"))})
		}
	}
	return out
}

// trafficModel is what the truth table is computed from.
type trafficModel struct {
	policies  []networkingv1.NetworkPolicy
	parties   []party
	endpoints []endpoint
	// expected["source/endpoint"] for the allowed pairs.
	expected map[string]bool
}

func buildTrafficModel(objs []*unstructured.Unstructured) (*trafficModel, []string) {
	var p objects.Problems
	m := &trafficModel{expected: map[string]bool{}}
	m.addPolicies(objs, &p)
	workloads := m.addParties(objs)
	services := m.addServiceEndpoints(objs, workloads, &p)
	// Behind the backend guard, the backend's own port: in the table, allowed to nobody.
	m.endpoints = append(m.endpoints, guardedBackendEndpoints(objs)...)
	m.expectRouter(objs, services, &p)
	m.expectMonitoring(objs, services)
	return m, p
}

// addPolicies adds the overlay's NetworkPolicies, in the app's namespace unless they name one.
func (m *trafficModel) addPolicies(objs []*unstructured.Unstructured, p *objects.Problems) {
	for _, o := range objs {
		if o.GetKind() != "NetworkPolicy" {
			continue
		}
		var np networkingv1.NetworkPolicy
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &np); err != nil {
			p.Addf("%s: %v", objects.Ref(o), err)
			continue
		}
		if np.Namespace == "" {
			np.Namespace = appNamespace
		}
		m.policies = append(m.policies, np)
	}
}

// podWorkload is a workload of the overlay as the truth table sees it: its pods and their role.
type podWorkload struct {
	kind, name, role string
	pod              netpol.Pod
}

// addParties adds every workload's pods as a source, then the outsiders; it returns the workloads.
func (m *trafficModel) addParties(objs []*unstructured.Unstructured) []podWorkload {
	nsLabels := map[string]string{"kubernetes.io/metadata.name": appNamespace}
	var workloads []podWorkload
	for _, pt := range objects.PodTemplates(objs) {
		kind, name, _ := strings.Cut(pt.Owner, "/")
		l := stringLabels(pt.Labels)
		w := podWorkload{kind: kind, name: name, role: roleOf(kind, name, l), pod: netpol.Pod{
			Namespace: appNamespace, NamespaceLabels: nsLabels, Labels: l, Ports: containerPorts(pt.Spec)}}
		workloads = append(workloads, w)
		m.parties = append(m.parties, party{name: name, role: w.role, pod: w.pod})
	}
	m.parties = append(m.parties, outsiders()...)
	return workloads
}

// addServiceEndpoints adds every Service port as an endpoint, resolved to the container port of the
// pods it selects, with the sources allowedRoles lets in. It returns "service/port name or number" ->
// endpoint name, for Routes and monitors.
func (m *trafficModel) addServiceEndpoints(objs []*unstructured.Unstructured, workloads []podWorkload, p *objects.Problems) map[string]string {
	services := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Service" {
			continue
		}
		sel := labels.SelectorFromSet(stringLabels(objects.MapAt(o.Object, "spec", "selector")))
		var backing []podWorkload
		for _, w := range workloads {
			if w.kind != "Job" && w.kind != "CronJob" && sel.Matches(labels.Set(w.pod.Labels)) {
				backing = append(backing, w)
			}
		}
		if len(backing) != 1 {
			p.Addf("%s selects %d workloads, want 1", objects.Ref(o), len(backing))
			continue
		}
		for _, sp := range objects.Maps(objects.ListAt(o.Object, "spec", "ports")) {
			port, _ := sp["port"].(int64)
			target, ok := targetPort(o, backing[0], sp, p)
			if !ok {
				continue
			}
			e := endpoint{name: fmt.Sprintf("%s:%d", o.GetName(), target), role: backing[0].role, pod: backing[0].pod, port: target}
			m.endpoints = append(m.endpoints, e)
			services[o.GetName()+"/"+objects.StringAt(sp, "name")] = e.name
			services[fmt.Sprintf("%s/%d", o.GetName(), port)] = e.name
			for _, src := range m.parties {
				if slices.Contains(allowedRoles[e.role], src.role) {
					m.expected[src.name+"/"+e.name] = true
				}
			}
		}
	}
	return services
}

// targetPort resolves a Service port to the container port of the workload behind it.
func targetPort(svc *unstructured.Unstructured, w podWorkload, sp map[string]any, p *objects.Problems) (int32, bool) {
	port, _ := sp["port"].(int64)
	switch tp := sp["targetPort"].(type) {
	case int64:
		return int32(tp), true
	case string:
		for _, cp := range w.pod.Ports {
			if cp.Name == tp {
				return cp.ContainerPort, true
			}
		}
		p.Addf("%s: targetPort %q is no container port of %s/%s", objects.Ref(svc), tp, w.kind, w.name)
		return 0, false
	}
	return int32(port), true
}

// expectRouter: the router reaches what a Route names, and only that.
func (m *trafficModel) expectRouter(objs []*unstructured.Unstructured, services map[string]string, p *objects.Problems) {
	for _, o := range objs {
		if o.GetKind() != "Route" {
			continue
		}
		svc := objects.StringAt(o.Object, "spec", "to", "name")
		port := fmt.Sprint(objects.MapAt(o.Object, "spec", "port")["targetPort"])
		e, ok := services[svc+"/"+port]
		if !ok {
			p.Addf("%s: no Service port %s/%s", objects.Ref(o), svc, port)
			continue
		}
		m.expected["router/"+e] = true
	}
}

// expectMonitoring: the monitoring stack reaches what a ServiceMonitor scrapes.
func (m *trafficModel) expectMonitoring(objs []*unstructured.Unstructured, services map[string]string) {
	for _, o := range objs {
		if o.GetKind() != "ServiceMonitor" {
			continue
		}
		sel := labels.SelectorFromSet(stringLabels(objects.MapAt(o.Object, "spec", "selector", "matchLabels")))
		for _, svc := range objs {
			if svc.GetKind() != "Service" || !sel.Matches(labels.Set(svc.GetLabels())) {
				continue
			}
			for _, ep := range objects.Maps(objects.ListAt(o.Object, "spec", "endpoints")) {
				if e, ok := services[svc.GetName()+"/"+objects.StringAt(ep, "port")]; ok {
					m.expected["monitoring/"+e] = true
				}
			}
		}
	}
}

// truthTable evaluates every source against every endpoint. It returns the table as text (one row per
// source, "allow" or "-" per endpoint, "!" marking a cell that differs from what LiteMaaS needs) and
// one problem per differing cell.
func truthTable(objs []*unstructured.Unstructured) (string, []string) {
	m, ps := buildTrafficModel(objs)
	p := objects.Problems(ps)
	if len(m.policies) == 0 {
		return "", append(p, "no NetworkPolicy rendered: every pod of the cluster reaches PostgreSQL and LiteLLM")
	}
	// The default: a pod that no other policy names (a new component, a Job that listens) is closed.
	if !slices.ContainsFunc(m.policies, func(np networkingv1.NetworkPolicy) bool {
		return len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 &&
			len(np.Spec.Ingress) == 0 && slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
	}) {
		p.Addf("no default-deny policy (empty podSelector, policyTypes [Ingress], no rules): a pod without a policy of its own accepts every connection")
	}
	var b strings.Builder
	w := len("from \\ to")
	for _, src := range m.parties {
		w = max(w, len(src.name))
	}
	fmt.Fprintf(&b, "%-*s", w, "from \\ to")
	for _, e := range m.endpoints {
		fmt.Fprintf(&b, " %-*s", max(len(e.name), 6), e.name)
	}
	b.WriteString("\n")
	for _, src := range m.parties {
		fmt.Fprintf(&b, "%-*s", w, src.name)
		for _, e := range m.endpoints {
			v, err := netpol.Ingress(m.policies, src.pod, e.pod, netpol.Port{Number: e.port})
			if err != nil {
				p.Addf("%s -> %s: %v", src.name, e.name, err)
				continue
			}
			want := m.expected[src.name+"/"+e.name]
			cell := "-"
			if v.Allowed {
				cell = "allow"
			}
			if v.Allowed != want {
				cell += "!"
				if v.Allowed {
					p.Addf("%s -> %s is allowed (by %s) but LiteMaaS does not need it", src.name, e.name, strings.Join(v.By, ", "))
				} else {
					p.Addf("%s -> %s is refused but LiteMaaS needs it", src.name, e.name)
				}
			}
			fmt.Fprintf(&b, " %-*s", max(len(e.name), 6), cell)
		}
		b.WriteString("\n")
	}
	return b.String(), p
}

// CheckNetworkPolicies is the truth table as a policy check: one problem per cell that differs from
// what LiteMaaS needs, and per object the table cannot be computed from.
func CheckNetworkPolicies(objs []*unstructured.Unstructured) []string {
	_, p := truthTable(objs)
	return p
}
