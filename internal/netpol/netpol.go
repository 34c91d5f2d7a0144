// Package netpol decides whether Kubernetes NetworkPolicies admit a connection, following the ingress
// semantics of networking.k8s.io/v1 (the Kubernetes documentation's "Network Policies" page):
//
//   - a pod is isolated for ingress when at least one policy of its namespace selects it and lists
//     Ingress in its policyTypes (an empty policyTypes means Ingress, plus Egress when egress rules
//     are present);
//   - a non-isolated pod accepts every connection;
//   - an isolated pod accepts a connection when at least one selecting policy has an ingress rule whose
//     `from` matches the source (an empty `from` matches every source) and whose `ports` match the
//     destination port (an empty `ports` matches every port);
//   - a peer with only podSelector matches pods of the policy's own namespace, one with only
//     namespaceSelector every pod of the matching namespaces, one with both the matching pods of the
//     matching namespaces; an ipBlock matches source addresses in its CIDR and outside its excepts;
//   - a port is TCP unless it says otherwise; a named port matches the destination container's port of
//     that name and protocol; endPort makes a numeric port a range.
//
// Policies are additive: nothing here can deny what another policy allows. Egress is not evaluated:
// Ingress returns an error when a policy restricts egress, so a caller never gets an answer that
// ignores half of the rules.
package netpol

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Pod is one end of a connection.
type Pod struct {
	Namespace string
	// NamespaceLabels are the labels of the pod's namespace (namespaceSelector matches them).
	NamespaceLabels map[string]string
	Labels          map[string]string
	// IP is the pod's address, for ipBlock peers; the zero value matches no ipBlock.
	IP netip.Addr
	// Ports are the destination's container ports, for named ports.
	Ports []corev1.ContainerPort
}

// Port is the destination port of a connection.
type Port struct {
	Number   int32
	Protocol corev1.Protocol // empty means TCP
}

// Verdict is the outcome of Ingress, with the policies that decided it.
type Verdict struct {
	Allowed bool
	// Isolated reports whether any policy selects the destination for ingress.
	Isolated bool
	// By names the policies ("namespace/name") whose rules admitted the connection.
	By []string
}

// Ingress decides whether dst accepts a connection from src on port under policies (all policies of
// the cluster; only those of dst's namespace apply).
func Ingress(policies []networkingv1.NetworkPolicy, src, dst Pod, port Port) (Verdict, error) {
	if port.Protocol == "" {
		port.Protocol = corev1.ProtocolTCP
	}
	var v Verdict
	for i := range policies {
		np := &policies[i]
		ingress, egress := policyTypes(np)
		if egress {
			return Verdict{}, fmt.Errorf("NetworkPolicy %s/%s restricts egress, which this evaluator does not model", np.Namespace, np.Name)
		}
		if np.Namespace != dst.Namespace || !ingress {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			return Verdict{}, fmt.Errorf("NetworkPolicy %s/%s: podSelector: %w", np.Namespace, np.Name, err)
		}
		if !sel.Matches(labels.Set(dst.Labels)) {
			continue
		}
		v.Isolated = true
		for _, rule := range np.Spec.Ingress {
			from, err := peersMatch(np, rule.From, src)
			if err != nil {
				return Verdict{}, err
			}
			if from && portsMatch(rule.Ports, dst, port) {
				v.By = append(v.By, np.Namespace+"/"+np.Name)
				break
			}
		}
	}
	v.Allowed = !v.Isolated || len(v.By) > 0
	return v, nil
}

// policyTypes returns whether the policy applies to ingress and to egress, with the API's defaulting of
// an empty policyTypes.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	for _, t := range np.Spec.PolicyTypes {
		switch t {
		case networkingv1.PolicyTypeIngress:
			ingress = true
		case networkingv1.PolicyTypeEgress:
			egress = true
		}
	}
	return ingress, egress
}

func peersMatch(np *networkingv1.NetworkPolicy, peers []networkingv1.NetworkPolicyPeer, src Pod) (bool, error) {
	if len(peers) == 0 {
		return true, nil
	}
	for _, p := range peers {
		ok, err := peerMatches(np, p, src)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

func peerMatches(np *networkingv1.NetworkPolicy, p networkingv1.NetworkPolicyPeer, src Pod) (bool, error) {
	where := fmt.Sprintf("NetworkPolicy %s/%s", np.Namespace, np.Name)
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return false, fmt.Errorf("%s: a peer with ipBlock must not have selectors", where)
		}
		return ipBlockMatches(p.IPBlock, src.IP, where)
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return false, fmt.Errorf("%s: an ingress peer sets none of podSelector, namespaceSelector, ipBlock", where)
	}
	if p.NamespaceSelector != nil {
		ns, err := metav1.LabelSelectorAsSelector(p.NamespaceSelector)
		if err != nil {
			return false, fmt.Errorf("%s: namespaceSelector: %w", where, err)
		}
		if !ns.Matches(labels.Set(src.NamespaceLabels)) {
			return false, nil
		}
	} else if src.Namespace != np.Namespace {
		return false, nil
	}
	if p.PodSelector != nil {
		pods, err := metav1.LabelSelectorAsSelector(p.PodSelector)
		if err != nil {
			return false, fmt.Errorf("%s: podSelector: %w", where, err)
		}
		return pods.Matches(labels.Set(src.Labels)), nil
	}
	return true, nil
}

func ipBlockMatches(b *networkingv1.IPBlock, ip netip.Addr, where string) (bool, error) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return false, fmt.Errorf("%s: ipBlock cidr %q: %w", where, b.CIDR, err)
	}
	if !ip.IsValid() || !cidr.Contains(ip) {
		return false, nil
	}
	for _, e := range b.Except {
		ex, err := netip.ParsePrefix(e)
		if err != nil {
			return false, fmt.Errorf("%s: ipBlock except %q: %w", where, e, err)
		}
		if ex.Contains(ip) {
			return false, nil
		}
	}
	return true, nil
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, dst Pod, port Port) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		proto := corev1.ProtocolTCP
		if p.Protocol != nil {
			proto = *p.Protocol
		}
		if proto != port.Protocol {
			continue
		}
		if p.Port == nil {
			return true // every port of the protocol
		}
		if p.Port.Type == intstr.String { // a named container port of the destination
			for _, cp := range dst.Ports {
				cpProto := cp.Protocol
				if cpProto == "" {
					cpProto = corev1.ProtocolTCP
				}
				if cp.Name == p.Port.StrVal && cpProto == proto && cp.ContainerPort == port.Number {
					return true
				}
			}
			continue
		}
		lo, hi := p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			hi = *p.EndPort
		}
		if port.Number >= lo && port.Number <= hi {
			return true
		}
	}
	return false
}
