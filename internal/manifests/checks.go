package manifests

// The policy checks. Each takes rendered objects and returns the problems it found, one readable line
// each, so that a failing test says what is wrong and where. policy_test.go runs them on every
// target (see policy.go, run by the tests and by `litemaas-ops check`); checks_negative_test.go shows
// that each one rejects a broken object.

import (
	"errors"
	"fmt"
	stdmaps "maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
)

// Placeholder is the apps domain the bases carry until an overlay's replacements overwrite it.
const Placeholder = "CLUSTER_APPS_DOMAIN"

const (
	labelName      = "app.kubernetes.io/name"
	labelPartOf    = "app.kubernetes.io/part-of"
	labelComponent = "app.kubernetes.io/component"
	labelVersion   = "app.kubernetes.io/version"

	hookAnnotation         = "argocd.argoproj.io/hook"
	hookDeleteAnnotation   = "argocd.argoproj.io/hook-delete-policy"
	syncJobName            = "litemaas-sync"
	syncStatusConfigMap    = "litemaas-sync-status"
	modelsConfigMapPrefix  = "litemaas-models-"
	modelsConfigMapDataKey = "models.yaml"
)

// secretContract is every Secret key the manifests may reference: the Secrets are generated in-cluster
// by a separate job, which writes exactly these.
var secretContract = map[string][]string{
	"postgres-secret": {"POSTGRES_USER", "POSTGRES_PASSWORD", "LITEMAAS_BACKEND_PASSWORD", "LITEMAAS_LITELLM_PASSWORD", "LITEMAAS_MODEL_READER_PASSWORD", "LITEMAAS_BACKUP_PASSWORD"},
	"litellm-secret":  {"LITELLM_MASTER_KEY", "LITELLM_SALT_KEY", "DATABASE_URL"},
	"backend-secret":  {"DATABASE_URL", "JWT_SECRET", "OAUTH_CLIENT_SECRET", "ADMIN_API_KEYS", "LITELLM_API_KEY", "LITELLM_DATABASE_URL", "OAUTH_CLIENT_ID"},
}

// syncJobEnv is the litemaas-sync program's environment contract: exactly these names.
var syncJobEnv = []string{
	"MODELS_FILE", "DATABASE_URL", "LITELLM_URL", "LITELLM_MASTER_KEY", "WAIT_TIMEOUT", "WAIT_FOR",
	"NAMESPACE", "LOG_FORMAT", "DRY_RUN", "PRUNE", "BACKEND_LITELLM_API_KEY", "BACKEND_ADMIN_API_KEYS",
	"GOMEMLIMIT", "JOB_NAME", "JOB_UID",
}

// problems collects findings.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

func ref(o *unstructured.Unstructured) string { return o.GetKind() + "/" + o.GetName() }

// --- navigation helpers ---------------------------------------------------------------------------

func mapAt(obj map[string]any, path ...string) map[string]any {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !ok {
		return nil
	}
	m, _ := v.(map[string]any)
	return m
}

func listAt(obj map[string]any, path ...string) []any {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !ok {
		return nil
	}
	l, _ := v.([]any)
	return l
}

func stringAt(obj map[string]any, path ...string) string {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	if !ok {
		return ""
	}
	s, _ := v.(string)
	return s
}

func has(obj map[string]any, path ...string) bool {
	_, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	return ok
}

// isTrue reports whether the field is the boolean true; isFalse whether it is explicitly false.
func isTrue(obj map[string]any, path ...string) bool {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	b, isBool := v.(bool)
	return ok && isBool && b
}

func isFalse(obj map[string]any, path ...string) bool {
	v, ok, _ := unstructured.NestedFieldNoCopy(obj, path...)
	b, isBool := v.(bool)
	return ok && isBool && !b
}

func maps(l []any) []map[string]any {
	out := make([]map[string]any, 0, len(l))
	for _, v := range l {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// podTemplate is a pod spec found in a workload, with the labels of its template.
type podTemplate struct {
	owner  string // Kind/name of the object holding it
	kind   string
	labels map[string]any
	spec   map[string]any
}

// podTemplates returns the pod specs of every workload kind that has one.
func podTemplates(objs []*unstructured.Unstructured) []podTemplate {
	var out []podTemplate
	for _, o := range objs {
		var tmpl map[string]any
		switch o.GetKind() {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController":
			tmpl = mapAt(o.Object, "spec", "template")
		case "CronJob":
			tmpl = mapAt(o.Object, "spec", "jobTemplate", "spec", "template")
		case "Pod":
			tmpl = o.Object
		default:
			continue
		}
		if tmpl == nil {
			out = append(out, podTemplate{owner: ref(o), kind: o.GetKind(), spec: map[string]any{}})
			continue
		}
		out = append(out, podTemplate{owner: ref(o), kind: o.GetKind(), labels: mapAt(tmpl, "metadata", "labels"), spec: mapAt(tmpl, "spec")})
	}
	return out
}

// container is one container of a pod spec; init tells init containers apart.
type container struct {
	name string
	init bool
	spec map[string]any
}

func containersOf(spec map[string]any) []container {
	var out []container
	for _, field := range []string{"initContainers", "containers", "ephemeralContainers"} {
		for _, c := range maps(listAt(spec, field)) {
			out = append(out, container{name: stringAt(c, "name"), init: field != "containers", spec: c})
		}
	}
	return out
}

func containerNamed(spec map[string]any, name string) map[string]any {
	for _, c := range maps(listAt(spec, "containers")) {
		if stringAt(c, "name") == name {
			return c
		}
	}
	return nil
}

// envOf maps a container's env names to their entries.
func envOf(c map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, e := range maps(listAt(c, "env")) {
		out[stringAt(e, "name")] = e
	}
	return out
}

// envValue returns the literal value of an env var of the named container of a workload.
func envValue(o *unstructured.Unstructured, containerName, env string) (string, bool) {
	if o == nil {
		return "", false
	}
	c := containerNamed(mapAt(o.Object, "spec", "template", "spec"), containerName)
	e, ok := envOf(c)[env]
	if !ok || !has(e, "value") {
		return "", false
	}
	return stringAt(e, "value"), true
}

// --- pod security: what OpenShift's restricted-v2 adds to Pod Security Admission ----------------

// The restricted level of Pod Security Admission (non-root, no privilege escalation, all capabilities
// dropped, a seccomp profile, no host namespaces, ports or paths, only the safe volume types) is judged
// by the kube-apiserver itself: the tests dry-run every overlay in a namespace labelled
// pod-security.kubernetes.io/enforce and warn: restricted (dryrun_test.go). What follows is only what
// OpenShift's restricted-v2 SecurityContextConstraints refuses and PSA accepts.

// checkRestrictedV2: no pod template asks for a UID, GID or fsGroup (restricted-v2 assigns them from the
// namespace's range, and a fixed one outside it is refused; PSA accepts any UID but 0), and a seccomp
// profile, where set, is RuntimeDefault (restricted-v2 allows runtime/default only; PSA also Localhost).
func checkRestrictedV2(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, pt := range podTemplates(objs) {
		psc := mapAt(pt.spec, "securityContext")
		for _, f := range []string{"runAsUser", "runAsGroup", "fsGroup"} {
			if has(psc, f) {
				p.addf("%s: pod securityContext.%s is set; restricted-v2 assigns it from the namespace's range", pt.owner, f)
			}
		}
		if t := stringAt(psc, "seccompProfile", "type"); t != "" && t != "RuntimeDefault" {
			p.addf("%s: pod seccompProfile is %s; restricted-v2 allows RuntimeDefault only", pt.owner, t)
		}
		for _, c := range containersOf(pt.spec) {
			where := fmt.Sprintf("%s container %s", pt.owner, c.name)
			sc := mapAt(c.spec, "securityContext")
			for _, f := range []string{"runAsUser", "runAsGroup"} {
				if has(sc, f) {
					p.addf("%s: securityContext.%s is set; restricted-v2 assigns it", where, f)
				}
			}
			if t := stringAt(sc, "seccompProfile", "type"); t != "" && t != "RuntimeDefault" {
				p.addf("%s: seccompProfile is %s; restricted-v2 allows RuntimeDefault only", where, t)
			}
		}
	}
	return p
}

// checkResources: every container, init containers included, has cpu and memory requests and limits.
func checkResources(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, pt := range podTemplates(objs) {
		for _, c := range containersOf(pt.spec) {
			for _, kind := range []string{"requests", "limits"} {
				for _, res := range []string{"cpu", "memory"} {
					if !has(c.spec, "resources", kind, res) {
						p.addf("%s container %s: no resources.%s.%s", pt.owner, c.name, kind, res)
					}
				}
			}
		}
	}
	return p
}

// checkProbes: every long-running container (Deployment, StatefulSet, DaemonSet) has a readiness and
// a liveness probe. Jobs and init containers run to completion and have none.
func checkProbes(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, pt := range podTemplates(objs) {
		switch pt.kind {
		case "Deployment", "StatefulSet", "DaemonSet":
		default:
			continue
		}
		for _, c := range containersOf(pt.spec) {
			if c.init {
				continue
			}
			for _, probe := range []string{"readinessProbe", "livenessProbe"} {
				if !has(c.spec, probe) {
					p.addf("%s container %s: no %s", pt.owner, c.name, probe)
				}
			}
		}
	}
	return p
}

// --- Argo CD hooks -----------------------------------------------------------------------------

// checkHookJobs: a hook Job that never ends blocks the Application forever (Argo CD's sync has no
// timeout), so every hook Job has a deadline; and a delete policy, so that the next sync can create it
// again under its fixed name.
func checkHookJobs(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, o := range objs {
		if o.GetKind() != "Job" || o.GetAnnotations()[hookAnnotation] == "" {
			continue
		}
		if d, ok, _ := unstructured.NestedInt64(o.Object, "spec", "activeDeadlineSeconds"); !ok || d <= 0 {
			p.addf("%s: hook Job without spec.activeDeadlineSeconds", ref(o))
		}
		if o.GetAnnotations()[hookDeleteAnnotation] == "" {
			p.addf("%s: hook Job without %s", ref(o), hookDeleteAnnotation)
		}
		if o.GetName() == "" {
			p.addf("%s: hook Job without a fixed metadata.name", ref(o))
		}
	}
	return p
}

// --- images ---------------------------------------------------------------------------------------

// imagesOf returns every image of every container of every pod template, sorted and unique.
func imagesOf(objs []*unstructured.Unstructured) []string {
	set := map[string]bool{}
	for _, pt := range podTemplates(objs) {
		for _, c := range containersOf(pt.spec) {
			set[stringAt(c.spec, "image")] = true
		}
	}
	// A CloudNativePG Cluster names the image its operator runs.
	for _, o := range objs {
		if o.GetKind() == "Cluster" && o.GroupVersionKind().Group == "postgresql.cnpg.io" {
			set[stringAt(o.Object, "spec", "imageName")] = true
		}
	}
	out := make([]string, 0, len(set))
	for img := range set {
		out = append(out, img)
	}
	sort.Strings(out)
	return out
}

// pinned reports why an image reference is not pinned, or "" if it is: it needs a digest, or a tag
// that is not a moving branch name.
func pinned(image string) string {
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

// checkImagesPinned: every image has a digest or a fixed tag.
func checkImagesPinned(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, pt := range podTemplates(objs) {
		for _, c := range containersOf(pt.spec) {
			img := stringAt(c.spec, "image")
			if why := pinned(img); why != "" {
				p.addf("%s container %s: image %q is not pinned: %s", pt.owner, c.name, img, why)
			}
		}
	}
	return p
}

// checkImageInventory: the images used are exactly the images listed in images/images.yaml.
func checkImageInventory(used, listed []string) []string {
	var p problems
	for _, img := range used {
		if !slices.Contains(listed, img) {
			p.addf("image %s is used but not listed in images/images.yaml", img)
		}
	}
	for _, img := range listed {
		if !slices.Contains(used, img) {
			p.addf("image %s is listed in images/images.yaml but no manifest uses it", img)
		}
	}
	seen := map[string]bool{}
	for _, img := range listed {
		if seen[img] {
			p.addf("image %s is listed twice in images/images.yaml", img)
		}
		seen[img] = true
	}
	return p
}

// imageSetImages parses an oc-mirror ImageSetConfiguration and returns its additionalImages.
func imageSetImages(data []byte) ([]string, error) {
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

// --- secrets ----------------------------------------------------------------------------------------

// checkNoSecretData: no Secret object carries values. Secrets are generated in the cluster.
func checkNoSecretData(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, o := range objs {
		if o.GetKind() != "Secret" {
			continue
		}
		for _, f := range []string{"data", "stringData"} {
			if has(o.Object, f) {
				p.addf("%s: Secret with %s in git; Secrets are generated in the cluster, never committed", ref(o), f)
			}
		}
	}
	return p
}

// checkSecretRefs: every secretKeyRef / secretRef names a Secret and key of the contract, except the
// API keys the catalog's models name in apiKeyEnv, which the sync Job reads from the user's own Secrets.
func checkSecretRefs(objs []*unstructured.Unstructured) []string {
	return checkSecretRefsIn(objs, secretContract)
}

// checkSecretRefsIn is checkSecretRefs against a given contract (the ha profile adds its role Secrets).
func checkSecretRefsIn(objs []*unstructured.Unstructured, secretContract map[string][]string) []string {
	var p problems
	keyEnvs := apiKeyEnvs(objs)
	for _, pt := range podTemplates(objs) {
		for _, c := range containersOf(pt.spec) {
			for _, e := range maps(listAt(c.spec, "env")) {
				sk := mapAt(e, "valueFrom", "secretKeyRef")
				if sk == nil {
					continue
				}
				name, key := stringAt(sk, "name"), stringAt(sk, "key")
				_, generated := secretContract[name]
				if !generated && pt.owner == "Job/"+syncJobName && c.name == syncJobName && keyEnvs[stringAt(e, "name")] != "" {
					continue // a model's API key, from the user's own Secret
				}
				if !slices.Contains(secretContract[name], key) {
					p.addf("%s container %s: env %s reads %s/%s, which is not in the Secret contract", pt.owner, c.name, stringAt(e, "name"), name, key)
				}
			}
			for _, ef := range maps(listAt(c.spec, "envFrom")) {
				if has(ef, "secretRef") {
					p.addf("%s container %s: envFrom secretRef imports every key; reference keys one by one", pt.owner, c.name)
				}
			}
		}
		for _, v := range maps(listAt(pt.spec, "volumes")) {
			if name := stringAt(v, "secret", "secretName"); name != "" {
				if _, ok := secretContract[name]; !ok {
					p.addf("%s: volume %s mounts Secret %s, which is not in the Secret contract", pt.owner, stringAt(v, "name"), name)
				}
			}
		}
	}
	return p
}

// --- the apps domain ------------------------------------------------------------------------------

// routeHost returns spec.host of the named Route, or "".
func routeHost(objs []*unstructured.Unstructured, name string) string {
	r := Find(objs, "Route", name)
	if r == nil {
		return ""
	}
	return stringAt(r.Object, "spec", "host")
}

// checkDomainWiring: the values that must agree across components, all derived from the overlay's
// apps domain. app is an overlay's app, cluster the cluster-admin part rendered with the same settings.
// issuer is the overlay's oauthIssuer setting (component oauth-issuer); empty or absent: derived.
func checkDomainWiring(app, cluster []*unstructured.Unstructured, domain string, issuer ...string) []string {
	var p problems
	routes := map[string]struct{ host, service string }{
		"litemaas":     {"litemaas-litemaas." + domain, "frontend"},
		"litellm":      {"litellm-litemaas." + domain, "litellm"},
		"litemaas-api": {"litemaas-api-litemaas." + domain, "backend"},
	}
	for name, want := range routes {
		r := Find(app, "Route", name)
		if r == nil && name == "litemaas-api" && Find(app, "NetworkPolicy", "backend-from-router") == nil {
			continue // component no-backend-route
		}
		if r == nil {
			p.addf("Route/%s is missing", name)
			continue
		}
		if h := stringAt(r.Object, "spec", "host"); h != want.host {
			p.addf("Route/%s: host %q, want %q (the runbook's Access URL)", name, h, want.host)
		}
		if to := stringAt(r.Object, "spec", "to", "name"); to != want.service {
			p.addf("Route/%s: routes to Service %q, want %q", name, to, want.service)
		}
		if t := stringAt(r.Object, "spec", "tls", "termination"); t != "edge" {
			p.addf("Route/%s: tls.termination %q, want edge", name, t)
		}
		if t := stringAt(r.Object, "spec", "tls", "insecureEdgeTerminationPolicy"); t != "Redirect" {
			p.addf("Route/%s: tls.insecureEdgeTerminationPolicy %q, want Redirect", name, t)
		}
	}
	uiHost, litellmHost := routeHost(app, "litemaas"), routeHost(app, "litellm")

	backend := Find(app, "Deployment", "backend")
	env := func(name string) string {
		v, ok := envValue(backend, "backend", name)
		if !ok {
			p.addf("Deployment/backend: env %s has no literal value", name)
		}
		return v
	}
	if v, want := env("LITELLM_API_URL"), "https://"+litellmHost; v != want {
		p.addf("backend LITELLM_API_URL = %q, want the public LiteLLM route URL %q (an internal URL breaks the chat playground)", v, want)
	}
	callback := env("OAUTH_CALLBACK_URL")
	if u, err := url.Parse(callback); err != nil || u.Scheme != "https" || u.Host != uiHost || u.Path != "/api/auth/callback" {
		p.addf("backend OAUTH_CALLBACK_URL = %q, want https://%s/api/auth/callback (host of Route litemaas)", callback, uiHost)
	}
	if v, want := env("CORS_ORIGIN"), "https://"+uiHost; v != want {
		p.addf("backend CORS_ORIGIN = %q, want %q", v, want)
	}
	// OpenID Connect: the provider is the OAuth server and holds the redirect URI; the client id is
	// copied into backend-secret by the secrets job (the parity test checks the issuer against the
	// overlay's settings).
	wantIssuer := "https://oauth-openshift." + domain
	if len(issuer) > 0 && issuer[0] != "" {
		wantIssuer = issuer[0]
	}
	oidc := false
	if provider, _ := envValue(backend, "backend", "AUTH_PROVIDER"); provider == "oidc" {
		oidc = true
		if u, err := url.Parse(env("OAUTH_ISSUER")); err != nil || u.Scheme != "https" || u.Host == "" || strings.HasPrefix(u.Host, "oauth-openshift.") {
			p.addf("backend OAUTH_ISSUER = %q, want the OpenID Connect provider's https issuer", env("OAUTH_ISSUER"))
		}
		sk := mapAt(envOf(containerNamed(mapAt(backend.Object, "spec", "template", "spec"), "backend"))["OAUTH_CLIENT_ID"], "valueFrom", "secretKeyRef")
		if stringAt(sk, "name") != "backend-secret" || stringAt(sk, "key") != "OAUTH_CLIENT_ID" {
			p.addf("backend OAUTH_CLIENT_ID: with AUTH_PROVIDER=oidc it comes from backend-secret/OAUTH_CLIENT_ID")
		}
	} else if v, want := env("OAUTH_ISSUER"), wantIssuer; v != want {
		p.addf("backend OAUTH_ISSUER = %q, want %q", v, want)
	}
	clientID := ""
	if !oidc {
		clientID = env("OAUTH_CLIENT_ID")
	}

	// Either a classic OAuthClient (cluster part), or a ServiceAccount of the app as OAuth client, whose
	// allowed redirect is the host of the Route its annotation names.
	if oidc {
		// No OAuthClient and no ServiceAccount client.
	} else if sa, ok := strings.CutPrefix(clientID, "system:serviceaccount:litemaas:"); ok {
		o := Find(app, "ServiceAccount", sa)
		if o == nil {
			p.addf("backend OAUTH_CLIENT_ID %q: no such ServiceAccount", clientID)
		} else {
			found := false
			for k, v := range o.GetAnnotations() {
				if strings.HasPrefix(k, "serviceaccounts.openshift.io/oauth-redirectreference.") && strings.Contains(v, `"kind":"Route","name":"litemaas"`) {
					found = true
				}
			}
			if !found {
				p.addf("ServiceAccount/%s: no oauth-redirectreference annotation naming Route litemaas", sa)
			}
		}
	} else if oc := Find(cluster, "OAuthClient", clientID); oc == nil {
		p.addf("cluster part: no OAuthClient named %q (the backend's OAUTH_CLIENT_ID)", clientID)
	} else {
		uris := listAt(oc.Object, "redirectURIs")
		if len(uris) != 1 || uris[0] != callback {
			p.addf("OAuthClient/%s: redirectURIs %v, want exactly [%s] (the backend's OAUTH_CALLBACK_URL)", clientID, uris, callback)
		}
		if has(oc.Object, "secret") {
			p.addf("OAuthClient/%s: secret is set in git", clientID)
		}
	}

	for _, set := range [][]*unstructured.Unstructured{app, cluster} {
		for _, o := range set {
			walkStrings(o.Object, "", func(path, s string) {
				if strings.Contains(s, Placeholder) {
					p.addf("%s: %s = %q still holds the base's placeholder domain", ref(o), path, s)
				}
			})
		}
	}
	return p
}

// walkStrings calls fn for every string (keys excluded) in v, with a dotted path.
func walkStrings(v any, path string, fn func(path, s string)) {
	switch t := v.(type) {
	case string:
		fn(path, t)
	case map[string]any:
		for k, e := range t {
			walkStrings(e, path+"."+k, fn)
		}
	case []any:
		for i, e := range t {
			walkStrings(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// --- labels ---------------------------------------------------------------------------------------

var workloadKinds = []string{"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}

// checkLabels: the app.kubernetes.io labels on every object, the component on workloads, and pod
// templates labelled so that `oc wait --for=condition=Ready pod -l app.kubernetes.io/part-of=litemaas`
// finds every long-running pod and no pod that runs to completion (a finished Job pod is never Ready).
func checkLabels(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, o := range objs {
		l := o.GetLabels()
		for _, k := range []string{labelName, labelVersion} {
			if l[k] == "" {
				p.addf("%s: label %s missing", ref(o), k)
			}
		}
		if l[labelPartOf] != "litemaas" {
			p.addf("%s: label %s is %q, want litemaas", ref(o), labelPartOf, l[labelPartOf])
		}
		if slices.Contains(workloadKinds, o.GetKind()) && l[labelComponent] == "" {
			p.addf("%s: workload without label %s", ref(o), labelComponent)
		}
	}
	for _, pt := range podTemplates(objs) {
		if pt.labels[labelName] == nil || pt.labels[labelComponent] == nil {
			p.addf("%s: pod template without %s and %s labels", pt.owner, labelName, labelComponent)
		}
		switch pt.kind {
		case "Job", "CronJob", "Pod":
			if pt.labels[labelPartOf] != nil {
				p.addf("%s: pod template labelled %s; its finished pod would block `oc wait --for=condition=Ready -l %s=litemaas`", pt.owner, labelPartOf, labelPartOf)
			}
		default:
			if pt.labels[labelPartOf] != "litemaas" {
				p.addf("%s: pod template without %s=litemaas; `oc wait -l %s=litemaas` would miss its pods", pt.owner, labelPartOf, labelPartOf)
			}
		}
	}
	return p
}

// checkNamespace: the namespace exists and the default openshift-gitops instance may manage it.
func checkNamespace(objs []*unstructured.Unstructured) []string {
	var p problems
	ns := Find(objs, "Namespace", "litemaas")
	if ns == nil {
		return []string{"Namespace/litemaas is missing"}
	}
	if v := ns.GetLabels()["argocd.argoproj.io/managed-by"]; v != "openshift-gitops" {
		p.addf("Namespace/litemaas: label argocd.argoproj.io/managed-by is %q, want openshift-gitops", v)
	}
	for _, o := range objs {
		if ns := o.GetNamespace(); ns != "" && ns != "litemaas" {
			p.addf("%s: in namespace %q, want litemaas", ref(o), ns)
		}
	}
	return p
}

// --- the components' settings ---------------------------------------------------------------------

// checkComponentSettings: the settings litemaas.md says each component needs.
func checkComponentSettings(objs []*unstructured.Unstructured) []string {
	var p problems
	want := func(o *unstructured.Unstructured, containerName, env, value string) {
		if v, ok := envValue(o, containerName, env); !ok || v != value {
			p.addf("%s: env %s = %q, want %q", ref(o), env, v, value)
		}
	}
	wantSecret := func(o *unstructured.Unstructured, containerName, env, secret, key string) {
		if o == nil {
			return
		}
		e := envOf(containerNamed(mapAt(o.Object, "spec", "template", "spec"), containerName))[env]
		sk := mapAt(e, "valueFrom", "secretKeyRef")
		if stringAt(sk, "name") != secret || stringAt(sk, "key") != key {
			p.addf("%s: env %s does not come from %s/%s", ref(o), env, secret, key)
		}
	}

	backend := Find(objs, "Deployment", "backend")
	litellm := Find(objs, "Deployment", "litellm")
	postgres := Find(objs, "StatefulSet", "postgres")
	for _, w := range []struct {
		kind, name string
		o          *unstructured.Unstructured
	}{{"Deployment", "backend", backend}, {"Deployment", "litellm", litellm}, {"StatefulSet", "postgres", postgres}, {"Deployment", "frontend", Find(objs, "Deployment", "frontend")}} {
		if w.o == nil {
			p.addf("%s/%s is missing", w.kind, w.name)
		}
	}
	if backend != nil {
		if r, _, _ := unstructured.NestedInt64(backend.Object, "spec", "replicas"); r != 1 {
			p.addf("Deployment/backend: replicas %d, want 1 (OAuth state is in process memory)", r)
		}
		want(backend, "backend", "NODE_ENV", "production")
		// Behind the guard the backend has its own loopback port; checkBackendGuard holds that wiring.
		if !hasGuard(backend) {
			want(backend, "backend", "PORT", "8080")
		}
		// The OAuthClient of the cluster part, or a ServiceAccount as OAuth client (checkDomainWiring
		// checks that the client exists).
		// (With AUTH_PROVIDER=oidc the client id is the provider's, from backend-secret.)
		if provider, _ := envValue(backend, "backend", "AUTH_PROVIDER"); provider == "oidc" {
		} else if v, _ := envValue(backend, "backend", "OAUTH_CLIENT_ID"); v != "litemaas-oauth-client" && !strings.HasPrefix(v, "system:serviceaccount:litemaas:") {
			p.addf("Deployment/backend: OAUTH_CLIENT_ID %q is neither litemaas-oauth-client nor a ServiceAccount of litemaas", v)
		}
		for env, key := range map[string]string{
			"DATABASE_URL": "DATABASE_URL", "JWT_SECRET": "JWT_SECRET", "OAUTH_CLIENT_SECRET": "OAUTH_CLIENT_SECRET",
			"ADMIN_API_KEYS": "ADMIN_API_KEYS", "LITELLM_API_KEY": "LITELLM_API_KEY", "LITELLM_DATABASE_URL": "LITELLM_DATABASE_URL",
		} {
			wantSecret(backend, "backend", env, "backend-secret", key)
		}
		if _, ok := envValue(backend, "backend", "NODE_TLS_REJECT_UNAUTHORIZED"); ok {
			p.addf("Deployment/backend: NODE_TLS_REJECT_UNAUTHORIZED is set; use the custom-ca component instead")
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
		if v, _ := envValue(postgres, "postgres", "PGDATA"); !strings.HasPrefix(v, "/var/lib/postgresql/data/") {
			p.addf("StatefulSet/postgres: PGDATA %q is not a subdirectory of the volume mount", v)
		}
		if len(listAt(postgres.Object, "spec", "volumeClaimTemplates")) != 1 {
			p.addf("StatefulSet/postgres: want one volumeClaimTemplate")
		}
	}
	if f := Find(objs, "Deployment", "frontend"); f != nil {
		want(f, "frontend", "BACKEND_URL", "http://backend:8080")
	}
	return p
}

// --- the PostSync job ---------------------------------------------------------------------------

// modelsConfigMap returns the generated models ConfigMap (name with its content hash).
func modelsConfigMap(objs []*unstructured.Unstructured) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), modelsConfigMapPrefix) {
			return o
		}
	}
	return nil
}

// syncJobProfile is what differs between profiles in the litemaas-sync Job: what it waits for and
// which Secret holds its database URL.
type syncJobProfile struct {
	waitFor     string
	databaseURL [2]string // Secret, key
}

// singleInstanceSyncJob: PostgreSQL as the StatefulSet of gitops/base.
var singleInstanceSyncJob = syncJobProfile{
	waitFor:     "statefulset/postgres,deployment/litellm,deployment/backend,deployment/frontend",
	databaseURL: [2]string{"backend-secret", "DATABASE_URL"},
}

// checkSyncJob: the litemaas-sync Job as its program and Argo CD need it.
func checkSyncJob(objs []*unstructured.Unstructured) []string {
	return checkSyncJobWith(objs, singleInstanceSyncJob)
}

func checkSyncJobWith(objs []*unstructured.Unstructured, profile syncJobProfile) []string {
	var p problems
	job := Find(objs, "Job", syncJobName)
	if job == nil {
		return []string{"Job/litemaas-sync is missing"}
	}
	a := job.GetAnnotations()
	if a[hookAnnotation] != "PostSync" {
		p.addf("Job/litemaas-sync: %s = %q, want PostSync", hookAnnotation, a[hookAnnotation])
	}
	if a[hookDeleteAnnotation] != "BeforeHookCreation" {
		p.addf("Job/litemaas-sync: %s = %q, want BeforeHookCreation", hookDeleteAnnotation, a[hookDeleteAnnotation])
	}
	if has(job.Object, "spec", "ttlSecondsAfterFinished") {
		p.addf("Job/litemaas-sync: ttlSecondsAfterFinished can delete the Job before Argo CD reads its result")
	}
	// backoffLimit: one attempt, held by the "Job deadlines" check (deadlines.go).
	spec := mapAt(job.Object, "spec", "template", "spec")
	if stringAt(spec, "restartPolicy") != "Never" {
		p.addf("Job/litemaas-sync: restartPolicy %q, want Never (podFailurePolicy needs it)", stringAt(spec, "restartPolicy"))
	}
	if stringAt(spec, "serviceAccountName") != syncJobName {
		p.addf("Job/litemaas-sync: serviceAccountName %q, want %s", stringAt(spec, "serviceAccountName"), syncJobName)
	}
	c := containerNamed(spec, syncJobName)
	if c == nil {
		p.addf("Job/litemaas-sync: no container named %s", syncJobName)
		return p
	}
	if args := listAt(c, "args"); len(args) != 1 || args[0] != "reconcile" {
		p.addf("Job/litemaas-sync: args %v, want [reconcile]", args)
	}
	if stringAt(c, "terminationMessagePolicy") != "FallbackToLogsOnError" {
		p.addf("Job/litemaas-sync: terminationMessagePolicy is not FallbackToLogsOnError")
	}
	if !isTrue(c, "securityContext", "readOnlyRootFilesystem") {
		p.addf("Job/litemaas-sync: readOnlyRootFilesystem is not true")
	}

	// Environment: exactly the program's contract, plus the variables the catalog's models name in
	// apiKeyEnv (the README's way to give a model its API key), each from a Secret.
	env := envOf(c)
	keyEnvs := apiKeyEnvs(objs)
	var names []string
	for n := range env {
		if _, isKey := keyEnvs[n]; !isKey {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	want := slices.Clone(syncJobEnv)
	sort.Strings(want)
	if !slices.Equal(names, want) {
		p.addf("Job/litemaas-sync: env names %v, want exactly %v (and the catalog's apiKeyEnv variables)", names, want)
	}
	for _, name := range slices.Sorted(stdmaps.Keys(keyEnvs)) {
		e, ok := env[name]
		switch {
		case !ok:
			p.addf("Job/litemaas-sync: no env %s, which model %s names in apiKeyEnv: add it from its Secret (env[].valueFrom.secretKeyRef) in a patch of the Job", name, keyEnvs[name])
		case mapAt(e, "valueFrom", "secretKeyRef") == nil:
			p.addf("Job/litemaas-sync: env %s (apiKeyEnv of model %s) must come from a Secret (valueFrom.secretKeyRef), never a value in git", name, keyEnvs[name])
		}
	}
	literal := map[string]string{
		"LITELLM_URL": "http://litellm:4000", "WAIT_TIMEOUT": "10m",
		"WAIT_FOR":   profile.waitFor,
		"LOG_FORMAT": "json", "DRY_RUN": "false", "PRUNE": "false", "GOMEMLIMIT": "48MiB",
	}
	for name, v := range literal {
		if got := stringAt(env[name], "value"); got != v {
			p.addf("Job/litemaas-sync: env %s = %q, want %q", name, got, v)
		}
	}
	for name, src := range map[string][2]string{
		"DATABASE_URL":            profile.databaseURL,
		"LITELLM_MASTER_KEY":      {"litellm-secret", "LITELLM_MASTER_KEY"},
		"BACKEND_LITELLM_API_KEY": {"backend-secret", "LITELLM_API_KEY"},
		"BACKEND_ADMIN_API_KEYS":  {"backend-secret", "ADMIN_API_KEYS"},
	} {
		sk := mapAt(env[name], "valueFrom", "secretKeyRef")
		if stringAt(sk, "name") != src[0] || stringAt(sk, "key") != src[1] {
			p.addf("Job/litemaas-sync: env %s does not come from %s/%s", name, src[0], src[1])
		}
	}
	if stringAt(env["NAMESPACE"], "valueFrom", "fieldRef", "fieldPath") != "metadata.namespace" {
		p.addf("Job/litemaas-sync: env NAMESPACE does not come from fieldRef metadata.namespace")
	}
	// The Job the outcome's Event is recorded on: the labels the Job controller puts on its pods.
	for name, label := range map[string]string{"JOB_NAME": "batch.kubernetes.io/job-name", "JOB_UID": "batch.kubernetes.io/controller-uid"} {
		if got := stringAt(env[name], "valueFrom", "fieldRef", "fieldPath"); got != "metadata.labels['"+label+"']" {
			p.addf("Job/litemaas-sync: env %s comes from %q, want fieldRef metadata.labels['%s']", name, got, label)
		}
	}

	// The deadline is above the program's own timeout.
	deadline, _, _ := unstructured.NestedInt64(job.Object, "spec", "activeDeadlineSeconds")
	if wait, err := time.ParseDuration(stringAt(env["WAIT_TIMEOUT"], "value")); err != nil {
		p.addf("Job/litemaas-sync: WAIT_TIMEOUT: %v", err)
	} else if time.Duration(deadline)*time.Second <= wait {
		p.addf("Job/litemaas-sync: activeDeadlineSeconds %d is not above WAIT_TIMEOUT %s", deadline, wait)
	}

	p = append(p, checkPodFailurePolicy(job)...)
	p = append(p, checkJobMountsCatalog(objs, job)...)
	return p
}

// checkPodFailurePolicy: exit code 2 (invalid catalog or configuration) fails the Job at once instead
// of being retried.
func checkPodFailurePolicy(job *unstructured.Unstructured) []string {
	for _, r := range maps(listAt(job.Object, "spec", "podFailurePolicy", "rules")) {
		oc := mapAt(r, "onExitCodes")
		if stringAt(r, "action") == "FailJob" && stringAt(oc, "containerName") == syncJobName &&
			stringAt(oc, "operator") == "In" && slices.ContainsFunc(listAt(oc, "values"), func(v any) bool { return fmt.Sprint(v) == "2" }) {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s: no podFailurePolicy rule FailJob on exit code 2 of container %s", ref(job), syncJobName)}
}

// checkJobMountsCatalog: the Job mounts the generated models ConfigMap read-only where MODELS_FILE
// points, so a catalog edit changes the Job.
func checkJobMountsCatalog(objs []*unstructured.Unstructured, job *unstructured.Unstructured) []string {
	var p problems
	cm := modelsConfigMap(objs)
	if cm == nil {
		return []string{"no generated ConfigMap " + modelsConfigMapPrefix + "<hash>"}
	}
	spec := mapAt(job.Object, "spec", "template", "spec")
	c := containerNamed(spec, syncJobName)
	modelsFile := stringAt(envOf(c)[("MODELS_FILE")], "value")
	var volume string
	for _, v := range maps(listAt(spec, "volumes")) {
		if stringAt(v, "configMap", "name") == cm.GetName() {
			volume = stringAt(v, "name")
		}
	}
	if volume == "" {
		p.addf("%s: mounts no volume from ConfigMap %s", ref(job), cm.GetName())
		return p
	}
	found := false
	for _, m := range maps(listAt(c, "volumeMounts")) {
		if stringAt(m, "name") != volume {
			continue
		}
		found = true
		if !isTrue(m, "readOnly") {
			p.addf("%s: catalog volume not mounted readOnly", ref(job))
		}
		if want := strings.TrimSuffix(stringAt(m, "mountPath"), "/") + "/" + modelsConfigMapDataKey; modelsFile != want {
			p.addf("%s: MODELS_FILE = %q, want %q (the mounted catalog)", ref(job), modelsFile, want)
		}
	}
	if !found {
		p.addf("%s: container %s does not mount volume %s", ref(job), syncJobName, volume)
	}
	return p
}

// checkSyncRBAC: the job's ServiceAccount may read deployments and statefulsets and its own catalog,
// and update its status ConfigMap; nothing else, nothing cluster-wide; and kustomize rewrote the
// catalog ConfigMap's name to the generated one.
func checkSyncRBAC(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
		o := Find(objs, kind, syncJobName)
		if o == nil {
			p.addf("%s/%s is missing", kind, syncJobName)
			continue
		}
		if o.GetAnnotations()[hookAnnotation] != "" {
			p.addf("%s/%s: is a hook; a PostSync hook's RBAC must be an ordinary Sync resource", kind, syncJobName)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
			p.addf("%s: the app needs nothing cluster-wide", ref(o))
		}
	}
	// The job publishes its outcome into this ConfigMap; it is shipped so that the job needs no `create`.
	if status := Find(objs, "ConfigMap", syncStatusConfigMap); status == nil {
		p.addf("ConfigMap/%s is missing (the job may update it, not create it)", syncStatusConfigMap)
	} else if has(status.Object, "data") {
		p.addf("ConfigMap/%s: ships data; Argo CD would overwrite what the job writes", syncStatusConfigMap)
	}
	role := Find(objs, "Role", syncJobName)
	cm := modelsConfigMap(objs)
	if role != nil {
		var sawApps, sawCM, sawStatus bool
		for _, r := range maps(listAt(role.Object, "rules")) {
			groups, resources, verbs, names := strs(listAt(r, "apiGroups")), strs(listAt(r, "resources")), strs(listAt(r, "verbs")), strs(listAt(r, "resourceNames"))
			switch {
			case slices.Equal(groups, []string{"apps"}):
				sawApps = true
				if !sameSet(resources, []string{"deployments", "statefulsets"}) || !sameSet(verbs, []string{"get", "list", "watch"}) || len(names) != 0 {
					p.addf("Role/%s: apps rule %v %v %v, want get/list/watch on deployments and statefulsets", syncJobName, resources, verbs, names)
				}
			case slices.Equal(groups, []string{""}) && slices.Equal(resources, []string{"configmaps"}) && slices.Equal(names, []string{syncStatusConfigMap}):
				sawStatus = true
				if !sameSet(verbs, []string{"get", "update"}) {
					p.addf("Role/%s: verbs %v on ConfigMap %s, want get and update", syncJobName, verbs, syncStatusConfigMap)
				}
			case slices.Equal(groups, []string{""}) && slices.Equal(resources, []string{"configmaps"}):
				sawCM = true
				if !slices.Equal(verbs, []string{"get"}) {
					p.addf("Role/%s: configmaps verbs %v, want [get]", syncJobName, verbs)
				}
				if cm == nil || !slices.Equal(names, []string{cm.GetName()}) {
					p.addf("Role/%s: configmaps resourceNames %v, want the generated models ConfigMap", syncJobName, names)
				}
			case slices.Equal(groups, []string{"postgresql.cnpg.io"}):
				// The ha profile: the job waits for its CloudNativePG Cluster, by name.
				if !slices.Equal(resources, []string{"clusters"}) || !sameSet(verbs, []string{"get", "list", "watch"}) || len(names) != 1 {
					p.addf("Role/%s: cnpg rule %v %v %v, want get/list/watch on one named Cluster", syncJobName, resources, verbs, names)
				}
			case slices.Equal(groups, []string{"route.openshift.io"}):
				// Read to check the backend's URLs against the routes' hosts.
				if !slices.Equal(resources, []string{"routes"}) || !slices.Equal(verbs, []string{"get"}) || !sameSet(names, []string{"litellm", "litemaas"}) {
					p.addf("Role/%s: routes rule %v %v %v, want get on routes litellm and litemaas", syncJobName, resources, verbs, names)
				}
			case slices.Equal(groups, []string{"events.k8s.io"}):
				// The outcome as an Event on the job's Job, which the Argo CD console shows.
				if !slices.Equal(resources, []string{"events"}) || !slices.Equal(verbs, []string{"create"}) {
					p.addf("Role/%s: events rule %v %v, want create on events", syncJobName, resources, verbs)
				}
			default:
				p.addf("Role/%s: unexpected rule %v", syncJobName, r)
			}
		}
		if !sawApps || !sawCM || !sawStatus {
			p.addf("Role/%s: missing a rule (apps: %v, models ConfigMap: %v, status ConfigMap: %v)", syncJobName, sawApps, sawCM, sawStatus)
		}
	}
	if rb := Find(objs, "RoleBinding", syncJobName); rb != nil {
		if stringAt(rb.Object, "roleRef", "kind") != "Role" || stringAt(rb.Object, "roleRef", "name") != syncJobName {
			p.addf("RoleBinding/%s: roleRef is not Role/%s", syncJobName, syncJobName)
		}
		subjects := maps(listAt(rb.Object, "subjects"))
		if len(subjects) != 1 || stringAt(subjects[0], "kind") != "ServiceAccount" || stringAt(subjects[0], "name") != syncJobName {
			p.addf("RoleBinding/%s: subjects %v, want the ServiceAccount %s only", syncJobName, subjects, syncJobName)
		}
	}
	return p
}

func strs(l []any) []string {
	out := make([]string, 0, len(l))
	for _, v := range l {
		out = append(out, fmt.Sprint(v))
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return slices.Equal(a, b)
}

// --- the models catalog ---------------------------------------------------------------------------

// catalogOf returns the models catalog (data key models.yaml of the generated models ConfigMap) as the
// Job will read it, or nil. The real catalog validator is meant to be applied to these bytes.
func catalogOf(objs []*unstructured.Unstructured) []byte {
	cm := modelsConfigMap(objs)
	if cm == nil {
		return nil
	}
	s, ok, _ := unstructured.NestedString(cm.Object, "data", modelsConfigMapDataKey)
	if !ok {
		return nil
	}
	return []byte(s)
}

// checkCatalog: every generated models ConfigMap holds a catalog that litemaas-sync accepts, by the
// validator's own rules (catalog.Parse), nothing more: any number of models, optional fields optional.
func checkCatalog(objs []*unstructured.Unstructured) []string { return checkCatalogFile(objs, "", "") }

// checkCatalogFile is checkCatalog naming file (relative to root) in its messages when the ConfigMap
// holds exactly that file's content, so that a line number points into the file the user edits.
func checkCatalogFile(objs []*unstructured.Unstructured, root, file string) []string {
	var p problems
	var source []byte
	if file != "" {
		source, _ = os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	}
	found := false
	for _, cm := range objs {
		if cm.GetKind() != "ConfigMap" || !strings.HasPrefix(cm.GetName(), modelsConfigMapPrefix) {
			continue
		}
		found = true
		data, ok, _ := unstructured.NestedString(cm.Object, "data", modelsConfigMapDataKey)
		if !ok {
			p.addf("%s: no key %s", ref(cm), modelsConfigMapDataKey)
			continue
		}
		name := ref(cm) + " key " + modelsConfigMapDataKey
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
			p.addf("%s: %v", name, err)
		}
	}
	if !found {
		return []string{"no models catalog (ConfigMap " + modelsConfigMapPrefix + "<hash>, key " + modelsConfigMapDataKey + ")"}
	}
	return p
}

// --- Argo CD Applications -----------------------------------------------------------------------

// checkApplication: an Application in openshift-gitops, in project litemaas at a branch or tag, that
// syncs automatically, retries, and points at a path that exists (exists reports whether a repository path is a directory).
func checkApplication(app *unstructured.Unstructured, exists func(string) bool) []string {
	var p problems
	if app.GetNamespace() != "openshift-gitops" {
		p.addf("%s: namespace %q, want openshift-gitops", ref(app), app.GetNamespace())
	}
	p = append(p, checkApplicationSource(app)...)
	if stringAt(app.Object, "spec", "source", "repoURL") == "" {
		p.addf("%s: no source.repoURL", ref(app))
	}
	if path := stringAt(app.Object, "spec", "source", "path"); !exists(path) {
		p.addf("%s: source.path %q is not a directory of this repository", ref(app), path)
	}
	if !isTrue(app.Object, "spec", "syncPolicy", "automated", "prune") || !isTrue(app.Object, "spec", "syncPolicy", "automated", "selfHeal") {
		p.addf("%s: syncPolicy.automated needs prune and selfHeal", ref(app))
	}
	if l, _, _ := unstructured.NestedInt64(app.Object, "spec", "syncPolicy", "retry", "limit"); l <= 0 {
		p.addf("%s: no syncPolicy.retry.limit: a failed automated sync would never be retried", ref(app))
	}
	for _, f := range []string{"duration", "maxDuration"} {
		if d, err := time.ParseDuration(stringAt(app.Object, "spec", "syncPolicy", "retry", "backoff", f)); err != nil || d <= 0 {
			p.addf("%s: syncPolicy.retry.backoff.%s is not a duration", ref(app), f)
		}
	}
	if len(app.GetFinalizers()) != 0 {
		p.addf("%s: finalizers %v would delete the workloads (and the database) with the Application", ref(app), app.GetFinalizers())
	}
	return p
}

// --- CRDs for the later server-side dry run ---------------------------------------------------------

// copiedCRDs are the CRDs of gitops/test/crds copied unchanged from their projects
// (hack/argocd/update-crds.sh, gitops/test/crds/README.md).
var copiedCRDs = map[string]bool{"applications.argoproj.io": true, "appprojects.argoproj.io": true, "routes.route.openshift.io": true}

// checkCRD: apiextensions.k8s.io/v1, a schema for every version, x-kubernetes-preserve-unknown-fields
// nowhere but at status (so that strict validation rejects unknown spec fields).
func checkCRD(crd *unstructured.Unstructured) []string {
	var p problems
	if crd.GetAPIVersion() != "apiextensions.k8s.io/v1" || crd.GetKind() != "CustomResourceDefinition" {
		return []string{fmt.Sprintf("%s: not an apiextensions.k8s.io/v1 CustomResourceDefinition", ref(crd))}
	}
	for _, v := range maps(listAt(crd.Object, "spec", "versions")) {
		schema := mapAt(v, "schema", "openAPIV3Schema")
		if schema == nil {
			p.addf("%s version %s: no openAPIV3Schema", ref(crd), stringAt(v, "name"))
			continue
		}
		walkSchema(schema, "", func(path string, s map[string]any) {
			if isTrue(s, "x-kubernetes-preserve-unknown-fields") && path != ".status" {
				p.addf("%s version %s: x-kubernetes-preserve-unknown-fields at %q (only status may be open)", ref(crd), stringAt(v, "name"), path)
			}
		})
	}
	return p
}

// walkSchema calls fn for every schema node, with its path of property names.
func walkSchema(s map[string]any, path string, fn func(path string, s map[string]any)) {
	fn(path, s)
	for name, sub := range mapAt(s, "properties") {
		if m, ok := sub.(map[string]any); ok {
			walkSchema(m, path+"."+name, fn)
		}
	}
	if items := mapAt(s, "items"); items != nil {
		walkSchema(items, path+"[]", fn)
	}
	if ap := mapAt(s, "additionalProperties"); ap != nil {
		walkSchema(ap, path+"{}", fn)
	}
}

// builtinGroups are API groups a plain kube-apiserver serves; any other group needs a CRD for the
// server-side dry run.
var builtinGroups = []string{
	"", "apps", "batch", "autoscaling", "policy", "rbac.authorization.k8s.io", "networking.k8s.io",
	"apiextensions.k8s.io", "admissionregistration.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
	"scheduling.k8s.io", "storage.k8s.io", "node.k8s.io", "certificates.k8s.io", "flowcontrol.apiserver.k8s.io",
}

// checkCRDCoverage: every object of a non-built-in group has a CRD among crds.
func checkCRDCoverage(objs, crds []*unstructured.Unstructured) []string {
	var p problems
	have := map[string]bool{}
	for _, c := range crds {
		group := stringAt(c.Object, "spec", "group")
		kind := stringAt(c.Object, "spec", "names", "kind")
		for _, v := range maps(listAt(c.Object, "spec", "versions")) {
			have[group+"/"+stringAt(v, "name")+"/"+kind] = true
		}
	}
	// The operators' own CRDs (upstream-crds.yaml), which the dry run installs from their modules.
	kinds, err := UpstreamKinds()
	if err != nil {
		return []string{err.Error()}
	}
	for _, k := range kinds {
		have[k] = true
	}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if slices.Contains(builtinGroups, gvk.Group) {
			continue
		}
		if !have[gvk.Group+"/"+gvk.Version+"/"+gvk.Kind] {
			p.addf("%s: no CRD for %s in gitops/test/crds", ref(o), gvk)
		}
	}
	return p
}

// CatalogModels returns the number of models in the rendered catalog, when it is valid.
func CatalogModels(objs []*unstructured.Unstructured) (int, bool) {
	data := catalogOf(objs)
	if data == nil {
		return 0, false
	}
	c, err := catalog.Parse("models.yaml", data)
	if err != nil {
		return 0, false
	}
	return len(c.Models), true
}

// apiKeyEnvs maps the apiKeyEnv variables of the rendered catalog's models to the model naming each
// (empty when the catalog is missing or invalid: checkCatalog reports that).
func apiKeyEnvs(objs []*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	data := catalogOf(objs)
	if data == nil {
		return out
	}
	c, err := catalog.Parse("models.yaml", data)
	if err != nil {
		return out
	}
	for _, m := range c.Models {
		if m.APIKeyEnv != "" && out[m.APIKeyEnv] == "" {
			out[m.APIKeyEnv] = m.ID
		}
	}
	return out
}
