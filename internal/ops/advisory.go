package ops

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// The upstream advisory litemaas#137: LiteMaaS 0.4.0 and earlier grant a mock admin user to any request
// without a valid token whose User-Agent looks like a browser, on 23 routes (API keys, subscriptions,
// usage, the API docs), in every environment. Fixed upstream by PR #138; no release with the fix has
// been seen, so the fix is a backend image built from a fixed commit.
const (
	// backendImage is the backend's image name in the base; overlays set its tag.
	backendImage = "quay.io/rh-aiservices-bu/litemaas-backend"
	// advisoryProbePath is a protected read endpoint behind the bypass. The frontend's nginx proxies /api
	// to the backend, so the UI's Route reaches it whether or not the backend has a Route of its own.
	advisoryProbePath = "/api/v1/subscriptions"
	// What the bypass looks for: a browser User-Agent and an Accept of JSON.
	advisoryProbeUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	advisoryProbeAccept    = "application/json"
	// guardContainer is the backend guard's container (gitops/components/backend-guard).
	guardContainer = "backend-guard"
)

// lastAffected is the newest release the advisory applies to.
var lastAffected = [3]int{0, 4, 0}

// advisoryVersion says whether a backend image tag is affected: "affected", "fixed", or "unknown" for
// a tag that is not a release version (a digest, a commit build).
func advisoryVersion(tag string) string {
	v := strings.TrimPrefix(tag, "v")
	core, _, _ := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return "unknown"
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return "unknown"
		}
		n[i] = x
	}
	for i := range n {
		if n[i] != lastAffected[i] {
			if n[i] < lastAffected[i] {
				return "affected"
			}
			return "fixed"
		}
	}
	// 0.4.0 itself, and its pre-releases, are affected.
	return "affected"
}

// splitImage returns an image reference's name and its tag (empty when pinned by digest only).
func splitImage(ref string) (name, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
		if !strings.Contains(ref[strings.LastIndex(ref, "/")+1:], ":") {
			return ref, ""
		}
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// advisoryRow is deploy's preflight row about the advisory, for the backend image the overlay pins.
func advisoryRow(overlayDir, overlayRel string) report.Row {
	const check = "advisory " + tree.AdvisoryID
	objs, err := manifests.Render(overlayDir)
	if err != nil {
		return report.Row{Component: "backend", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("cannot tell: %s does not build: %v", overlayRel, err)}
	}
	image, allowlisted, guarded := "", true, false
	routes := 0
	for _, o := range objs {
		switch {
		case o.GetKind() == "Deployment" && o.GetName() == "backend":
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			for _, c := range cs {
				if m, ok := c.(map[string]any); ok && m["name"] == "backend" {
					image, _ = m["image"].(string)
				}
				if m, ok := c.(map[string]any); ok && m["name"] == guardContainer {
					guarded = true
				}
			}
		case o.GroupVersionKind().GroupKind() == cluster.RouteGVK.GroupKind():
			routes++
			if o.GetAnnotations()[tree.AnnotationIPAllowlist] == "" {
				allowlisted = false
			}
		}
	}
	if image == "" {
		return report.Row{Component: "backend", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("cannot tell: %s renders no backend container", overlayRel)}
	}
	name, tag := splitImage(image)
	switch {
	case name != backendImage:
		return report.Row{Component: "backend", Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("%s is a custom build; `make verify` probes the live backend", image)}
	case tag == "" || advisoryVersion(tag) == "unknown":
		return report.Row{Component: "backend", Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("%s is not a release tag; `make verify` probes the live backend", image)}
	case advisoryVersion(tag) == "fixed":
		return report.Row{Component: "backend", Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("%s is newer than the affected 0.4.0", image)}
	}
	if guarded {
		return report.Row{Component: "backend", Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("%s pins %s, affected by %s; mitigated: the component backend-guard is the only way into the backend and closes the bypass (`make verify` probes it)", overlayRel, image, tree.AdvisoryURL)}
	}
	mitigation := "until then add the component backend-guard (`make check` fails without it)"
	if allowlisted && routes > 0 {
		mitigation = "the Routes have an IP allowlist, which limits who can use it"
	}
	return report.Row{Component: "backend", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf(
		"%s pins %s: LiteMaaS 0.4.0 and earlier give ANY request with a browser User-Agent a mock admin user "+
			"(API keys, subscriptions, usage; %s). Set a backend image built from a fixed upstream commit in %s/kustomization.yaml `images:`; %s. See README.md, Security",
		overlayRel, image, tree.AdvisoryURL, overlayRel, mitigation)}
}

// checkAdvisory is verify's probe of the live backend: one unauthenticated GET of a protected read
// endpoint with a browser User-Agent, through the UI's Route (or the backend's own). 200 means the
// bypass is open.
func checkAdvisory(ctx context.Context, c *cluster.Cluster, ns string, client *http.Client) ([]report.Row, error) {
	ri, _, err := c.ResourceFor(cluster.RouteGVK, ns)
	if meta.IsNoMatchError(err) {
		return nil, nil // checkRoutes already says so
	}
	if err != nil {
		return nil, err
	}
	var route *unstructured.Unstructured
	for _, name := range []string{tree.RouteUI, tree.RouteAPI} {
		r, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err == nil {
			route = r
			break
		}
	}
	if route == nil {
		return []report.Row{{Component: "backend", Check: "advisory " + tree.AdvisoryID, Status: report.StatusWarn, Detail: fmt.Sprintf("not probed: neither Route %s nor %s exists", tree.RouteUI, tree.RouteAPI)}}, nil
	}
	base := cluster.RouteURL(route)
	if base == "" {
		return []report.Row{{Component: "backend", Check: "advisory " + tree.AdvisoryID, Status: report.StatusWarn, Detail: "not probed: Route " + route.GetName() + " has no host"}}, nil
	}
	return []report.Row{probeAdvisory(ctx, client, base, route.GetAnnotations()[tree.AnnotationIPAllowlist] != "")}, nil
}

// probeAdvisory sends the probe to base (https://<route host>) and judges the answer.
func probeAdvisory(ctx context.Context, client *http.Client, base string, allowlisted bool) report.Row {
	const check = "advisory " + tree.AdvisoryID
	url := strings.TrimSuffix(base, "/") + advisoryProbePath
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return report.Row{Component: "backend", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("not probed: %s: %v", url, err)}
	}
	// No token, no cookie: exactly what an anonymous browser tab sends.
	req.Header.Set("User-Agent", advisoryProbeUserAgent)
	req.Header.Set("Accept", advisoryProbeAccept)
	resp, err := client.Do(req)
	if err != nil {
		return report.Row{Component: "backend", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("not probed: GET %s: %v", url, err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
		return report.Row{Component: "backend", Check: check, Status: report.StatusFail, Detail: fmt.Sprintf(
			"OPEN: an unauthenticated GET %s with a browser User-Agent got %s. Anyone who can reach this URL acts as a LiteMaaS ADMIN "+
				"(%s, LiteMaaS 0.4.0 and earlier): put the component backend-guard in front of it (every overlay of this tree has it: "+
				"is the Deployment in sync?), or deploy a backend built from a fixed upstream commit (README.md, Security)", url, resp.Status, tree.AdvisoryURL)}
	case resp.StatusCode == http.StatusForbidden && allowlisted:
		return report.Row{Component: "backend", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("GET %s -> %s: the Routes' IP allowlist refuses this address, so the backend was not reached; probe from an allowed network", url, resp.Status)}
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return report.Row{Component: "backend", Check: check, Status: report.StatusOK, Detail: fmt.Sprintf("closed: unauthenticated GET %s with a browser User-Agent -> %s", url, resp.Status)}
	}
	return report.Row{Component: "backend", Check: check, Status: report.StatusWarn, Detail: fmt.Sprintf("cannot tell: GET %s -> %s (want 401 from a fixed backend)", url, resp.Status)}
}
