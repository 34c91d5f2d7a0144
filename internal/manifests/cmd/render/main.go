// Command render writes the rendered YAML of every overlay (and of the Argo CD and test kustomizations)
// to an output directory, one file per kustomization, e.g. gitops/overlays/example ->
// overlays_example.yaml. Run from anywhere in the repository:
//
//	go run ./internal/manifests/cmd/render -out _output/manifests
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

func main() {
	out := flag.String("out", "_output/manifests", "directory to write the rendered manifests to (relative to the repository root unless absolute)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	root, err := manifests.RepoRoot()
	if err != nil {
		return err
	}
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	dirs, err := manifests.RenderTargets(root)
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		data, err := manifests.RenderYAML(filepath.Join(root, dir))
		if err != nil {
			return err
		}
		name := strings.ReplaceAll(strings.TrimPrefix(dir, "gitops/"), "/", "_") + ".yaml"
		file := filepath.Join(out, name)
		if err := os.WriteFile(file, data, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s -> %s\n", dir, file)
	}
	return nil
}
