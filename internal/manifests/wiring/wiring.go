// Package wiring holds the rules about how the components are wired together: the Secret contract,
// the values derived from the apps domain, the components' settings and the models catalog.
package wiring

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/traffic"
)

// SecretContract is every Secret key the manifests may reference: the Secrets are generated in-cluster
// by a separate job, which writes exactly these.
var SecretContract = map[string][]string{
	"postgres-secret": {"POSTGRES_USER", "POSTGRES_PASSWORD", "LITEMAAS_BACKEND_PASSWORD", "LITEMAAS_LITELLM_PASSWORD", "LITEMAAS_MODEL_READER_PASSWORD", "LITEMAAS_BACKUP_PASSWORD"},
	"litellm-secret":  {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "DATABASE_URL"},
	"backend-secret":  {"DATABASE_URL", "JWT_SECRET", "OAUTH_CLIENT_SECRET", "ADMIN_API_KEYS", "LITELLM_API_KEY", "LITELLM_DATABASE_URL", "OAUTH_CLIENT_ID"},
}

// CheckSecretRefs: every secretKeyRef / secretRef names a Secret and key of the contract, except the
// API keys the catalog's models name in apiKeyEnv, which the sync Job reads from the user's own Secrets.
func CheckSecretRefs(objs []*unstructured.Unstructured) []string {
	return CheckSecretRefsIn(objs, SecretContract)
}

// CheckSecretRefsIn is CheckSecretRefs against a given contract (the ha profile adds its role Secrets).
func CheckSecretRefsIn(objs []*unstructured.Unstructured, secretContract map[string][]string) []string {
	var p objects.Problems
	keyEnvs := objects.APIKeyEnvs(objs)
	for _, pt := range objects.PodTemplates(objs) {
		for _, c := range objects.ContainersOf(pt.Spec) {
			for _, e := range objects.Maps(objects.ListAt(c.Spec, "env")) {
				sk := objects.MapAt(e, "valueFrom", "secretKeyRef")
				if sk == nil {
					continue
				}
				name, key := objects.StringAt(sk, "name"), objects.StringAt(sk, "key")
				_, generated := secretContract[name]
				if !generated && pt.Owner == "Job/"+objects.SyncJobName && c.Name == objects.SyncJobName && keyEnvs[objects.StringAt(e, "name")] != "" {
					continue // a model's API key, from the user's own Secret
				}
				if !slices.Contains(secretContract[name], key) {
					p.Addf("%s container %s: env %s reads %s/%s, which is not in the Secret contract", pt.Owner, c.Name, objects.StringAt(e, "name"), name, key)
				}
			}
			for _, ef := range objects.Maps(objects.ListAt(c.Spec, "envFrom")) {
				if objects.Has(ef, "secretRef") {
					p.Addf("%s container %s: envFrom secretRef imports every key; reference keys one by one", pt.Owner, c.Name)
				}
			}
		}
		for _, v := range objects.Maps(objects.ListAt(pt.Spec, "volumes")) {
			if name := objects.StringAt(v, "secret", "secretName"); name != "" {
				if _, ok := secretContract[name]; !ok {
					p.Addf("%s: volume %s mounts Secret %s, which is not in the Secret contract", pt.Owner, objects.StringAt(v, "name"), name)
				}
			}
		}
	}
	return p
}

// routeHost returns spec.host of the named Route, or "".
func routeHost(objs []*unstructured.Unstructured, name string) string {
	r := objects.Find(objs, "Route", name)
	if r == nil {
		return ""
	}
	return objects.StringAt(r.Object, "spec", "host")
}

// CheckDomainWiring: the values that must agree across components, all derived from the overlay's
// apps domain. app is an overlay's app, cluster the cluster-admin part rendered with the same settings.
// issuer is the overlay's oauthIssuer setting (component oauth-issuer); empty or absent: derived.
func CheckDomainWiring(app, cluster []*unstructured.Unstructured, domain string, issuer ...string) []string {
	p := checkRoutes(app, domain)
	uiHost, litellmHost := routeHost(app, "litemaas"), routeHost(app, "litellm")

	b := backendEnv{o: objects.Find(app, "Deployment", "backend"), p: &p}
	if v, want := b.env("LITELLM_API_URL"), "https://"+litellmHost; v != want {
		p.Addf("backend LITELLM_API_URL = %q, want the public LiteLLM route URL %q (an internal URL breaks the chat playground)", v, want)
	}
	callback := b.env("OAUTH_CALLBACK_URL")
	if u, err := url.Parse(callback); err != nil || u.Scheme != "https" || u.Host != uiHost || u.Path != "/api/auth/callback" {
		p.Addf("backend OAUTH_CALLBACK_URL = %q, want https://%s/api/auth/callback (host of Route litemaas)", callback, uiHost)
	}
	if v, want := b.env("CORS_ORIGIN"), "https://"+uiHost; v != want {
		p.Addf("backend CORS_ORIGIN = %q, want %q", v, want)
	}
	wantIssuer := "https://oauth-openshift." + domain
	if len(issuer) > 0 && issuer[0] != "" {
		wantIssuer = issuer[0]
	}
	if oidc := b.checkIssuer(wantIssuer); !oidc {
		p = append(p, checkOAuthClient(app, cluster, b.env("OAUTH_CLIENT_ID"), callback)...)
	}
	return append(p, checkNoPlaceholder(app, cluster)...)
}

// checkRoutes: the three Routes, at the hosts of the runbook's Access URLs, edge-terminated.
func checkRoutes(app []*unstructured.Unstructured, domain string) objects.Problems {
	var p objects.Problems
	routes := map[string]struct{ host, service string }{
		"litemaas":     {"litemaas-litemaas." + domain, "frontend"},
		"litellm":      {"litellm-litemaas." + domain, "litellm"},
		"litemaas-api": {"litemaas-api-litemaas." + domain, "backend"},
	}
	for name, want := range routes {
		r := objects.Find(app, "Route", name)
		if r == nil && name == "litemaas-api" && objects.Find(app, "NetworkPolicy", "backend-from-router") == nil {
			continue // component no-backend-route
		}
		if r == nil {
			p.Addf("Route/%s is missing", name)
			continue
		}
		if h := objects.StringAt(r.Object, "spec", "host"); h != want.host {
			p.Addf("Route/%s: host %q, want %q (the runbook's Access URL)", name, h, want.host)
		}
		if to := objects.StringAt(r.Object, "spec", "to", "name"); to != want.service {
			p.Addf("Route/%s: routes to Service %q, want %q", name, to, want.service)
		}
		if t := objects.StringAt(r.Object, "spec", "tls", "termination"); t != "edge" {
			p.Addf("Route/%s: tls.termination %q, want edge", name, t)
		}
		if t := objects.StringAt(r.Object, "spec", "tls", "insecureEdgeTerminationPolicy"); t != "Redirect" {
			p.Addf("Route/%s: tls.insecureEdgeTerminationPolicy %q, want Redirect", name, t)
		}
	}
	return p
}

// backendEnv reads the literal env values of the backend's container, reporting each that has none.
type backendEnv struct {
	o *unstructured.Unstructured
	p *objects.Problems
}

func (b backendEnv) env(name string) string {
	v, ok := objects.EnvValue(b.o, "backend", name)
	if !ok {
		b.p.Addf("Deployment/backend: env %s has no literal value", name)
	}
	return v
}

// checkIssuer: with OpenID Connect (AUTH_PROVIDER=oidc) the provider is the OAuth server and holds the
// redirect URI, and the client id is copied into backend-secret by the secrets job; otherwise the issuer
// is OpenShift's OAuth server (or the overlay's oauthIssuer; the parity test checks it against the
// overlay's settings). It reports whether the backend uses OpenID Connect.
func (b backendEnv) checkIssuer(wantIssuer string) (oidc bool) {
	if provider, _ := objects.EnvValue(b.o, "backend", "AUTH_PROVIDER"); provider != "oidc" {
		if v := b.env("OAUTH_ISSUER"); v != wantIssuer {
			b.p.Addf("backend OAUTH_ISSUER = %q, want %q", v, wantIssuer)
		}
		return false
	}
	if u, err := url.Parse(b.env("OAUTH_ISSUER")); err != nil || u.Scheme != "https" || u.Host == "" || strings.HasPrefix(u.Host, "oauth-openshift.") {
		b.p.Addf("backend OAUTH_ISSUER = %q, want the OpenID Connect provider's https issuer", b.env("OAUTH_ISSUER"))
	}
	sk := objects.MapAt(objects.EnvOf(objects.ContainerNamed(objects.MapAt(b.o.Object, "spec", "template", "spec"), "backend"))["OAUTH_CLIENT_ID"], "valueFrom", "secretKeyRef")
	if objects.StringAt(sk, "name") != "backend-secret" || objects.StringAt(sk, "key") != "OAUTH_CLIENT_ID" {
		b.p.Addf("backend OAUTH_CLIENT_ID: with AUTH_PROVIDER=oidc it comes from backend-secret/OAUTH_CLIENT_ID")
	}
	return true
}

// checkOAuthClient: either a classic OAuthClient (cluster part) redirecting to exactly the backend's
// callback, or a ServiceAccount of the app as OAuth client, whose allowed redirect is the host of the
// Route its annotation names.
func checkOAuthClient(app, cluster []*unstructured.Unstructured, clientID, callback string) objects.Problems {
	var p objects.Problems
	if sa, ok := strings.CutPrefix(clientID, "system:serviceaccount:litemaas:"); ok {
		o := objects.Find(app, "ServiceAccount", sa)
		if o == nil {
			p.Addf("backend OAUTH_CLIENT_ID %q: no such ServiceAccount", clientID)
			return p
		}
		for k, v := range o.GetAnnotations() {
			if strings.HasPrefix(k, "serviceaccounts.openshift.io/oauth-redirectreference.") && strings.Contains(v, `"kind":"Route","name":"litemaas"`) {
				return p
			}
		}
		p.Addf("ServiceAccount/%s: no oauth-redirectreference annotation naming Route litemaas", sa)
		return p
	}
	oc := objects.Find(cluster, "OAuthClient", clientID)
	if oc == nil {
		p.Addf("cluster part: no OAuthClient named %q (the backend's OAUTH_CLIENT_ID)", clientID)
		return p
	}
	if uris := objects.ListAt(oc.Object, "redirectURIs"); len(uris) != 1 || uris[0] != callback {
		p.Addf("OAuthClient/%s: redirectURIs %v, want exactly [%s] (the backend's OAUTH_CALLBACK_URL)", clientID, uris, callback)
	}
	if objects.Has(oc.Object, "secret") {
		p.Addf("OAuthClient/%s: secret is set in git", clientID)
	}
	return p
}

// checkNoPlaceholder: no string of the app or its cluster part still holds the base's placeholder.
func checkNoPlaceholder(app, cluster []*unstructured.Unstructured) objects.Problems {
	var p objects.Problems
	for _, set := range [][]*unstructured.Unstructured{app, cluster} {
		for _, o := range set {
			objects.WalkStrings(o.Object, "", func(path, s string) {
				if strings.Contains(s, objects.Placeholder) {
					p.Addf("%s: %s = %q still holds the base's placeholder domain", objects.Ref(o), path, s)
				}
			})
		}
	}
	return p
}

// CheckComponentSettings: the settings litemaas.md says each component needs.
func CheckComponentSettings(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	want := func(o *unstructured.Unstructured, containerName, env, value string) {
		if v, ok := objects.EnvValue(o, containerName, env); !ok || v != value {
			p.Addf("%s: env %s = %q, want %q", objects.Ref(o), env, v, value)
		}
	}
	wantSecret := func(o *unstructured.Unstructured, containerName, env, secret, key string) {
		if o == nil {
			return
		}
		e := objects.EnvOf(objects.ContainerNamed(objects.MapAt(o.Object, "spec", "template", "spec"), containerName))[env]
		sk := objects.MapAt(e, "valueFrom", "secretKeyRef")
		if objects.StringAt(sk, "name") != secret || objects.StringAt(sk, "key") != key {
			p.Addf("%s: env %s does not come from %s/%s", objects.Ref(o), env, secret, key)
		}
	}

	backend := objects.Find(objs, "Deployment", "backend")
	litellm := objects.Find(objs, "Deployment", "litellm")
	postgres := objects.Find(objs, "StatefulSet", "postgres")
	for _, w := range []struct {
		kind, name string
		o          *unstructured.Unstructured
	}{{"Deployment", "backend", backend}, {"Deployment", "litellm", litellm}, {"StatefulSet", "postgres", postgres}, {"Deployment", "frontend", objects.Find(objs, "Deployment", "frontend")}} {
		if w.o == nil {
			p.Addf("%s/%s is missing", w.kind, w.name)
		}
	}
	if backend != nil {
		if r, _, _ := unstructured.NestedInt64(backend.Object, "spec", "replicas"); r != 1 {
			p.Addf("Deployment/backend: replicas %d, want 1 (OAuth state is in process memory)", r)
		}
		want(backend, "backend", "NODE_ENV", "production")
		// Behind the guard the backend has its own loopback port; CheckBackendGuard holds that wiring.
		if !traffic.HasGuard(backend) {
			want(backend, "backend", "PORT", "8080")
		}
		// The OAuthClient of the cluster part, or a ServiceAccount as OAuth client (CheckDomainWiring
		// checks that the client exists).
		// (With AUTH_PROVIDER=oidc the client id is the provider's, from backend-secret.)
		if provider, _ := objects.EnvValue(backend, "backend", "AUTH_PROVIDER"); provider == "oidc" {
		} else if v, _ := objects.EnvValue(backend, "backend", "OAUTH_CLIENT_ID"); v != "litemaas-oauth-client" && !strings.HasPrefix(v, "system:serviceaccount:litemaas:") {
			p.Addf("Deployment/backend: OAUTH_CLIENT_ID %q is neither litemaas-oauth-client nor a ServiceAccount of litemaas", v)
		}
		for env, key := range map[string]string{
			"DATABASE_URL": "DATABASE_URL", "JWT_SECRET": "JWT_SECRET", "OAUTH_CLIENT_SECRET": "OAUTH_CLIENT_SECRET",
			"ADMIN_API_KEYS": "ADMIN_API_KEYS", "LITELLM_API_KEY": "LITELLM_API_KEY", "LITELLM_DATABASE_URL": "LITELLM_DATABASE_URL",
		} {
			wantSecret(backend, "backend", env, "backend-secret", key)
		}
		if _, ok := objects.EnvValue(backend, "backend", "NODE_TLS_REJECT_UNAUTHORIZED"); ok {
			p.Addf("Deployment/backend: NODE_TLS_REJECT_UNAUTHORIZED is set; use the custom-ca component instead")
		}
	}
	if litellm != nil {
		want(litellm, "litellm", "STORE_MODEL_IN_DB", "True")
		wantSecret(litellm, "litellm", "DATABASE_URL", "litellm-secret", "DATABASE_URL")
		wantSecret(litellm, "litellm", "LITELLM_MASTER_KEY", "litellm-secret", "LITELLM_MASTER_KEY")
		wantSecret(litellm, "litellm", "LITELLM_SALT_KEY", "litellm-secret", "LITELLM_SALT_KEY")
	}
	if postgres != nil {
		want(postgres, "postgres", "POSTGRES_DB", "litemaas_db")
		if v, _ := objects.EnvValue(postgres, "postgres", "PGDATA"); !strings.HasPrefix(v, "/var/lib/postgresql/data/") {
			p.Addf("StatefulSet/postgres: PGDATA %q is not a subdirectory of the volume mount", v)
		}
		if len(objects.ListAt(postgres.Object, "spec", "volumeClaimTemplates")) != 1 {
			p.Addf("StatefulSet/postgres: want one volumeClaimTemplate")
		}
	}
	if f := objects.Find(objs, "Deployment", "frontend"); f != nil {
		want(f, "frontend", "BACKEND_URL", "http://backend:8080")
	}
	return p
}

// CheckCatalog: every generated models ConfigMap holds a catalog that litemaas-sync accepts, by the
// validator's own rules (catalog.Parse), nothing more: any number of models, optional fields optional.
func CheckCatalog(objs []*unstructured.Unstructured) []string { return CheckCatalogFile(objs, "", "") }

// CheckCatalogFile is CheckCatalog naming file (relative to root) in its messages when the ConfigMap
// holds exactly that file's content, so that a line number points into the file the user edits.
func CheckCatalogFile(objs []*unstructured.Unstructured, root, file string) []string {
	var p objects.Problems
	var source []byte
	if file != "" {
		source, _ = os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	}
	found := false
	for _, cm := range objs {
		if cm.GetKind() != "ConfigMap" || !strings.HasPrefix(cm.GetName(), objects.ModelsConfigMapPrefix) {
			continue
		}
		found = true
		data, ok, _ := unstructured.NestedString(cm.Object, "data", objects.ModelsConfigMapDataKey)
		if !ok {
			p.Addf("%s: no key %s", objects.Ref(cm), objects.ModelsConfigMapDataKey)
			continue
		}
		name := objects.Ref(cm) + " key " + objects.ModelsConfigMapDataKey
		if source != nil && string(source) == data {
			name = file
		}
		if _, err := catalog.Parse(name, []byte(data)); err != nil {
			var ce *catalog.Error
			if errors.As(err, &ce) {
				// One finding per problem, each naming file, line, model and field.
				for _, line := range strings.Split(ce.Error(), "\n")[1:] {
					p = append(p, strings.TrimSpace(line))
				}
				continue
			}
			p.Addf("%s: %v", name, err)
		}
	}
	if !found {
		return []string{"no models catalog (ConfigMap " + objects.ModelsConfigMapPrefix + "<hash>, key " + objects.ModelsConfigMapDataKey + ")"}
	}
	return p
}
