// Package upstream reads upstream-crds.yaml: the operators' CRDs the tree's objects need on a plain
// kube-apiserver (dry runs, the local stack), taken from the projects' own Go modules, never copied.
package upstream

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// upstreamCRDList names the operators' CRDs the tree's objects need on a plain kube-apiserver (dry runs,
// the local stack): files of the projects' own Go modules, never copies.
//
//go:embed upstream-crds.yaml
var upstreamCRDList []byte

// Source is one entry of upstream-crds.yaml.
type Source struct {
	Module  string   `json:"module"`
	Version string   `json:"version"`
	Dir     string   `json:"dir"`
	Files   []string `json:"files"`
	// Kinds are group/version/Kind of what the files serve.
	Kinds []string `json:"kinds"`
}

// Kinds returns group/version/Kind of every kind upstream-crds.yaml provides, without
// downloading: what the dry run can validate beyond gitops/test/crds.
func Kinds() ([]string, error) {
	sources, err := Sources()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range sources {
		out = append(out, s.Kinds...)
	}
	return out, nil
}

var (
	upstreamOnce sync.Once
	upstreamObjs []*unstructured.Unstructured
	upstreamDirs map[string]string // module -> its directory in the module cache
	upstreamErr  error
)

// ModuleDir downloads module@version with the go command (module proxy, verified against go.sum's
// checksum database) and returns its directory in the module cache. It runs outside this module, so
// go.mod stays untouched; a warm module cache needs no network.
func ModuleDir(module, version string) (string, error) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		// The toolchain that built this binary, when go is not on PATH.
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goCmd, "mod", "download", "-json", module+"@"+version)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GO111MODULE=on")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	if jerr := json.Unmarshal(out, &info); jerr == nil && info.Error != "" {
		return "", fmt.Errorf("go mod download %s@%s: %s", module, version, info.Error)
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, version, err, ee.Stderr)
		}
		return "", fmt.Errorf("go mod download %s@%s: %w (is the go command installed?)", module, version, err)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s@%s: no directory in its output", module, version)
	}
	return info.Dir, nil
}

// Sources returns the entries of upstream-crds.yaml.
func Sources() ([]Source, error) {
	var sources []Source
	if err := yaml.Unmarshal(upstreamCRDList, &sources); err != nil {
		return nil, fmt.Errorf("upstream-crds.yaml: %w", err)
	}
	return sources, nil
}

// CRDs returns the CRDs of upstream-crds.yaml, read from their modules (downloaded once per
// process), as deep copies.
func CRDs() ([]*unstructured.Unstructured, error) {
	upstreamOnce.Do(func() { upstreamObjs, upstreamDirs, upstreamErr = loadUpstream() })
	if upstreamErr != nil {
		return nil, upstreamErr
	}
	out := make([]*unstructured.Unstructured, len(upstreamObjs))
	for i, o := range upstreamObjs {
		out[i] = o.DeepCopy()
	}
	return out, nil
}

// ListedModuleDir returns the module cache directory of a module of upstream-crds.yaml.
func ListedModuleDir(module string) (string, error) {
	if _, err := CRDs(); err != nil {
		return "", err
	}
	dir, ok := upstreamDirs[module]
	if !ok {
		return "", fmt.Errorf("%s is not in upstream-crds.yaml", module)
	}
	return dir, nil
}

func loadUpstream() ([]*unstructured.Unstructured, map[string]string, error) {
	sources, err := Sources()
	if err != nil {
		return nil, nil, err
	}
	var objs []*unstructured.Unstructured
	dirs := map[string]string{}
	for _, s := range sources {
		dir, err := ModuleDir(s.Module, s.Version)
		if err != nil {
			return nil, nil, err
		}
		dirs[s.Module] = dir
		for _, f := range s.Files {
			raw, err := os.ReadFile(filepath.Join(dir, s.Dir, f))
			if err != nil {
				return nil, nil, fmt.Errorf("%s@%s: %w", s.Module, s.Version, err)
			}
			js, err := yaml.YAMLToJSON(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("%s@%s %s/%s: %w", s.Module, s.Version, s.Dir, f, err)
			}
			obj := &unstructured.Unstructured{}
			if err := obj.UnmarshalJSON(js); err != nil {
				return nil, nil, fmt.Errorf("%s@%s %s/%s: %w", s.Module, s.Version, s.Dir, f, err)
			}
			// Fields a plain create must not carry.
			unstructured.RemoveNestedField(obj.Object, "status")
			unstructured.RemoveNestedField(obj.Object, "metadata", "creationTimestamp")
			objs = append(objs, obj)
		}
	}
	return objs, dirs, nil
}
