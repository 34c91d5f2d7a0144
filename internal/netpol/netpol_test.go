package netpol

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

func loadPolicies(t *testing.T, file string) []networkingv1.NetworkPolicy {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []networkingv1.NetworkPolicy
	for {
		var np networkingv1.NetworkPolicy
		err := dec.Decode(&np)
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, np)
	}
}

func TestIngress(t *testing.T) {
	policies := loadPolicies(t, "testdata/policies.yaml")
	shop := func(app string) Pod {
		return Pod{Namespace: "shop", NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": "shop"}, Labels: map[string]string{"app": app},
			Ports: []corev1.ContainerPort{{Name: "sql", ContainerPort: 5432}, {Name: "http", ContainerPort: 8080}}}
	}
	router := Pod{Namespace: "router", NamespaceLabels: map[string]string{"ingress": ""}, Labels: map[string]string{"app": "router"}}
	prometheus := Pod{Namespace: "mon", NamespaceLabels: map[string]string{"monitoring": "true"}, Labels: map[string]string{"app": "prometheus"}}
	grafana := Pod{Namespace: "mon", NamespaceLabels: map[string]string{"monitoring": "true"}, Labels: map[string]string{"app": "grafana"}}
	// A pod of another namespace that carries the labels of api: podSelector alone must not match it.
	impostor := Pod{Namespace: "other", NamespaceLabels: map[string]string{}, Labels: map[string]string{"app": "api"}}
	office := func(ip string) Pod { return Pod{Namespace: "elsewhere", IP: netip.MustParseAddr(ip)} }
	open := Pod{Namespace: "open", Labels: map[string]string{"app": "db"}}

	tests := []struct {
		name     string
		src, dst Pod
		port     Port
		allowed  bool
		isolated bool
		by       []string
	}{
		{"router to web on its port", router, shop("web"), Port{Number: 8080}, true, true, []string{"shop/web-from-router"}},
		{"router to web on another port", router, shop("web"), Port{Number: 8443}, false, true, nil},
		{"router to db", router, shop("db"), Port{Number: 5432}, false, true, nil},
		{"api to db on the named port", shop("api"), shop("db"), Port{Number: 5432}, true, true, []string{"shop/db-from-api"}},
		{"api to db, named port does not resolve to 8080", shop("api"), shop("db"), Port{Number: 8080}, false, true, nil},
		{"web to db", shop("web"), shop("db"), Port{Number: 5432}, false, true, nil},
		{"same labels in another namespace to db", impostor, shop("db"), Port{Number: 5432}, false, true, nil},
		{"only the default deny selects cache", shop("api"), shop("cache"), Port{Number: 6379}, false, true, nil},
		{"prometheus to web metrics, start of range", prometheus, shop("web"), Port{Number: 9000}, true, true, []string{"shop/metrics"}},
		{"prometheus to api metrics, end of range", prometheus, shop("api"), Port{Number: 9100}, true, true, []string{"shop/metrics"}},
		{"prometheus past the range", prometheus, shop("api"), Port{Number: 9101}, false, true, nil},
		{"another pod of the monitoring namespace", grafana, shop("web"), Port{Number: 9000}, false, true, nil},
		{"UDP rule admits any source", impostor, shop("dns"), Port{Number: 53, Protocol: corev1.ProtocolUDP}, true, true, []string{"shop/dns-udp"}},
		{"UDP rule does not admit TCP", impostor, shop("dns"), Port{Number: 53}, false, true, nil},
		{"office address to api", office("10.10.1.7"), shop("api"), Port{Number: 8080}, true, true, []string{"shop/api-from-office"}},
		{"excepted office address to api", office("10.10.5.7"), shop("api"), Port{Number: 8080}, false, true, nil},
		{"address outside the block", office("192.0.2.1"), shop("api"), Port{Number: 8080}, false, true, nil},
		{"namespace without policies is open", impostor, open, Port{Number: 5432}, true, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Ingress(policies, tt.src, tt.dst, tt.port)
			require.NoError(t, err)
			assert.Equal(t, tt.allowed, v.Allowed, "allowed")
			assert.Equal(t, tt.isolated, v.Isolated, "isolated")
			assert.Equal(t, tt.by, v.By, "admitted by")
		})
	}
}

func TestIngressRejectsWhatItDoesNotModel(t *testing.T) {
	tests := []struct {
		name    string
		policy  networkingv1.NetworkPolicy
		wantErr string
	}{
		{"egress policy type", networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}}}, "restricts egress"},
		{"egress rules with empty policyTypes", networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{Egress: []networkingv1.NetworkPolicyEgressRule{{}}}}, "restricts egress"},
		{"empty peer", networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{}}}}}}, "sets none of"},
		{"bad cidr", networkingv1.NetworkPolicy{Spec: networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/99"}}}}}}}, "cidr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Name, tt.policy.Namespace = "p", "ns"
			_, err := Ingress([]networkingv1.NetworkPolicy{tt.policy}, Pod{Namespace: "ns", IP: netip.MustParseAddr("10.0.0.1")}, Pod{Namespace: "ns"}, Port{Number: 1})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Contains(t, err.Error(), "ns/p", "names the policy")
		})
	}
}
