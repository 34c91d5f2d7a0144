package deploy

import (
	"fmt"
	"strconv"
	"strings"

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
