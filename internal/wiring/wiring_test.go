package wiring

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

func TestCheckSecrets(t *testing.T) {
	tests := []struct {
		name string
		in   Secrets
		want []string
	}{
		{"all agree", Secrets{MasterKey: "sk-a", BackendAPIKey: "sk-a", AdminAPIKeys: "ltm_admin_x,ltm_admin_y"}, nil},
		{"unset values are not checked", Secrets{MasterKey: "sk-a"}, nil},
		{"master key differs", Secrets{MasterKey: "sk-a", BackendAPIKey: "sk-b"}, []string{"backend-secret LITELLM_API_KEY differs from litellm-secret LITELLM_MASTER_KEY"}},
		{"admin key prefix", Secrets{MasterKey: "sk-a", AdminAPIKeys: "ltm_admin_x,admin_y"}, []string{"ADMIN_API_KEYS entry 2 does not start with ltm_admin_"}},
		{"admin key spaces", Secrets{MasterKey: "sk-a", AdminAPIKeys: "ltm_admin_x, ltm_admin_y"}, []string{"ADMIN_API_KEYS entry 2 has spaces"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CheckSecrets(tt.in)
			require.Len(t, got, len(tt.want), got)
			for i, w := range tt.want {
				assert.Contains(t, got[i], w)
			}
			for _, p := range got {
				assert.NotContains(t, p, "sk-b", "values never appear")
			}
		})
	}
}

func backend(env map[string]string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "backend", Namespace: "litemaas"}}
	c := corev1.Container{Name: "backend"}
	for k, v := range env {
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: v})
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "LITELLM_API_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{Key: "LITELLM_API_KEY"}}})
	d.Spec.Template.Spec.Containers = []corev1.Container{c}
	return d
}

func route(name, host string) *unstructured.Unstructured {
	r := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "route.openshift.io/v1", "kind": "Route",
		"metadata": map[string]any{"name": name, "namespace": "litemaas"},
		"spec":     map[string]any{},
	}}
	if host != "" {
		_ = unstructured.SetNestedField(r.Object, host, "spec", "host")
	} else {
		_ = unstructured.SetNestedSlice(r.Object, []any{map[string]any{"host": name + "-litemaas.apps.example.com"}}, "status", "ingress")
	}
	return r
}

func cluster(t *testing.T, d *appsv1.Deployment, withRoutes bool, objs ...runtime.Object) Cluster {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(d)
	require.NoError(t, err)
	dep := &unstructured.Unstructured{Object: u}
	dep.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("Deployment"))
	scheme := runtime.NewScheme()
	dyn := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(scheme, map[schema.GroupVersionResource]string{routes: "RouteList"}, append(objs, dep)...)
	served := func(_ context.Context, gv string) (bool, error) {
		return withRoutes && gv == "route.openshift.io/v1", nil
	}
	return Cluster{Dynamic: dyn, Served: served, Namespace: "litemaas"}
}

func TestClusterCheck(t *testing.T) {
	good := map[string]string{
		"LITELLM_API_URL":    "https://litellm-litemaas.apps.example.com",
		"OAUTH_CALLBACK_URL": "https://litemaas-litemaas.apps.example.com/api/auth/callback",
		"CORS_ORIGIN":        "https://litemaas-litemaas.apps.example.com",
	}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"all agree", good, ""},
		{"internal LiteLLM URL", with("LITELLM_API_URL", "http://litellm:4000"), `LITELLM_API_URL is "http://litellm:4000", not the public LiteLLM route "https://litellm-litemaas.apps.example.com"`},
		{"callback on another host", with("OAUTH_CALLBACK_URL", "https://other.example.com/api/auth/callback"), "OAUTH_CALLBACK_URL is"},
		{"CORS origin", with("CORS_ORIGIN", "https://other.example.com"), "CORS_ORIGIN is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := cluster(t, backend(tt.env), true, route("litellm", "litellm-litemaas.apps.example.com"), route("litemaas", ""))
			problems, skipped, err := c.Check(context.Background())
			require.NoError(t, err)
			assert.Empty(t, skipped)
			if tt.want == "" {
				assert.Empty(t, problems)
				return
			}
			require.Len(t, problems, 1)
			assert.Contains(t, problems[0], tt.want)
		})
	}
}

func TestClusterCheckWithoutRoutes(t *testing.T) {
	c := cluster(t, backend(map[string]string{"LITELLM_API_URL": "http://litellm:4000"}), false)
	problems, skipped, err := c.Check(context.Background())
	require.NoError(t, err)
	assert.Empty(t, problems)
	assert.Contains(t, skipped, "no Route kind")
}
