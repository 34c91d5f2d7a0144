// Package wiring checks, at run time, the values that must agree across the LiteMaaS components. Each
// disagreement is one of the runbook's failures waiting to happen (the chat playground's "Network
// Error", a backend that cannot call LiteLLM, an OAuth login that cannot come back, admin keys that
// fail silently), so the job refuses to go on and says which value to fix.
package wiring

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// AdminKeyPrefix is what the backend requires of every ADMIN_API_KEYS entry; others fail silently.
const AdminKeyPrefix = "ltm_admin_"

var (
	routes      = schema.GroupVersionResource{Group: "route.openshift.io", Version: "v1", Resource: "routes"}
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
)

// Secrets are the values the job is given from the stack's Secrets. Empty ones are not checked.
type Secrets struct {
	MasterKey     string // litellm-secret LITELLM_MASTER_KEY
	BackendAPIKey string // backend-secret LITELLM_API_KEY
	AdminAPIKeys  string // backend-secret ADMIN_API_KEYS
}

// CheckSecrets compares the secret values. Messages name Secrets and keys, never values.
func CheckSecrets(s Secrets) []string {
	var problems []string
	if s.BackendAPIKey != "" && subtle.ConstantTimeCompare([]byte(s.BackendAPIKey), []byte(s.MasterKey)) != 1 {
		problems = append(problems, "backend-secret LITELLM_API_KEY differs from litellm-secret LITELLM_MASTER_KEY: the backend cannot call LiteLLM's admin API; set it to the master key")
	}
	if s.AdminAPIKeys != "" {
		for i, k := range strings.Split(s.AdminAPIKeys, ",") {
			switch {
			case k != strings.TrimSpace(k):
				problems = append(problems, fmt.Sprintf("backend-secret ADMIN_API_KEYS entry %d has spaces around it: the backend does not trim entries, so it never matches; write the list without spaces", i+1))
			case !strings.HasPrefix(k, AdminKeyPrefix):
				problems = append(problems, fmt.Sprintf("backend-secret ADMIN_API_KEYS entry %d does not start with %s: the backend rejects it silently", i+1, AdminKeyPrefix))
			}
		}
	}
	return problems
}

// Cluster reads the backend's settings and the Routes they must match.
type Cluster struct {
	Dynamic dynamic.Interface
	// Served reports whether the API server serves a group/version (kube.GroupVersionServed).
	Served    func(ctx context.Context, groupVersion string) (bool, error)
	Namespace string
	// Backend, LiteLLMRoute and FrontendRoute name the objects (defaults backend, litellm, litemaas).
	Backend, LiteLLMRoute, FrontendRoute string
	// HTTPClient fetches the OIDC discovery document (AUTH_PROVIDER=oidc); nil: the system's CAs.
	HTTPClient *http.Client
}

// Check compares the backend Deployment's LITELLM_API_URL, OAUTH_CALLBACK_URL and CORS_ORIGIN with
// the Routes' hosts, and with AUTH_PROVIDER=oidc checks the issuer's discovery document
// (CheckOIDCIssuer). On a cluster without Routes (no OpenShift) it compares no URL with a Route and
// says so.
func (c Cluster) Check(ctx context.Context) (problems []string, skipped string, err error) {
	backend, lr, fr := or(c.Backend, "backend"), or(c.LiteLLMRoute, "litellm"), or(c.FrontendRoute, "litemaas")
	d, err := c.Dynamic.Resource(deployments).Namespace(c.Namespace).Get(ctx, backend, metav1.GetOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("reading deployment/%s: %w", backend, err)
	}
	env := plainEnv(d)
	// Who checks the redirect URI at login: OpenShift's OAuth server, or the OIDC provider.
	idp := "OpenShift"
	if env["AUTH_PROVIDER"] == "oidc" {
		idp = "the OpenID Connect provider (where it must be registered as the client's redirect URI)"
		problems = append(problems, CheckOIDCIssuer(ctx, c.HTTPClient, backend, env["OAUTH_ISSUER"])...)
	}
	served, err := c.Served(ctx, routes.GroupVersion().String())
	if err != nil {
		return nil, "", fmt.Errorf("looking up the Route kind: %w", err)
	}
	if !served {
		return problems, "no Route kind on this cluster: the backend's URLs were not compared with routes", nil
	}
	litellmHost, err := c.routeHost(ctx, lr)
	if err != nil {
		return nil, "", err
	}
	frontendHost, err := c.routeHost(ctx, fr)
	if err != nil {
		return nil, "", err
	}
	if v, ok := env["LITELLM_API_URL"]; ok && litellmHost != "" {
		want := "https://" + litellmHost
		if strings.TrimSuffix(v, "/") != want {
			problems = append(problems, fmt.Sprintf("deployment/%s LITELLM_API_URL is %q, not the public LiteLLM route %q: the browser's chat playground calls it directly and shows \"Network Error\"", backend, v, want))
		}
	}
	if v, ok := env["OAUTH_CALLBACK_URL"]; ok && frontendHost != "" {
		u, perr := url.Parse(v)
		if perr != nil || u.Host != frontendHost || u.Path != "/api/auth/callback" {
			problems = append(problems, fmt.Sprintf("deployment/%s OAUTH_CALLBACK_URL is %q, want %q (the frontend route's host): %s would refuse the login redirect", backend, v, "https://"+frontendHost+"/api/auth/callback", idp))
		}
	}
	if v, ok := env["CORS_ORIGIN"]; ok && frontendHost != "" && v != "https://"+frontendHost {
		problems = append(problems, fmt.Sprintf("deployment/%s CORS_ORIGIN is %q, want %q", backend, v, "https://"+frontendHost))
	}
	return problems, "", nil
}

// routeHost is the Route's host: spec.host, or the host the router admitted when spec.host is empty.
func (c Cluster) routeHost(ctx context.Context, name string) (string, error) {
	r, err := c.Dynamic.Resource(routes).Namespace(c.Namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("reading route/%s: %w", name, err)
	}
	if h, _, _ := unstructured.NestedString(r.Object, "spec", "host"); h != "" {
		return h, nil
	}
	ingress, _, _ := unstructured.NestedSlice(r.Object, "status", "ingress")
	for _, i := range ingress {
		if m, ok := i.(map[string]any); ok {
			if h, ok := m["host"].(string); ok && h != "" {
				return h, nil
			}
		}
	}
	return "", nil
}

// plainEnv returns the environment variables the Deployment's containers set to a value (not from a
// Secret or ConfigMap), read from the object as the dynamic client delivers it.
func plainEnv(d *unstructured.Unstructured) map[string]string {
	env := map[string]string{}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	for _, c := range containers {
		c, _ := c.(map[string]any)
		vars, _, _ := unstructured.NestedSlice(c, "env")
		for _, v := range vars {
			e, _ := v.(map[string]any)
			if from, ok := e["valueFrom"]; ok && from != nil {
				continue
			}
			name, _, _ := unstructured.NestedString(e, "name")
			value, _, _ := unstructured.NestedString(e, "value")
			env[name] = value
		}
	}
	return env
}

func or(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
