// Package manifeststest holds what the tests of the policy packages share: the tree's rendered
// kustomizations (each rendered once per test binary) and the small edits that break a rendering on
// purpose, so that every rule can be shown to reject what it must.
package manifeststest

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

type rendering struct {
	objs []*unstructured.Unstructured
	err  error
}

var (
	mu    sync.Mutex
	cache = map[string]rendering{}
)

// RepoRoot is the repository's root directory.
func RepoRoot(t *testing.T) string {
	t.Helper()
	root, err := objects.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// Rendered renders a repository directory once per test binary; callers get deep copies, which they
// may break.
func Rendered(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	mu.Lock()
	r, ok := cache[dir]
	if !ok {
		r.objs, r.err = objects.Render(filepath.Join(RepoRoot(t), filepath.FromSlash(dir)))
		cache[dir] = r
	}
	mu.Unlock()
	if r.err != nil {
		t.Fatalf("render %s: %v", dir, r.err)
	}
	out := make([]*unstructured.Unstructured, len(r.objs))
	for i, o := range r.objs {
		out[i] = o.DeepCopy()
	}
	return out
}

// Targets is every kustomization of the tree built on its own, found the way `litemaas-ops check`
// finds them: an overlay a user adds is tested without editing any test.
func Targets(t *testing.T) []targets.Target {
	t.Helper()
	ts, err := targets.Targets(RepoRoot(t))
	require.NoError(t, err)
	return ts
}

// SampleOverlay is the overlay the tests break on purpose: the first app overlay with its own
// cluster-admin part (gitops/overlays/example, or a fork's copy of it).
func SampleOverlay(t *testing.T) targets.Target {
	t.Helper()
	for _, tg := range Targets(t) {
		if tg.Kind == targets.AppTarget && tg.Cluster == tg.Dir+"/cluster" && tg.Settings != "" {
			return tg
		}
	}
	t.Fatal("no overlay under gitops/overlays with its own cluster/ part")
	return targets.Target{}
}

// LiteMaaSOverlays are the overlays under gitops/overlays that render LiteMaaS.
func LiteMaaSOverlays(t *testing.T) []string {
	t.Helper()
	ks, err := targets.Kustomizations(RepoRoot(t))
	require.NoError(t, err)
	var out []string
	for _, k := range ks {
		if k.IsComponent() || !strings.HasPrefix(k.Dir, "gitops/overlays/") {
			continue
		}
		if objects.Find(Rendered(t, k.Dir), "Deployment", "backend") != nil {
			out = append(out, k.Dir)
		}
	}
	require.NotEmpty(t, out, "no overlay under gitops/overlays renders LiteMaaS")
	return out
}

// AppsDomain reads the apps domain an overlay sets.
func AppsDomain(t *testing.T, settingsFile string) string {
	t.Helper()
	d, err := targets.AppsDomain(RepoRoot(t), settingsFile)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Report fails the test with every problem a rule found.
func Report(t *testing.T, what string, ps []string) {
	t.Helper()
	for _, p := range ps {
		t.Errorf("%s: %s", what, p)
	}
}

// MustFind returns the object or fails the test.
func MustFind(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	o := objects.Find(objs, kind, name)
	if o == nil {
		t.Fatalf("%s/%s not rendered", kind, name)
	}
	return o
}

// PodSpecOf is the pod spec of a workload's template.
func PodSpecOf(t *testing.T, objs []*unstructured.Unstructured, kind, name string) map[string]any {
	t.Helper()
	o := MustFind(t, objs, kind, name)
	spec := objects.MapAt(o.Object, "spec", "template", "spec")
	if spec == nil {
		t.Fatalf("%s/%s has no pod template", kind, name)
	}
	return spec
}

// ContainerOf is the named container of a workload's template.
func ContainerOf(t *testing.T, objs []*unstructured.Unstructured, kind, name, cname string) map[string]any {
	t.Helper()
	c := objects.ContainerNamed(PodSpecOf(t, objs, kind, name), cname)
	if c == nil {
		t.Fatalf("%s/%s has no container %s", kind, name, cname)
	}
	return c
}

// Set sets a field of obj at path.
func Set(t *testing.T, obj map[string]any, value any, path ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(obj, value, path...); err != nil {
		t.Fatal(err)
	}
}

// SetEnv sets an env var of a workload's container to a literal value, adding it if absent.
func SetEnv(t *testing.T, objs []*unstructured.Unstructured, kind, name, cname, env, value string) {
	t.Helper()
	c := ContainerOf(t, objs, kind, name, cname)
	for _, e := range objects.Maps(objects.ListAt(c, "env")) {
		if objects.StringAt(e, "name") == env {
			delete(e, "valueFrom")
			e["value"] = value
			return
		}
	}
	c["env"] = append(objects.ListAt(c, "env"), map[string]any{"name": env, "value": value})
}

// DeleteObject returns objs without the named object.
func DeleteObject(objs []*unstructured.Unstructured, kind, name string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() != kind || o.GetName() != name {
			out = append(out, o)
		}
	}
	return out
}

// BrokenCase is one way to break a good rendering, and the problem a rule must then report.
type BrokenCase struct {
	Name  string
	Check func(t *testing.T, objs []*unstructured.Unstructured) []string
	Break func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured
	Want  string // a substring of one reported problem
}

// Plain adapts a rule over an overlay's objects to BrokenCase.Check.
func Plain(check func([]*unstructured.Unstructured) []string) func(*testing.T, []*unstructured.Unstructured) []string {
	return func(_ *testing.T, objs []*unstructured.Unstructured) []string { return check(objs) }
}

// brokenCases are the types a package's table may use for its cases: its own copy of BrokenCase, so
// that the table lists the fields in order (go vet wants another package's struct keyed).
type brokenCases interface {
	~struct {
		Name  string
		Check func(t *testing.T, objs []*unstructured.Unstructured) []string
		Break func(t *testing.T, objs []*unstructured.Unstructured) []*unstructured.Unstructured
		Want  string
	}
}

// RunBrokenCases shows that each rule can fail: the unbroken rendering of overlay passes the case's
// rule, and the rendering broken as the case says makes it report the case's problem.
func RunBrokenCases[C brokenCases](t *testing.T, overlay string, cases []C) {
	t.Helper()
	for _, c := range cases {
		tc := BrokenCase(c)
		t.Run(tc.Name, func(t *testing.T) {
			if got := tc.Check(t, Rendered(t, overlay)); len(got) != 0 {
				t.Fatalf("the unbroken rendering already fails this check: %v", got)
			}
			got := tc.Check(t, tc.Break(t, Rendered(t, overlay)))
			for _, p := range got {
				if strings.Contains(p, tc.Want) {
					return
				}
			}
			t.Errorf("check did not report %q; it reported %v", tc.Want, got)
		})
	}
}

// CopyTree copies the tree's gitops/ and images/ into a temporary root, for tests that add or change
// a kustomization.
func CopyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, dir := range []string{"gitops", "images"} {
		src := filepath.Join(RepoRoot(t), dir)
		err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			target := filepath.Join(dst, dir, rel)
			if d.IsDir() {
				return os.MkdirAll(target, 0o755)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		})
		require.NoError(t, err)
	}
	return dst
}
