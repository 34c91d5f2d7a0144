package targets

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// ComponentsIn returns the names of the components under gitops/components that a kustomization
// reaches, through its bases and its own components.
func ComponentsIn(root, dir string) (map[string]bool, error) {
	ks, err := Kustomizations(root)
	if err != nil {
		return nil, err
	}
	byDir := map[string]Kustomization{}
	for _, k := range ks {
		byDir[k.Dir] = k
	}
	out := map[string]bool{}
	var visit func(string)
	visit = func(d string) {
		k, ok := byDir[d]
		if !ok {
			return
		}
		if name, ok := strings.CutPrefix(d, "gitops/components/"); ok {
			if out[name] {
				return
			}
			out[name] = true
		}
		for _, e := range append(slices.Clone(k.Resources), k.Components...) {
			visit(filepath.ToSlash(filepath.Clean(filepath.Join(d, e))))
		}
	}
	visit(dir)
	return out, nil
}

// SettingsData reads the data of an overlay's cluster-settings file (relative to root).
func SettingsData(root, file string) (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(file)))
	if err != nil {
		return nil, err
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return cm.Data, nil
}
