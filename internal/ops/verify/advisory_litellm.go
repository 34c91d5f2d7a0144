package verify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/advisory"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// litellmImage is LiteLLM's image name in the base; overlays set its tag.
const litellmImage = "quay.io/rh-aiservices-bu/litellm-non-root"

// liveLiteLLMVersion asks the proxy behind base (its Route) for its version, without credentials:
// /health/readiness carries `litellm_version` (as LiteLLM 1.74 answers), else the `x-litellm-version`
// header LiteLLM sets on its responses. "" when the proxy reports neither.
func liveLiteLLMVersion(ctx context.Context, client *http.Client, base string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/health/readiness", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var body struct {
		Version string `json:"litellm_version"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) == nil && body.Version != "" {
		return body.Version, nil
	}
	return resp.Header.Get("x-litellm-version"), nil
}

// checkLiteLLMAdvisories is verify's rows for the advisories of images/advisories.yaml that apply to
// the running LiteLLM: its version from the live proxy, else (a proxy that does not report it) from the
// running Deployment's image tag, saying so.
func checkLiteLLMAdvisories(ctx context.Context, c *cluster.Cluster, ns string, client *http.Client) []report.Row {
	const component = "litellm"
	f, err := advisory.Load()
	if err != nil {
		return []report.Row{{Component: component, Check: "advisories", Status: report.StatusWarn, Detail: err.Error()}}
	}
	source, version := "", ""
	if ri, _, err := c.ResourceFor(cluster.RouteGVK, ns); err == nil {
		if r, err := ri.Get(ctx, tree.RouteLiteLLM, metav1.GetOptions{}); err == nil {
			if base := cluster.RouteURL(r); base != "" {
				if v, err := liveLiteLLMVersion(ctx, client, base); err == nil && v != "" {
					source, version = "the live proxy reports", v
				}
			}
		}
	}
	if version == "" {
		pods, err := c.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=litellm"})
		if err != nil {
			return []report.Row{{Component: component, Check: "advisories", Status: report.StatusWarn, Detail: fmt.Sprintf("cannot tell the LiteLLM version: the proxy does not report it and listing its pods: %v", err)}}
		}
		for _, p := range pods.Items {
			for _, ct := range p.Spec.Containers {
				if ct.Name == "litellm" && version == "" {
					_, tag := advisory.SplitImage(ct.Image)
					source, version = "the proxy does not report its version; its running image "+ct.Image+" says", advisory.VersionOf(tag)
				}
			}
		}
	}
	if version == "" {
		return []report.Row{{Component: component, Check: "advisories", Status: report.StatusWarn, Detail: "cannot tell the LiteLLM version: the proxy does not report it and its image tag carries none"}}
	}
	var rows []report.Row
	for _, a := range f.Advisories {
		if a.Image != litellmImage || a.Applies(version) != advisory.Affected {
			continue
		}
		fixed := a.Fixed
		if fixed == "" {
			fixed = "no release yet"
		}
		rows = append(rows, report.Row{Component: component, Check: "advisory " + a.ID, Status: report.StatusWarn, Detail: fmt.Sprintf("applies: %s %s (affected %s, fixed in %s). %s See images/advisories.yaml",
			source, version, a.Affected, fixed, strings.TrimSpace(a.Mitigation))})
	}
	if len(rows) == 0 {
		rows = append(rows, report.Row{Component: component, Check: "advisories", Status: report.StatusOK, Detail: fmt.Sprintf("none of images/advisories.yaml applies: %s %s", source, version)})
	}
	return rows
}
