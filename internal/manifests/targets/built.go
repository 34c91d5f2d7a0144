package targets

import (
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// CheckEveryKustomizationBuilt: every kustomization under gitops/ is a target or is reached from one (a
// base it builds on, a component it uses), so no kustomization escapes the checks.
func CheckEveryKustomizationBuilt(root string, all []Target) ([]string, error) {
	ks, err := Kustomizations(root)
	if err != nil {
		return nil, err
	}
	g := graph{root: root, byDir: map[string]Kustomization{}}
	for _, k := range ks {
		g.byDir[k.Dir] = k
	}
	reached := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if reached[dir] {
			return
		}
		reached[dir] = true
		for _, sub := range g.entries(dir) {
			visit(sub)
		}
	}
	for _, t := range all {
		visit(t.Dir)
	}
	var p objects.Problems
	for _, k := range ks {
		if !reached[k.Dir] {
			p.Addf("%s: kustomization not built by any overlay (a component no overlay uses, or a base nothing builds on)", k.Dir)
		}
	}
	return p, nil
}
