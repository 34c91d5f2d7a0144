package ops

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// Paths in the repository, relative to its root.
const (
	// DefaultOverlay is the overlay the Application in git points at.
	DefaultOverlay = "gitops/overlays/example"
	// templateOverlay is copied by --init-overlay.
	templateOverlay = "gitops/overlays/example"
	overlaysDir     = "gitops/overlays"
	appOfAppsDir    = "gitops/argocd/app-of-apps"
	rootAppFile     = "gitops/argocd/root-app.yaml"
	// settingsFile, inside an overlay, holds its one cluster value: appsDomain.
	settingsFile = "settings/cluster-settings.yaml"
	// clusterPart, inside an overlay, is the cluster-admin part (OAuthClient, Groups) with its domain.
	clusterPart = "cluster"
	// repoURLPlaceholder marks the repoURL of the Applications until a fork sets its own.
	repoURLPlaceholder = "YOUR-ORG"
)

// The Routes whose hosts are the access URLs; their names are fixed in gitops/base.
const (
	routeUI      = "litemaas"
	routeLiteLLM = "litellm"
	routeAPI     = "litemaas-api"
)

// FindRoot walks up from dir to the repository root, the directory holding gitops/argocd/app-of-apps.
func FindRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; {
		if fi, err := os.Stat(filepath.Join(d, appOfAppsDir)); err == nil && fi.IsDir() {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s is not inside a litemaas-gitops checkout (no %s above it): run from your fork's directory", abs, appOfAppsDir)
		}
		d = parent
	}
}

// relToRoot turns p (absolute, or relative to the working directory) into a slash-separated path relative
// to root: the form Argo CD's spec.source.path wants.
func relToRoot(root, p string) (string, error) {
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

// renderApplications renders gitops/argocd/app-of-apps: the Applications deploy applies.
func renderApplications(root string) ([]*unstructured.Unstructured, error) {
	objs, err := manifests.Render(filepath.Join(root, appOfAppsDir))
	if err != nil {
		return nil, err
	}
	var apps []*unstructured.Unstructured
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == applicationGVK.GroupKind() {
			apps = append(apps, o)
		}
	}
	if len(apps) == 0 {
		return nil, fmt.Errorf("%s renders no Argo CD Application", appOfAppsDir)
	}
	return apps, nil
}

// renderRootApplication reads gitops/argocd/root-app.yaml, applied by hand in the manual procedure; nil
// when the file is absent.
func renderRootApplication(root string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(filepath.Join(root, rootAppFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	obj := &unstructured.Unstructured{}
	if err := yamlToObject(data, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", rootAppFile, err)
	}
	return obj, nil
}

// overlayRoutes renders an overlay and returns the hosts of its Routes by Route name.
func overlayRoutes(dir string) (map[string]string, error) {
	objs, err := manifests.Render(dir)
	if err != nil {
		return nil, err
	}
	hosts := map[string]string{}
	for _, o := range objs {
		if o.GroupVersionKind().GroupKind() == routeGVK.GroupKind() {
			h, _, _ := unstructured.NestedString(o.Object, "spec", "host")
			hosts[o.GetName()] = h
		}
	}
	return hosts, nil
}

// domainOf returns the apps domain a Route host belongs to: everything after its first label
// (litemaas-litemaas.apps.example.com -> apps.example.com).
func domainOf(host string) string {
	_, d, ok := strings.Cut(host, ".")
	if !ok {
		return ""
	}
	return d
}

// expectedHosts are the Route hosts OpenShift gives the Routes in namespace litemaas under domain.
func expectedHosts(domain string) map[string]string {
	return map[string]string{
		routeUI:      "litemaas-litemaas." + domain,
		routeLiteLLM: "litellm-litemaas." + domain,
		routeAPI:     "litemaas-api-litemaas." + domain,
	}
}

var (
	overlayNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	domainPattern      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
	appsDomainLine     = regexp.MustCompile(`(?m)^(\s*appsDomain:\s*)(\S+)(.*)$`)
)

// suggestOverlayName derives an overlay name from an apps domain: apps.mycluster.example.com -> mycluster.
func suggestOverlayName(domain string) string {
	d := strings.TrimPrefix(domain, "apps.")
	label, _, _ := strings.Cut(d, ".")
	if overlayNamePattern.MatchString(label) {
		return label
	}
	return "my-cluster"
}

// initOverlay creates gitops/overlays/<name> as a copy of the example overlay with appsDomain set to
// domain, the one value that differs between clusters, and returns its path relative to root. The copy
// sits at the same depth as the template, so its relative references (../../base) stay valid.
func initOverlay(root, name, domain string) (string, error) {
	if !overlayNamePattern.MatchString(name) {
		return "", fmt.Errorf("overlay name %q: use lower-case letters, digits and '-' (e.g. %s)", name, suggestOverlayName(domain))
	}
	if !domainPattern.MatchString(domain) {
		return "", fmt.Errorf("apps domain %q is not a DNS domain (want e.g. apps.mycluster.example.com, without https://)", domain)
	}
	rel := overlaysDir + "/" + name
	dst := filepath.Join(root, filepath.FromSlash(rel))
	if _, err := os.Stat(dst); err == nil {
		return "", fmt.Errorf("%s already exists: edit appsDomain in %s/%s instead, or choose another name", rel, rel, settingsFile)
	}
	src := filepath.Join(root, filepath.FromSlash(templateOverlay))
	if err := copyTree(src, dst); err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("copying %s to %s: %w", templateOverlay, rel, err)
	}
	settings := filepath.Join(dst, filepath.FromSlash(settingsFile))
	data, err := os.ReadFile(settings)
	if err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("the template overlay has no %s: %w", settingsFile, err)
	}
	if n := len(appsDomainLine.FindAllIndex(data, -1)); n != 1 {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("%s/%s: want exactly one appsDomain line, found %d", templateOverlay, settingsFile, n)
	}
	data = appsDomainLine.ReplaceAll(data, []byte("${1}"+domain+"${3}"))
	if err := os.WriteFile(settings, data, 0o644); err != nil {
		_ = os.RemoveAll(dst)
		return "", err
	}
	// Render it once: a copy that does not build must not be left for the user to commit.
	hosts, err := overlayRoutes(dst)
	if err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("the new overlay does not build: %w", err)
	}
	if want := expectedHosts(domain)[routeUI]; hosts[routeUI] != want {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("the new overlay renders Route %s with host %q, want %q", routeUI, hosts[routeUI], want)
	}
	return rel, nil
}

// copyTree copies the regular files and directories under src to dst (which must not exist).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
