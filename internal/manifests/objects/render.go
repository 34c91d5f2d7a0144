// Package objects renders the kustomizations under gitops/ the way Argo CD and `oc apply -k` do
// (kustomize with its default options: load restrictions on, no plugins) and reads the resulting
// objects: the accessors, names and catalog lookups every policy rule shares.
package objects

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// build runs kustomize on dir, read from disk, with the options of the kustomize CLI (and so of
// `kubectl kustomize`, `oc apply -k` and Argo CD): load restrictions on, no plugins, legacy sort order
// (Namespaces and CRDs first, then RBAC, ConfigMaps, Services, workloads).
func build(dir string) (resmap.ResMap, error) {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	k := krusty.MakeKustomizer(opts)
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return m, nil
}

// Render runs kustomize (sigs.k8s.io/kustomize/api krusty, on-disk fs) on dir and returns the objects,
// in kustomize's output order.
func Render(dir string) ([]*unstructured.Unstructured, error) {
	m, err := build(dir)
	if err != nil {
		return nil, err
	}
	objs := make([]*unstructured.Unstructured, 0, m.Size())
	for _, r := range m.Resources() {
		// Through JSON, so that numbers become int64/float64 as everywhere in apimachinery.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// RenderYAML runs kustomize on dir and returns the objects as one multi-document YAML stream, as
// `kubectl kustomize dir` prints it.
func RenderYAML(dir string) ([]byte, error) {
	m, err := build(dir)
	if err != nil {
		return nil, err
	}
	out, err := m.AsYaml()
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	return out, nil
}

// Find returns the first object of the given kind and name, or nil. The namespace is not compared:
// an overlay renders at most one object of a kind and name.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found in the working directory or any parent")
		}
		dir = parent
	}
}

// Documents splits a YAML stream into its non-empty documents (separators are lines that are exactly
// "---", so a PEM block's "-----BEGIN" is no separator).
func Documents(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			out = append(out, doc)
		}
	}
}
