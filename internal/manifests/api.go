// Package manifests is the offline policy engine behind `litemaas-ops check`: it finds the tree's
// kustomizations, renders each the way Argo CD does and runs the rules that apply to its kind
// (Checker), plus the checks of the tree as a whole (the AppProject, the root Application, the image
// inventory, the CRDs' coverage).
package manifests

// The package's API for its callers (litemaas-ops, the test harnesses). Rendering and reading objects
// live in package objects, finding the tree's kustomizations in targets, the rules in their own
// packages (workload, wiring, syncjob, traffic, parity, ha); these names keep one entry point.

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/traffic"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/upstream"
)

// Placeholder is the apps domain the bases carry until an overlay's replacements overwrite it.
const Placeholder = objects.Placeholder

// Render runs kustomize (sigs.k8s.io/kustomize/api krusty, on-disk fs) on dir and returns the objects,
// in kustomize's output order.
func Render(dir string) ([]*unstructured.Unstructured, error) { return objects.Render(dir) }

// RenderYAML runs kustomize on dir and returns the objects as one multi-document YAML stream, as
// `kubectl kustomize dir` prints it.
func RenderYAML(dir string) ([]byte, error) { return objects.RenderYAML(dir) }

// Find returns the first object of the given kind and name, or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	return objects.Find(objs, kind, name)
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) { return objects.RepoRoot() }

// Documents splits a YAML stream into its non-empty documents.
func Documents(data []byte) ([][]byte, error) { return objects.Documents(data) }

// CatalogModels returns the number of models in the rendered catalog, when it is valid.
func CatalogModels(objs []*unstructured.Unstructured) (int, bool) { return objects.CatalogModels(objs) }

// The tree's kustomizations and what each renders (package targets).
type (
	Target             = targets.Target
	TargetKind         = targets.TargetKind
	Kustomization      = targets.Kustomization
	ConfigMapGenerator = targets.ConfigMapGenerator
)

// The kinds of target.
const (
	AppTarget     = targets.AppTarget
	ClusterTarget = targets.ClusterTarget
	ArgoCDTarget  = targets.ArgoCDTarget
	CRDTarget     = targets.CRDTarget
	HATarget      = targets.HATarget
)

// Targets returns every kustomization under root/gitops that is built on its own.
func Targets(root string) ([]Target, error) { return targets.Targets(root) }

// FindTarget returns the target for dir (relative to root, or absolute).
func FindTarget(root, dir string) (Target, error) { return targets.FindTarget(root, dir) }

// Kustomizations returns every kustomization under root/gitops, sorted by directory.
func Kustomizations(root string) ([]Kustomization, error) { return targets.Kustomizations(root) }

// RenderTargets returns the directories the render command builds.
func RenderTargets(root string) ([]string, error) { return targets.RenderTargets(root) }

// AppsDomain reads data.appsDomain from a cluster-settings file (relative to root).
func AppsDomain(root, settingsFile string) (string, error) {
	return targets.AppsDomain(root, settingsFile)
}

// AdvisoryNote is one open advisory of an overlay's pins, for `litemaas-ops check`'s information lines.
type AdvisoryNote = traffic.AdvisoryNote

// GuardConfig returns the backend guard's nginx.conf as the overlay renders it.
func GuardConfig(objs []*unstructured.Unstructured) (string, error) { return traffic.GuardConfig(objs) }

// OpenAdvisories returns the advisories of images/advisories.yaml that apply to the images the overlay
// renders.
func OpenAdvisories(objs []*unstructured.Unstructured) ([]AdvisoryNote, error) {
	return traffic.OpenAdvisories(objs)
}

// UpstreamSource is one entry of upstream-crds.yaml (package upstream).
type UpstreamSource = upstream.Source

// UpstreamKinds returns group/version/Kind of every kind upstream-crds.yaml provides, without
// downloading.
func UpstreamKinds() ([]string, error) { return upstream.Kinds() }

// UpstreamSources returns the entries of upstream-crds.yaml.
func UpstreamSources() ([]UpstreamSource, error) { return upstream.Sources() }

// UpstreamCRDs returns the CRDs upstream-crds.yaml lists, from the operators' Go modules.
func UpstreamCRDs() ([]*unstructured.Unstructured, error) { return upstream.CRDs() }

// UpstreamModuleDir returns the module cache directory of a module of upstream-crds.yaml.
func UpstreamModuleDir(module string) (string, error) { return upstream.ListedModuleDir(module) }

// ModuleDir downloads module@version with the go command and returns its directory in the module cache.
func ModuleDir(module, version string) (string, error) { return upstream.ModuleDir(module, version) }
