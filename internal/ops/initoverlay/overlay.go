// Package initoverlay writes what `litemaas-ops deploy --init-overlay NAME` sets up in a fork for a new
// cluster: the overlay (a copy of the example with the cluster's apps domain), the job image it runs
// (listed in images/images.yaml), and the fork and revision Argo CD syncs (gitops/argocd). Every file is
// edited as text, so that comments and layout stay; deploy asks the questions and checks the result.
package initoverlay

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

var (
	domainPattern  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
	appsDomainLine = regexp.MustCompile(`(?m)^(\s*appsDomain:\s*)(\S+)(.*)$`)
)

// Create creates gitops/overlays/<name> as a copy of the example overlay with appsDomain set to
// domain, the one value that differs between clusters, and returns its path relative to root. The copy
// sits at the same depth as the template, so its relative references (../../base) stay valid.
func Create(root, name, domain string) (string, error) {
	if !tree.IsOverlayName(name) {
		return "", fmt.Errorf("overlay name %q: use lower-case letters, digits and '-' (e.g. %s)", name, tree.SuggestOverlayName(domain))
	}
	if !domainPattern.MatchString(domain) {
		return "", fmt.Errorf("apps domain %q is not a DNS domain (want e.g. apps.mycluster.example.com, without https://)", domain)
	}
	rel := tree.OverlaysDir + "/" + name
	dst := filepath.Join(root, filepath.FromSlash(rel))
	if _, err := os.Stat(dst); err == nil {
		return "", fmt.Errorf("%s already exists: edit appsDomain in %s/%s instead, or choose another name", rel, rel, tree.SettingsFile)
	}
	src := filepath.Join(root, filepath.FromSlash(tree.TemplateOverlay))
	if err := copyTree(src, dst); err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("copying %s to %s: %w", tree.TemplateOverlay, rel, err)
	}
	settings := filepath.Join(dst, filepath.FromSlash(tree.SettingsFile))
	data, err := os.ReadFile(settings)
	if err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("the template overlay has no %s: %w", tree.SettingsFile, err)
	}
	if n := len(appsDomainLine.FindAllIndex(data, -1)); n != 1 {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("%s/%s: want exactly one appsDomain line, found %d", tree.TemplateOverlay, tree.SettingsFile, n)
	}
	data = appsDomainLine.ReplaceAll(data, []byte("${1}"+domain+"${3}"))
	if err := os.WriteFile(settings, data, 0o644); err != nil {
		_ = os.RemoveAll(dst)
		return "", err
	}
	// Render it once: a copy that does not build must not be left for the user to commit.
	hosts, err := tree.OverlayRoutes(dst)
	if err != nil {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("the new overlay does not build: %w", err)
	}
	if want := tree.ExpectedHosts(domain)[tree.RouteUI]; hosts[tree.RouteUI] != want {
		_ = os.RemoveAll(dst)
		return "", fmt.Errorf("the new overlay renders Route %s with host %q, want %q", tree.RouteUI, hosts[tree.RouteUI], want)
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
