package manifests

import (
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

// What a kustomization renders, which decides the checks that apply to it (see Targets).
type targetKind = targets.TargetKind

const (
	appTarget     = targets.AppTarget     // an overlay of LiteMaaS itself, synced by Argo CD
	clusterTarget = targets.ClusterTarget // the cluster-admin part of an overlay (OAuthClient, Groups)
	argocdTarget  = targets.ArgoCDTarget  // Argo CD Applications
	crdTarget     = targets.CRDTarget     // test fixtures: CRDs for the server-side dry run
	haTarget      = targets.HATarget      // an overlay of the production profile (gitops/components/ha)
)

type target struct {
	dir  string // relative to the repository root
	kind targetKind
	// For an app overlay: the cluster-admin part rendered with the same settings, and the file holding
	// the apps domain.
	cluster  string
	settings string
	t        targets.Target
}

// treeTargets is every kustomization that is built on its own, found in the tree the way
// `litemaas-ops check` finds them: an overlay a user adds is checked without editing any test.
// A tree that cannot be read leaves treeTargets empty and fails TestPolicy with targetsErr.
var treeTargets, targetsErr = func() ([]target, error) {
	root, err := objects.RepoRoot()
	if err != nil {
		return nil, err
	}
	ts, err := targets.Targets(root)
	if err != nil {
		return nil, err
	}
	out := make([]target, 0, len(ts))
	for _, t := range ts {
		out = append(out, target{dir: t.Dir, kind: t.Kind, cluster: t.Cluster, settings: t.Settings, t: t})
	}
	return out, nil
}()

// sampleOverlay is the overlay the tests break on purpose: the first app overlay with its own
// cluster-admin part (gitops/overlays/example, or a fork's copy of it).
func sampleOverlay(t *testing.T) target {
	t.Helper()
	for _, tg := range treeTargets {
		if tg.kind == appTarget && tg.cluster == tg.dir+"/cluster" && tg.settings != "" {
			return tg
		}
	}
	t.Fatal("no overlay under gitops/overlays with its own cluster/ part")
	return target{}
}

// checker is shared by the tests of this package, so that each directory is rendered once.
var checker = func() *Checker {
	root, _ := objects.RepoRoot() // an error shows in targetsErr
	return NewChecker(root)
}()

// documents splits a YAML stream into its non-empty documents.
func documents(t *testing.T, data []byte) [][]byte {
	t.Helper()
	docs, err := objects.Documents(data)
	if err != nil {
		t.Fatal(err)
	}
	return docs
}

// TestPolicy runs every check on every kustomization of the tree, exactly as `litemaas-ops check` does.
func TestPolicy(t *testing.T) {
	require.NoError(t, targetsErr, "reading the kustomizations under gitops/")
	all := make([]targets.Target, 0, len(treeTargets))
	for _, tg := range treeTargets {
		all = append(all, tg.t)
	}
	require.NotEmpty(t, appOverlays(all), "no overlay found under gitops/overlays")
	for _, tg := range treeTargets {
		t.Run(tg.dir, func(t *testing.T) {
			for _, f := range checker.CheckTarget(tg.t, all) {
				t.Errorf("%s: %s", f.Rule, f.Msg)
			}
		})
	}
}

// TestTree runs the checks on the tree as a whole: the root Application, images/images.yaml, the CRDs'
// coverage of the rendered kinds, no Secret data in any file, every kustomization built.
func TestTree(t *testing.T) {
	all := make([]targets.Target, 0, len(treeTargets))
	for _, tg := range treeTargets {
		all = append(all, tg.t)
	}
	for _, f := range checker.CheckTree(all) {
		t.Errorf("%s", f)
	}
}

// TestMatchesKubectlKustomize: Argo CD and `oc apply -k` run the kustomize CLI, not this library; when
// kubectl is installed, its kustomize must render the same objects in the same order.
func TestMatchesKubectlKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	for _, tg := range treeTargets {
		t.Run(tg.dir, func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", filepath.Join(manifeststest.RepoRoot(t), tg.dir)).Output()
			if err != nil {
				t.Fatalf("kubectl kustomize: %v", err)
			}
			var theirs []map[string]any
			for _, doc := range documents(t, out) {
				var obj map[string]any
				if err := yaml.Unmarshal(doc, &obj); err != nil {
					t.Fatal(err)
				}
				if obj != nil {
					theirs = append(theirs, obj)
				}
			}
			ours := manifeststest.Rendered(t, tg.dir)
			if len(ours) != len(theirs) {
				t.Fatalf("kubectl kustomize renders %d objects, Render %d", len(theirs), len(ours))
			}
			for i := range ours {
				// Round-trip ours through YAML so that number types compare alike.
				data, err := yaml.Marshal(ours[i].Object)
				if err != nil {
					t.Fatal(err)
				}
				var obj map[string]any
				if err := yaml.Unmarshal(data, &obj); err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(obj, theirs[i]) {
					t.Errorf("object %d (%s) differs between kubectl kustomize and Render", i, objects.Ref(ours[i]))
				}
			}
		})
	}
}

// TestRenderYAML: RenderYAML gives the same objects as Render.
func TestRenderYAML(t *testing.T) {
	dir := filepath.Join(manifeststest.RepoRoot(t), sampleOverlay(t).dir)
	data, err := objects.RenderYAML(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := len(documents(t, data))
	if objs := manifeststest.Rendered(t, sampleOverlay(t).dir); n != len(objs) {
		t.Errorf("RenderYAML has %d documents, Render %d objects", n, len(objs))
	}
	if _, err := objects.Render(filepath.Join(manifeststest.RepoRoot(t), "gitops/no-such-dir")); err == nil {
		t.Error("Render of a missing directory did not fail")
	}
}
