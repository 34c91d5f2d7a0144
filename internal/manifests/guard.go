package manifests

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/advisory"
	"github.com/litemaas-gitops/litemaas-gitops/internal/netpol"
)

// The backend guard (gitops/components/backend-guard): an nginx sidecar that is the only way into a
// backend affected by litemaas#137. These checks hold an overlay to it: a backend that is affected has
// the guard, and the guard is wired so that nothing passes around it.

const (
	guardContainer = "backend-guard"
	// guardAdvisory is the advisory the guard mitigates.
	guardAdvisory = "litemaas#137"
	guardConfKey  = "nginx.conf"
)

var (
	guardUpstreamRE = regexp.MustCompile(`(?m)^\s*server\s+([0-9.]+):(\d+)\s*;`)
	guardListenRE   = regexp.MustCompile(`(?m)^\s*listen\s+(\d+)\s*;`)
	// What makes the bypass impossible: the guard's own User-Agent, and no Origin or Referer.
	guardHeaderREs = map[string]*regexp.Regexp{
		"User-Agent": regexp.MustCompile(`(?m)^\s*proxy_set_header\s+User-Agent\s+"([^"]+)"\s*;`),
		"Origin":     regexp.MustCompile(`(?m)^\s*proxy_set_header\s+Origin\s+""\s*;`),
		"Referer":    regexp.MustCompile(`(?m)^\s*proxy_set_header\s+Referer\s+""\s*;`),
	}
	browserWords = []string{"Mozilla", "Chrome", "Safari", "Firefox"}
)

// hasGuard says whether a backend Deployment runs the guard next to the backend.
func hasGuard(backend *unstructured.Unstructured) bool {
	return backend != nil && containerNamed(mapAt(backend.Object, "spec", "template", "spec"), guardContainer) != nil
}

// backendImage is the image of the backend container, or "".
func backendImage(backend *unstructured.Unstructured) string {
	c := containerNamed(mapAt(backend.Object, "spec", "template", "spec"), "backend")
	if c == nil {
		return ""
	}
	return stringAt(c, "image")
}

// GuardConfig returns the guard's nginx.conf as the overlay renders it (from the ConfigMap the guard
// container mounts), or an error naming what is missing.
func GuardConfig(objs []*unstructured.Unstructured) (string, error) {
	backend := Find(objs, "Deployment", "backend")
	if !hasGuard(backend) {
		return "", fmt.Errorf("Deployment/backend has no container %s", guardContainer)
	}
	spec := mapAt(backend.Object, "spec", "template", "spec")
	g := containerNamed(spec, guardContainer)
	volumes := map[string]string{}
	for _, v := range maps(listAt(spec, "volumes")) {
		if cm := stringAt(v, "configMap", "name"); cm != "" {
			volumes[stringAt(v, "name")] = cm
		}
	}
	for _, m := range maps(listAt(g, "volumeMounts")) {
		cm, ok := volumes[stringAt(m, "name")]
		if !ok {
			continue
		}
		o := Find(objs, "ConfigMap", cm)
		if o == nil {
			return "", fmt.Errorf("container %s mounts ConfigMap %s, which is not rendered", guardContainer, cm)
		}
		if conf := stringAt(o.Object, "data", guardConfKey); conf != "" {
			return conf, nil
		}
	}
	return "", fmt.Errorf("container %s mounts no ConfigMap with %s", guardContainer, guardConfKey)
}

// checkBackendGuard: a backend affected by litemaas#137 runs behind the guard, and the guard is the only
// way in: the backend listens on loopback at the address nginx.conf forwards to, declares no port, the
// Service's target port is the guard's, and the configuration replaces User-Agent and drops Origin and
// Referer.
func checkBackendGuard(objs []*unstructured.Unstructured) []string {
	backend := Find(objs, "Deployment", "backend")
	if backend == nil {
		return nil
	}
	var p problems
	if !hasGuard(backend) {
		f, err := advisory.Load()
		if err != nil {
			return []string{err.Error()}
		}
		a, ok := f.Find(guardAdvisory)
		if !ok {
			return []string{"images/advisories.yaml has no " + guardAdvisory}
		}
		image := backendImage(backend)
		_, tag := advisory.SplitImage(image)
		if a.Applies(tag) == advisory.Affected {
			p.addf("Deployment/backend pins %s, affected by %s (%s): without the backend guard, a request without a valid token "+
				"and with a browser User-Agent, or an Origin of localhost:3000, is served as a LiteMaaS ADMIN. "+
				"Add `- ../../components/backend-guard` to the overlay's components:, or pin a backend with the fix (images/advisories.yaml)",
				image, guardAdvisory, a.URL)
		}
		return p
	}
	spec := mapAt(backend.Object, "spec", "template", "spec")
	b := containerNamed(spec, "backend")
	g := containerNamed(spec, guardContainer)
	if b == nil {
		return []string{"Deployment/backend: no container backend"}
	}
	env := envOf(b)
	host, port := stringAt(env["HOST"], "value"), stringAt(env["PORT"], "value")
	if host != "127.0.0.1" {
		p.addf("Deployment/backend: HOST is %q behind the guard, want 127.0.0.1 (else the pod's own address reaches the backend around the guard)", host)
	}
	if len(listAt(b, "ports")) > 0 {
		p.addf("Deployment/backend: container backend declares ports behind the guard; only %s's port may be named", guardContainer)
	}
	guardPort := int64(0)
	for _, cp := range maps(listAt(g, "ports")) {
		if stringAt(cp, "name") == "http" {
			guardPort, _ = cp["containerPort"].(int64)
		}
	}
	if guardPort == 0 {
		p.addf("Deployment/backend: container %s has no port named http (the Service's targetPort)", guardContainer)
	}
	if svc := Find(objs, "Service", "backend"); svc != nil {
		for _, sp := range maps(listAt(svc.Object, "spec", "ports")) {
			switch tp := sp["targetPort"].(type) {
			case string:
				if tp != "http" {
					p.addf("Service/backend: targetPort %q, want http (the guard's port)", tp)
				}
			case int64:
				if tp != guardPort {
					p.addf("Service/backend: targetPort %d, want the guard's port %d", tp, guardPort)
				}
			}
		}
	}
	conf, err := GuardConfig(objs)
	if err != nil {
		p.addf("Deployment/backend: %v", err)
		return p
	}
	if m := guardUpstreamRE.FindStringSubmatch(conf); m == nil || m[1] != host || m[2] != port {
		p.addf("ConfigMap backend-guard: nginx.conf's upstream server is not the backend's HOST:PORT %s:%s", host, port)
	}
	if m := guardListenRE.FindStringSubmatch(conf); m == nil || fmt.Sprint(guardPort) != m[1] {
		p.addf("ConfigMap backend-guard: nginx.conf does not listen on the guard's port %d", guardPort)
	}
	for _, h := range sortedKeys(guardHeaderREs) {
		m := guardHeaderREs[h].FindStringSubmatch(conf)
		if m == nil {
			p.addf("ConfigMap backend-guard: nginx.conf does not set %s (proxy_set_header %s); the bypass stays open", h, h)
			continue
		}
		if h == "User-Agent" {
			for _, w := range browserWords {
				if strings.Contains(m[1], w) {
					p.addf("ConfigMap backend-guard: the guard's User-Agent %q contains %q, which the bypass takes for a browser", m[1], w)
				}
			}
		}
	}
	return p
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// AdvisoryNote is one open advisory of an overlay's pins, for `litemaas-ops check`'s information lines.
type AdvisoryNote struct {
	advisory.Match
	// Mitigated: the container named by the advisory's mitigatedBy runs in the overlay.
	Mitigated bool
}

// OpenAdvisories returns the advisories of images/advisories.yaml that apply to the images the overlay
// renders (affected, or a tag that tells no version), one per advisory and image reference.
func OpenAdvisories(objs []*unstructured.Unstructured) ([]AdvisoryNote, error) {
	f, err := advisory.Load()
	if err != nil {
		return nil, err
	}
	containers := map[string]bool{}
	for _, pt := range podTemplates(objs) {
		for _, c := range containersOf(pt.spec) {
			containers[c.name] = true
		}
	}
	var out []AdvisoryNote
	for _, ref := range imagesOf(objs) {
		for _, m := range f.For(ref) {
			out = append(out, AdvisoryNote{Match: m, Mitigated: m.MitigatedBy != "" && containers[m.MitigatedBy]})
		}
	}
	return out, nil
}

// guardedBackendEndpoints adds to the NetworkPolicy truth table the backend's own port behind the guard
// (no Service names it): nothing may reach it, not even the frontend or the router, since the guard is
// the only way in. Role "backend-own" is in no allowedRoles entry.
func guardedBackendEndpoints(objs []*unstructured.Unstructured) []endpoint {
	var out []endpoint
	for _, pt := range podTemplates(objs) {
		if pt.owner != "Deployment/backend" {
			continue
		}
		if containerNamed(pt.spec, guardContainer) == nil {
			continue
		}
		b := containerNamed(pt.spec, "backend")
		if b == nil {
			continue
		}
		var port int32
		if _, err := fmt.Sscan(stringAt(envOf(b)["PORT"], "value"), &port); err != nil || port == 0 {
			continue
		}
		out = append(out, endpoint{name: fmt.Sprintf("backend-own:%d", port), role: "backend-own", port: port,
			pod: netpol.Pod{Namespace: appNamespace, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": appNamespace},
				Labels: stringLabels(pt.labels), Ports: containerPorts(pt.spec)}})
	}
	return out
}
