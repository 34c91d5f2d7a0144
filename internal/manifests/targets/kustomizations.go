package targets

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Kustomization is a kustomization file found under gitops/, reduced to what decides how it is
// rendered and which other kustomizations it pulls in.
type Kustomization struct {
	// Dir is the directory holding the file, relative to the repository root, with forward slashes.
	Dir string
	// Kind is "Kustomization" (also when the file omits it) or "Component".
	Kind string
	// Resources, Components and Transformers are the entries of the file, as written (a transformer
	// entry may be a kustomization: gitops/base/drift-cronjob).
	Resources    []string `json:"resources"`
	Components   []string `json:"components"`
	Transformers []string `json:"transformers"`
	// ConfigMapGenerator is read to find the models catalog file an overlay renders.
	ConfigMapGenerator []ConfigMapGenerator `json:"configMapGenerator"`
}

// ConfigMapGenerator is one configMapGenerator entry, reduced to what names its source files.
type ConfigMapGenerator struct {
	Name     string   `json:"name"`
	Behavior string   `json:"behavior"`
	Files    []string `json:"files"`
}

// IsComponent reports whether the kustomization is a kustomize Component, which is only rendered
// through a kustomization that lists it.
func (k Kustomization) IsComponent() bool { return k.Kind == "Component" }

// Kustomizations returns every kustomization under root/gitops, sorted by directory.
func Kustomizations(root string) ([]Kustomization, error) {
	var out []Kustomization
	base := filepath.Join(root, "gitops")
	err := filepath.WalkDir(base, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch d.Name() {
		case "kustomization.yaml", "kustomization.yml", "Kustomization":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var k Kustomization
		if err := yaml.Unmarshal(data, &k); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(data, &head); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		k.Kind = head.Kind
		if k.Kind == "" {
			k.Kind = "Kustomization"
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		k.Dir = filepath.ToSlash(rel)
		out = append(out, k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out, nil
}

// targetPrefixes are the folders whose kustomizations are built on their own: the overlays (one per
// cluster), the cluster folders of a fleet, the Argo CD Applications and the test fixtures.
var targetPrefixes = []string{"gitops/overlays/", "gitops/clusters/", "gitops/argocd/", "gitops/test/"}

// RenderTargets returns the directories (relative to root) that are meant to be built on their own:
// every kustomization that is not a Component under gitops/overlays, gitops/clusters, gitops/argocd
// and gitops/test.
// The bases (gitops/base, gitops/cluster) are left out: they carry the apps-domain placeholder and are
// only ever built through an overlay.
func RenderTargets(root string) ([]string, error) {
	ks, err := Kustomizations(root)
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, k := range ks {
		if k.IsComponent() {
			continue
		}
		for _, prefix := range targetPrefixes {
			if strings.HasPrefix(k.Dir+"/", prefix) {
				dirs = append(dirs, k.Dir)
				break
			}
		}
	}
	return dirs, nil
}
