// Package targets finds the kustomizations of the tree and what each one is: an app overlay, its
// cluster-admin part, Argo CD Applications, test CRDs, following the bases and components it reaches
// and reading the settings (apps domain, models catalog) it renders.
package targets

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// TargetKind is what a kustomization built on its own renders, which decides the checks that apply.
type TargetKind int

const (
	// AppTarget is an overlay of LiteMaaS itself, synced by Argo CD (it builds on gitops/base).
	AppTarget TargetKind = iota
	// ClusterTarget is the cluster-admin part of an overlay (it builds on gitops/cluster).
	ClusterTarget
	// ArgoCDTarget holds Argo CD Applications (under gitops/argocd).
	ArgoCDTarget
	// CRDTarget holds the CRDs of the server-side dry run (under gitops/test).
	CRDTarget
	// OtherTarget builds on neither base: only the checks that hold for any object apply.
	OtherTarget
	// HATarget is an overlay of the production profile: it builds on gitops/base and uses
	// gitops/components/ha (PostgreSQL on CloudNativePG, the roles' Secrets).
	HATarget
)

func (k TargetKind) String() string {
	switch k {
	case AppTarget:
		return "overlay"
	case ClusterTarget:
		return "cluster part"
	case ArgoCDTarget:
		return "Argo CD Applications"
	case CRDTarget:
		return "test CRDs"
	case HATarget:
		return "production overlay"
	}
	return "kustomization"
}

// The bases the kinds are recognised by, and the names that tie an overlay's parts together.
const (
	appBase             = "gitops/base"
	haComponent         = "gitops/components/ha"
	clusterBase         = "gitops/cluster"
	ClusterSettingsName = "cluster-settings"
	modelsGeneratorName = "litemaas-models"
)

// Target is a kustomization that is built on its own, found in the tree (never listed by hand): every
// overlay a user adds is checked like the examples.
type Target struct {
	// Dir is relative to the repository root, with forward slashes.
	Dir  string
	Kind TargetKind
	// For an AppTarget: Cluster is the cluster-admin part rendered with the same settings (its own
	// cluster/ folder, else that of the overlay it builds on; "" when there is none), Settings the file
	// holding the ConfigMap cluster-settings ("" when none is found) and Catalog the models catalog
	// file its configMapGenerator reads ("" when none is found). All relative to the root.
	Cluster  string
	Settings string
	Catalog  string
}

// Targets returns every kustomization under root/gitops that is built on its own, classified by the
// base it reaches, sorted by directory.
func Targets(root string) ([]Target, error) {
	ks, err := Kustomizations(root)
	if err != nil {
		return nil, err
	}
	g := graph{root: root, byDir: map[string]Kustomization{}}
	for _, k := range ks {
		g.byDir[k.Dir] = k
	}
	dirs, err := RenderTargets(root)
	if err != nil {
		return nil, err
	}
	var out []Target
	for _, dir := range dirs {
		t := Target{Dir: dir, Kind: g.kind(dir)}
		if t.Kind == AppTarget || t.Kind == HATarget {
			t.Cluster = g.clusterPart(dir, map[string]bool{})
			if t.Settings, err = g.settings(dir); err != nil {
				return nil, err
			}
			t.Catalog = g.catalog(dir)
		}
		out = append(out, t)
	}
	return out, nil
}

// FindTarget returns the target for dir (relative to root, or absolute), or an error naming the
// targets there are.
func FindTarget(root, dir string) (Target, error) {
	ts, err := Targets(root)
	if err != nil {
		return Target{}, err
	}
	rel := filepath.ToSlash(filepath.Clean(dir))
	if filepath.IsAbs(dir) {
		r, err := filepath.Rel(root, dir)
		if err != nil {
			return Target{}, err
		}
		rel = filepath.ToSlash(r)
	}
	var names []string
	for _, t := range ts {
		if t.Dir == rel {
			return t, nil
		}
		if t.Kind == AppTarget || t.Kind == HATarget {
			names = append(names, t.Dir)
		}
	}
	return Target{}, fmt.Errorf("%s is not a kustomization under gitops/overlays or gitops/clusters (the overlays are %s)", rel, strings.Join(names, ", "))
}

// graph is the kustomizations under gitops/ by directory, for following resources and components.
type graph struct {
	root  string
	byDir map[string]Kustomization
}

// entries returns the kustomization directories dir pulls in, in the order kustomize reads them
// (resources, components, then transformers); files, inline transformers and remote bases are left
// out.
func (g graph) entries(dir string) []string {
	k, ok := g.byDir[dir]
	if !ok {
		return nil
	}
	var out []string
	for _, e := range slices.Concat(k.Resources, k.Components, k.Transformers) {
		sub := path.Clean(path.Join(dir, filepath.ToSlash(e)))
		if _, ok := g.byDir[sub]; ok {
			out = append(out, sub)
		}
	}
	return out
}

// reaches reports whether dir is base or builds on it, directly or through other kustomizations.
func (g graph) reaches(dir, base string, seen map[string]bool) bool {
	if dir == base {
		return true
	}
	if seen[dir] {
		return false
	}
	seen[dir] = true
	for _, sub := range g.entries(dir) {
		if g.reaches(sub, base, seen) {
			return true
		}
	}
	return false
}

func (g graph) kind(dir string) TargetKind {
	switch {
	case strings.HasPrefix(dir, "gitops/argocd/"):
		return ArgoCDTarget
	case strings.HasPrefix(dir, "gitops/test/"):
		return CRDTarget
	case g.reaches(dir, appBase, map[string]bool{}) && g.reaches(dir, haComponent, map[string]bool{}):
		return HATarget
	case g.reaches(dir, appBase, map[string]bool{}):
		return AppTarget
	case g.reaches(dir, clusterBase, map[string]bool{}):
		return ClusterTarget
	}
	return OtherTarget
}

// clusterPart is the overlay's own cluster/ folder, else that of the first overlay it builds on that
// has one.
func (g graph) clusterPart(dir string, seen map[string]bool) string {
	if seen[dir] {
		return ""
	}
	seen[dir] = true
	if c := dir + "/cluster"; g.kind(c) == ClusterTarget {
		if _, ok := g.byDir[c]; ok {
			return c
		}
	}
	for _, sub := range g.entries(dir) {
		if sub == appBase {
			continue
		}
		if c := g.clusterPart(sub, seen); c != "" {
			return c
		}
	}
	return ""
}

// settings returns the file that declares the ConfigMap cluster-settings in what dir builds (the one
// read last wins, as a later resource would in kustomize), or "".
func (g graph) settings(dir string) (string, error) {
	var found string
	var walk func(dir string, seen map[string]bool) error
	walk = func(dir string, seen map[string]bool) error {
		if seen[dir] {
			return nil
		}
		seen[dir] = true
		k := g.byDir[dir]
		for _, e := range append(append([]string{}, k.Resources...), k.Components...) {
			p := path.Clean(path.Join(dir, filepath.ToSlash(e)))
			if _, isDir := g.byDir[p]; isDir {
				if err := walk(p, seen); err != nil {
					return err
				}
				continue
			}
			if !strings.HasSuffix(p, ".yaml") && !strings.HasSuffix(p, ".yml") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(g.root, filepath.FromSlash(p)))
			if err != nil {
				continue // kustomize reports it when rendering
			}
			if declaresSettings(data) {
				found = p
			}
		}
		return nil
	}
	return found, walk(dir, map[string]bool{})
}

func declaresSettings(data []byte) bool {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) || err != nil {
			return false
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if yaml.Unmarshal(doc, &head) == nil && head.Kind == "ConfigMap" && head.Metadata.Name == ClusterSettingsName {
			return true
		}
	}
}

// catalog returns the file the configMapGenerator litemaas-models reads its models.yaml key from, the
// overlay's own entry winning over its bases' (behavior: replace), or "".
func (g graph) catalog(dir string) string {
	var found string
	var walk func(dir string, seen map[string]bool)
	walk = func(dir string, seen map[string]bool) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		for _, sub := range g.entries(dir) {
			walk(sub, seen)
		}
		for _, gen := range g.byDir[dir].ConfigMapGenerator {
			if gen.Name != modelsGeneratorName {
				continue
			}
			for _, f := range gen.Files {
				key, file, ok := strings.Cut(f, "=")
				if !ok {
					key, file = path.Base(filepath.ToSlash(f)), f
				}
				if key == objects.ModelsConfigMapDataKey {
					found = path.Clean(path.Join(dir, filepath.ToSlash(file)))
				}
			}
		}
	}
	walk(dir, map[string]bool{})
	return found
}

// AppsDomain reads data.appsDomain from a cluster-settings file (relative to root).
func AppsDomain(root, settingsFile string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(settingsFile)))
	if err != nil {
		return "", err
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return "", fmt.Errorf("%s: %w", settingsFile, err)
	}
	d := cm.Data["appsDomain"]
	if d == "" || strings.Contains(d, objects.Placeholder) || strings.Contains(d, "/") || strings.HasPrefix(d, ".") || strings.ContainsAny(d, " :") {
		return "", fmt.Errorf("%s: appsDomain %q is not a domain (want e.g. apps.mycluster.example.com, from `oc get ingress.config.openshift.io cluster -o jsonpath='{.spec.domain}'`)", settingsFile, d)
	}
	return d, nil
}
