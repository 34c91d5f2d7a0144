package traffic

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/advisory"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/netpol"
)

// The backend guard (gitops/components/backend-guard): an nginx sidecar that is the only way into a
// backend affected by litemaas#137. These checks hold an overlay to it: a backend that is affected has
// the guard, and the guard is wired so that nothing passes around it.

const (
	GuardContainer = "backend-guard"
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

// HasGuard says whether a backend Deployment runs the guard next to the backend.
func HasGuard(backend *unstructured.Unstructured) bool {
	return backend != nil && objects.ContainerNamed(objects.MapAt(backend.Object, "spec", "template", "spec"), GuardContainer) != nil
}

// backendImage is the image of the backend container, or "".
func backendImage(backend *unstructured.Unstructured) string {
	c := objects.ContainerNamed(objects.MapAt(backend.Object, "spec", "template", "spec"), "backend")
	if c == nil {
		return ""
	}
	return objects.StringAt(c, "image")
}

// GuardConfig returns the guard's nginx.conf as the overlay renders it (from the ConfigMap the guard
// container mounts), or an error naming what is missing.
func GuardConfig(objs []*unstructured.Unstructured) (string, error) {
	backend := objects.Find(objs, "Deployment", "backend")
	if !HasGuard(backend) {
		return "", fmt.Errorf("Deployment/backend has no container %s", GuardContainer)
	}
	spec := objects.MapAt(backend.Object, "spec", "template", "spec")
	g := objects.ContainerNamed(spec, GuardContainer)
	volumes := map[string]string{}
	for _, v := range objects.Maps(objects.ListAt(spec, "volumes")) {
		if cm := objects.StringAt(v, "configMap", "name"); cm != "" {
			volumes[objects.StringAt(v, "name")] = cm
		}
	}
	for _, m := range objects.Maps(objects.ListAt(g, "volumeMounts")) {
		cm, ok := volumes[objects.StringAt(m, "name")]
		if !ok {
			continue
		}
		o := objects.Find(objs, "ConfigMap", cm)
		if o == nil {
			return "", fmt.Errorf("container %s mounts ConfigMap %s, which is not rendered", GuardContainer, cm)
		}
		if conf := objects.StringAt(o.Object, "data", guardConfKey); conf != "" {
			return conf, nil
		}
	}
	return "", fmt.Errorf("container %s mounts no ConfigMap with %s", GuardContainer, guardConfKey)
}

// CheckBackendGuard: a backend affected by litemaas#137 runs behind the guard, and the guard is the only
// way in: the backend listens on loopback at the address nginx.conf forwards to, declares no port, the
// Service's target port is the guard's, and the configuration replaces User-Agent and drops Origin and
// Referer.
func CheckBackendGuard(objs []*unstructured.Unstructured) []string {
	backend := objects.Find(objs, "Deployment", "backend")
	if backend == nil {
		return nil
	}
	if !HasGuard(backend) {
		return checkUnguardedBackend(backend)
	}
	spec := objects.MapAt(backend.Object, "spec", "template", "spec")
	b := objects.ContainerNamed(spec, "backend")
	if b == nil {
		return []string{"Deployment/backend: no container backend"}
	}
	var p objects.Problems
	env := objects.EnvOf(b)
	host, port := objects.StringAt(env["HOST"], "value"), objects.StringAt(env["PORT"], "value")
	if host != "127.0.0.1" {
		p.Addf("Deployment/backend: HOST is %q behind the guard, want 127.0.0.1 (else the pod's own address reaches the backend around the guard)", host)
	}
	if len(objects.ListAt(b, "ports")) > 0 {
		p.Addf("Deployment/backend: container backend declares ports behind the guard; only %s's port may be named", GuardContainer)
	}
	guardPort := checkGuardPort(objs, objects.ContainerNamed(spec, GuardContainer), &p)
	conf, err := GuardConfig(objs)
	if err != nil {
		p.Addf("Deployment/backend: %v", err)
		return p
	}
	return append(p, checkGuardConfig(conf, host, port, guardPort)...)
}

// checkUnguardedBackend: without the guard, the backend's pin must not be affected by the advisory the
// guard mitigates.
func checkUnguardedBackend(backend *unstructured.Unstructured) []string {
	f, err := advisory.Load()
	if err != nil {
		return []string{err.Error()}
	}
	a, ok := f.Find(guardAdvisory)
	if !ok {
		return []string{"images/advisories.yaml has no " + guardAdvisory}
	}
	var p objects.Problems
	image := backendImage(backend)
	_, tag := advisory.SplitImage(image)
	if a.Applies(tag) == advisory.Affected {
		p.Addf("Deployment/backend pins %s, affected by %s (%s): without the backend guard, a request without a valid token "+
			"and with a browser User-Agent, or an Origin of localhost:3000, is served as a LiteMaaS ADMIN. "+
			"Add `- ../../components/backend-guard` to the overlay's components:, or pin a backend with the fix (images/advisories.yaml)",
			image, guardAdvisory, a.URL)
	}
	return p
}

// checkGuardPort: the guard container names its port http, and Service backend targets it; it returns
// that port (0 when there is none).
func checkGuardPort(objs []*unstructured.Unstructured, guard map[string]any, p *objects.Problems) int64 {
	guardPort := int64(0)
	for _, cp := range objects.Maps(objects.ListAt(guard, "ports")) {
		if objects.StringAt(cp, "name") == "http" {
			guardPort, _ = cp["containerPort"].(int64)
		}
	}
	if guardPort == 0 {
		p.Addf("Deployment/backend: container %s has no port named http (the Service's targetPort)", GuardContainer)
	}
	svc := objects.Find(objs, "Service", "backend")
	if svc == nil {
		return guardPort
	}
	for _, sp := range objects.Maps(objects.ListAt(svc.Object, "spec", "ports")) {
		switch tp := sp["targetPort"].(type) {
		case string:
			if tp != "http" {
				p.Addf("Service/backend: targetPort %q, want http (the guard's port)", tp)
			}
		case int64:
			if tp != guardPort {
				p.Addf("Service/backend: targetPort %d, want the guard's port %d", tp, guardPort)
			}
		}
	}
	return guardPort
}

// checkGuardConfig: the guard's nginx.conf proxies to the backend's HOST:PORT, listens on the guard's
// port and overwrites the headers the bypass reads, with a User-Agent no browser check matches.
func checkGuardConfig(conf, host, port string, guardPort int64) []string {
	var p objects.Problems
	if m := guardUpstreamRE.FindStringSubmatch(conf); m == nil || m[1] != host || m[2] != port {
		p.Addf("ConfigMap backend-guard: nginx.conf's upstream server is not the backend's HOST:PORT %s:%s", host, port)
	}
	if m := guardListenRE.FindStringSubmatch(conf); m == nil || fmt.Sprint(guardPort) != m[1] {
		p.Addf("ConfigMap backend-guard: nginx.conf does not listen on the guard's port %d", guardPort)
	}
	for _, h := range objects.SortedKeys(guardHeaderREs) {
		m := guardHeaderREs[h].FindStringSubmatch(conf)
		if m == nil {
			p.Addf("ConfigMap backend-guard: nginx.conf does not set %s (proxy_set_header %s); the bypass stays open", h, h)
			continue
		}
		if h == "User-Agent" {
			for _, w := range browserWords {
				if strings.Contains(m[1], w) {
					p.Addf("ConfigMap backend-guard: the guard's User-Agent %q contains %q, which the bypass takes for a browser", m[1], w)
				}
			}
		}
	}
	return p
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
	for _, pt := range objects.PodTemplates(objs) {
		for _, c := range objects.ContainersOf(pt.Spec) {
			containers[c.Name] = true
		}
	}
	var out []AdvisoryNote
	for _, ref := range objects.ImagesOf(objs) {
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
	for _, pt := range objects.PodTemplates(objs) {
		if pt.Owner != "Deployment/backend" {
			continue
		}
		if objects.ContainerNamed(pt.Spec, GuardContainer) == nil {
			continue
		}
		b := objects.ContainerNamed(pt.Spec, "backend")
		if b == nil {
			continue
		}
		var port int32
		if _, err := fmt.Sscan(objects.StringAt(objects.EnvOf(b)["PORT"], "value"), &port); err != nil || port == 0 {
			continue
		}
		out = append(out, endpoint{name: fmt.Sprintf("backend-own:%d", port), role: "backend-own", port: port,
			pod: netpol.Pod{Namespace: appNamespace, NamespaceLabels: map[string]string{"kubernetes.io/metadata.name": appNamespace},
				Labels: stringLabels(pt.Labels), Ports: containerPorts(pt.Spec)}})
	}
	return out
}
