// Package tree is what the litemaas-ops commands know of the fork's checkout and the tree it holds:
// where the root is, the paths of its overlays and Argo CD files, the Applications it renders, and the
// names gitops/base fixes (namespace, labels, Routes, the job's status ConfigMap).
package tree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
)

// Paths in the repository, relative to its root.
const (
	// DefaultOverlay is the overlay the Application in git points at.
	DefaultOverlay = "gitops/overlays/example"
	// TemplateOverlay is copied by --init-overlay.
	TemplateOverlay = "gitops/overlays/example"
	OverlaysDir     = "gitops/overlays"
	AppOfAppsDir    = "gitops/argocd/app-of-apps"
	RootAppFile     = "gitops/argocd/root-app.yaml"
	// SettingsFile, inside an overlay, holds its one cluster value: appsDomain.
	SettingsFile = "settings/cluster-settings.yaml"
	// ClusterPart, inside an overlay, is the cluster-admin part (OAuthClient, Groups) with its domain.
	ClusterPart = "cluster"
	// RepoURLPlaceholder marks the repoURL of the Applications until a fork sets its own.
	RepoURLPlaceholder = "YOUR-ORG"
)

// The Routes whose hosts are the access URLs; their names are fixed in gitops/base.
const (
	RouteUI      = "litemaas"
	RouteLiteLLM = "litellm"
	RouteAPI     = "litemaas-api"
)

// FindRoot walks up from dir to the repository root, the directory holding gitops/argocd/app-of-apps.
func FindRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; {
		if fi, err := os.Stat(filepath.Join(d, AppOfAppsDir)); err == nil && fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s is not inside a litemaas-gitops checkout (no %s above it): run from your fork's directory", abs, AppOfAppsDir)
		}
		d = parent
	}
}

// RelToRoot turns p (absolute, or relative to the working directory) into a slash-separated path relative
// to root: the form Argo CD's spec.source.path wants.
func RelToRoot(root, p string) (string, error) {
	abs := p
	if !filepath.IsAbs(p) {
		var err error
		if abs, err = filepath.Abs(p); err != nil {
			return "", err
		}
	}
	rel, err := filepath.Rel(root, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s is outside the repository %s", p, root)
	}
	return filepath.ToSlash(rel), nil
}

// RenderApplications renders gitops/argocd/app-of-apps: the Applications deploy applies.
func RenderApplications(root string) ([]*unstructured.Unstructured, error) {
	objs, err := manifests.Render(filepath.Join(root, AppOfAppsDir))
	if err != nil {
		return nil, err
	}
	var apps []*unstructured.Unstructured
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == cluster.ApplicationGVK.GroupKind() {
			apps = append(apps, o)
		}
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("%s renders no Argo CD Application", AppOfAppsDir)
	}
	return apps, nil
}

// RenderRootApplication reads gitops/argocd/root-app.yaml, applied by hand in the manual procedure; nil
// when the file is absent.
func RenderRootApplication(root string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(filepath.Join(root, RootAppFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := YAMLToObject(data, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", RootAppFile, err)
	}
	return obj, nil
}

// DefaultNamespace is where gitops/base puts LiteMaaS.
const DefaultNamespace = "litemaas"

// StatusConfigMap is written by the litemaas-sync job after each run.
const StatusConfigMap = "litemaas-sync-status"

// Labels of the LiteMaaS workloads (gitops/base).
const (
	LabelName   = "app.kubernetes.io/name"
	LabelPartOf = "app.kubernetes.io/part-of"
	PartOf      = "litemaas"
)

// Components are the workloads every installation runs, by app.kubernetes.io/name.
var Components = []string{"postgres", "litellm", "backend", "frontend"}

// The upstream advisory litemaas#137, which the component backend-guard closes: deploy names it for
// the backend image an overlay pins, verify probes the live backend for it.
const (
	AdvisoryID  = "litemaas#137"
	AdvisoryURL = "https://github.com/rh-aiservices-bu/litemaas/issues/137"
	// AnnotationIPAllowlist limits who reaches a Route, which limits who can use the bypass.
	AnnotationIPAllowlist = "haproxy.router.openshift.io/ip_allowlist"
)

// WorkRoot is the root of the checkout holding the working directory.
func WorkRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return FindRoot(wd)
}

// InRepo resolves a path given on the command line: as given when it exists (absolute, or relative to the
// working directory), else relative to the repository root, so that the defaults also work from a
// subdirectory of the checkout.
func InRepo(root, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if _, err := os.Stat(filepath.Join(root, p)); err == nil {
		return filepath.Join(root, p)
	}
	return p
}

// YAMLToObject parses one YAML document into obj.
func YAMLToObject(data []byte, obj *unstructured.Unstructured) error {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return obj.UnmarshalJSON(js)
}

// OverlayRoutes renders an overlay and returns the hosts of its Routes by Route name.
func OverlayRoutes(dir string) (map[string]string, error) {
	objs, err := manifests.Render(dir)
	if err != nil {
		return nil, err
	}
	hosts := map[string]string{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == cluster.RouteGVK.GroupKind() {
			h, _, _ := unstructured.NestedString(o.Object, "spec", "host")
			hosts[o.GetName()] = h
		}
	}
	return hosts, nil
}

// DomainOf returns the apps domain a Route host belongs to: everything after its first label
// (litemaas-litemaas.apps.example.com -> apps.example.com).
func DomainOf(host string) string {
	_, d, ok := strings.Cut(host, ".")
	if !ok {
		return ""
	}
	return d
}

// ExpectedHosts are the Route hosts OpenShift gives the Routes in namespace litemaas under domain.
func ExpectedHosts(domain string) map[string]string {
	return map[string]string{
		RouteUI:      "litemaas-litemaas." + domain,
		RouteLiteLLM: "litellm-litemaas." + domain,
		RouteAPI:     "litemaas-api-litemaas." + domain,
	}
}

// overlayNamePattern is a name for an overlay directory: a DNS label.
var overlayNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// IsOverlayName reports whether name may name an overlay (a DNS label).
func IsOverlayName(name string) bool { return overlayNamePattern.MatchString(name) }

// SuggestOverlayName derives an overlay name from an apps domain: apps.mycluster.example.com -> mycluster.
func SuggestOverlayName(domain string) string {
	d := strings.TrimPrefix(domain, "apps.")
	label, _, _ := strings.Cut(d, ".")
	if overlayNamePattern.MatchString(label) {
		return label
	}
	return "my-cluster"
}
