package verify

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// The probe of the upstream advisory litemaas#137 (tree.AdvisoryID): LiteMaaS 0.4.0 and earlier grant a
// mock admin user to any request without a valid token whose User-Agent looks like a browser.
const (
	// advisoryProbePath is a protected read endpoint behind the bypass. The frontend's nginx proxies /api
	// to the backend, so the UI's Route reaches it whether or not the backend has a Route of its own.
	advisoryProbePath = "/api/v1/subscriptions"
	// What the bypass looks for: a browser User-Agent and an Accept of JSON.
	advisoryProbeUserAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	advisoryProbeAccept    = "application/json"
)

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
