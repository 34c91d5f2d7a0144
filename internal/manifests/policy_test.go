package manifests

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// What a kustomization renders, which decides the checks that apply to it.
type targetKind int

const (
	appTarget     targetKind = iota // an overlay of LiteMaaS itself, synced by Argo CD
	clusterTarget                   // the cluster-admin part of an overlay (OAuthClient, Groups)
	argocdTarget                    // Argo CD Applications
	crdTarget                       // test fixtures: CRDs for the server-side dry run
)

type target struct {
	dir  string // relative to the repository root
	kind targetKind
	// For an app overlay: the cluster-admin part rendered with the same settings, and the file holding
	// the apps domain.
	cluster  string
	settings string
}

// targets is every kustomization that is built on its own. Bases and components are built through
// these (TestEveryKustomizationIsRendered makes sure none is left out).
var targets = []target{
	{dir: "gitops/overlays/example", kind: appTarget, cluster: "gitops/overlays/example/cluster", settings: "gitops/overlays/example/settings/cluster-settings.yaml"},
	{dir: "gitops/overlays/example-with-options", kind: appTarget, cluster: "gitops/overlays/example/cluster", settings: "gitops/overlays/example/settings/cluster-settings.yaml"},
	{dir: "gitops/overlays/example-oauth-serviceaccount", kind: appTarget, cluster: "gitops/overlays/example/cluster", settings: "gitops/overlays/example/settings/cluster-settings.yaml"},
	// OIDC: no cluster-admin part at all.
	{dir: "gitops/overlays/example-oidc", kind: appTarget, settings: "gitops/overlays/example-oidc/settings/cluster-settings.yaml"},
	{dir: "gitops/overlays/example/cluster", kind: clusterTarget},
	{dir: "gitops/argocd/app-of-apps", kind: argocdTarget},
	{dir: "gitops/test/crds", kind: crdTarget},
}

var (
	renderMu    sync.Mutex
	renderCache = map[string][]*unstructured.Unstructured{}
)

// rendered renders a repository directory once per test binary; callers get deep copies.
func rendered(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	objs, ok := renderCache[dir]
	if !ok {
		var err error
		objs, err = Render(filepath.Join(repoRoot(t), dir))
		if err != nil {
			t.Fatalf("render %s: %v", dir, err)
		}
		renderCache[dir] = objs
	}
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func report(t *testing.T, what string, ps []string) {
	t.Helper()
	for _, p := range ps {
		t.Errorf("%s: %s", what, p)
	}
}

// appsDomain reads the apps domain an overlay sets.
func appsDomain(t *testing.T, settingsFile string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), settingsFile))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatalf("%s: %v", settingsFile, err)
	}
	d := cm.Data["appsDomain"]
	if d == "" || strings.Contains(d, Placeholder) || strings.Contains(d, "/") || strings.HasPrefix(d, ".") {
		t.Fatalf("%s: appsDomain %q is not a domain", settingsFile, d)
	}
	return d
}

// documents splits a YAML stream into its non-empty documents (separators are lines that are exactly
// "---", so a PEM block's "-----BEGIN" is no separator).
func documents(t *testing.T, data []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) > 0 {
			out = append(out, doc)
		}
	}
}

func TestPolicy(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.dir, func(t *testing.T) {
			objs := rendered(t, tg.dir)
			if len(objs) == 0 {
				t.Fatal("renders no objects")
			}
			report(t, "no Secret data", checkNoSecretData(objs))
			switch tg.kind {
			case appTarget:
				report(t, "pod security", checkPodSecurity(objs))
				report(t, "resources", checkResources(objs))
				report(t, "probes", checkProbes(objs))
				report(t, "hook Jobs", checkHookJobs(objs))
				report(t, "images pinned", checkImagesPinned(objs))
				report(t, "Secret references", checkSecretRefs(objs))
				report(t, "labels", checkLabels(objs))
				report(t, "namespace", checkNamespace(objs))
				report(t, "component settings", checkComponentSettings(objs))
				report(t, "sync Job", checkSyncJob(objs))
				report(t, "sync RBAC", checkSyncRBAC(objs))
				report(t, "models catalog", checkCatalog(objs))
				var cluster []*unstructured.Unstructured
				if tg.cluster != "" {
					cluster = rendered(t, tg.cluster)
				}
				report(t, "apps domain", checkDomainWiring(objs, cluster, appsDomain(t, tg.settings)))
			case clusterTarget:
				report(t, "labels", checkLabels(objs))
				for _, o := range objs {
					if o.GetNamespace() != "" {
						t.Errorf("%s: the cluster part holds cluster-scoped objects only, got namespace %q", ref(o), o.GetNamespace())
					}
				}
				for _, want := range [][2]string{{"OAuthClient", "litemaas-oauth-client"}, {"Group", "litemaas-admins"}, {"Group", "litemaas-users"}} {
					if Find(objs, want[0], want[1]) == nil {
						t.Errorf("%s/%s is missing", want[0], want[1])
					}
				}
				if oc := Find(objs, "OAuthClient", "litemaas-oauth-client"); oc != nil && stringAt(oc.Object, "grantMethod") != "auto" {
					t.Errorf("OAuthClient: grantMethod %q, want auto", stringAt(oc.Object, "grantMethod"))
				}
			case argocdTarget:
				report(t, "labels", checkLabels(objs))
				exists := func(p string) bool {
					fi, err := os.Stat(filepath.Join(repoRoot(t), p))
					return p != "" && err == nil && fi.IsDir()
				}
				for _, o := range objs {
					if o.GetKind() != "Application" {
						t.Errorf("%s: only Applications belong here", ref(o))
						continue
					}
					report(t, "Application", checkApplication(o, exists))
				}
				app := Find(objs, "Application", "step-06b-private-ai-litemaas")
				if app == nil {
					t.Fatal("Application step-06b-private-ai-litemaas is missing")
				}
				if p := stringAt(app.Object, "spec", "source", "path"); p != "gitops/overlays/example" {
					t.Errorf("step-06b-private-ai-litemaas: source.path %q, want gitops/overlays/example", p)
				}
				if ns := stringAt(app.Object, "spec", "destination", "namespace"); ns != "litemaas" {
					t.Errorf("step-06b-private-ai-litemaas: destination.namespace %q, want litemaas", ns)
				}
			case crdTarget:
				for _, o := range objs {
					report(t, "CRD", checkCRD(o))
				}
				for _, want := range []string{"routes.route.openshift.io", "oauthclients.oauth.openshift.io", "groups.user.openshift.io", "applications.argoproj.io"} {
					if Find(objs, "CustomResourceDefinition", want) == nil {
						t.Errorf("CRD %s is missing", want)
					}
				}
			}
		})
	}
}

// TestRootApplication checks gitops/argocd/root-app.yaml (a plain file, applied with oc apply -f).
func TestRootApplication(t *testing.T) {
	root := repoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "gitops/argocd/root-app.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	app := &unstructured.Unstructured{}
	if err := app.UnmarshalJSON(js); err != nil {
		t.Fatal(err)
	}
	exists := func(p string) bool {
		fi, err := os.Stat(filepath.Join(root, p))
		return p != "" && err == nil && fi.IsDir()
	}
	report(t, "root Application", checkApplication(app, exists))
	report(t, "labels", checkLabels([]*unstructured.Unstructured{app}))
	if p := stringAt(app.Object, "spec", "source", "path"); p != "gitops/argocd/app-of-apps" {
		t.Errorf("root Application: source.path %q, want gitops/argocd/app-of-apps", p)
	}
	// One fork, one repoURL: the children must point where the root does.
	for _, child := range rendered(t, "gitops/argocd/app-of-apps") {
		if got, want := stringAt(child.Object, "spec", "source", "repoURL"), stringAt(app.Object, "spec", "source", "repoURL"); got != want {
			t.Errorf("%s: repoURL %q differs from the root Application's %q", ref(child), got, want)
		}
	}
}

// TestImageInventory: images/images.yaml lists exactly the images the deployable kustomizations use.
func TestImageInventory(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "images/images.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	listed, err := imageSetImages(data)
	if err != nil {
		t.Fatalf("images/images.yaml: %v", err)
	}
	var used []string
	for _, tg := range targets {
		if tg.kind == crdTarget {
			continue
		}
		for _, img := range imagesOf(rendered(t, tg.dir)) {
			if !slices.Contains(used, img) {
				used = append(used, img)
			}
		}
	}
	sort.Strings(used)
	for _, img := range listed {
		if why := pinned(img); why != "" {
			t.Errorf("images/images.yaml: %s is not pinned: %s", img, why)
		}
	}
	report(t, "image inventory", checkImageInventory(used, listed))
}

// TestCRDsCoverRenderedKinds: every OpenShift or Argo CD kind the tree renders has a CRD in
// gitops/test/crds, so that the server-side dry run can validate it.
func TestCRDsCoverRenderedKinds(t *testing.T) {
	crds := rendered(t, "gitops/test/crds")
	for _, tg := range targets {
		if tg.kind == crdTarget {
			continue
		}
		report(t, tg.dir, checkCRDCoverage(rendered(t, tg.dir), crds))
	}
}

// TestNoSecretDataInTree scans every YAML file under gitops/, rendered or not.
func TestNoSecretDataInTree(t *testing.T) {
	root := repoRoot(t)
	err := filepath.WalkDir(filepath.Join(root, "gitops"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for i, doc := range documents(t, data) {
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				t.Errorf("%s document %d: not YAML: %v", rel, i+1, err)
				continue
			}
			if obj == nil {
				continue
			}
			report(t, rel, checkNoSecretData([]*unstructured.Unstructured{{Object: obj}}))
			if _, ok := obj["secretGenerator"]; ok {
				t.Errorf("%s: secretGenerator puts secret values in git", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEveryKustomizationIsRendered: every kustomization under gitops/ is a target or is reached from
// one (a base it builds on, a component it uses), so no kustomization escapes the checks.
func TestEveryKustomizationIsRendered(t *testing.T) {
	root := repoRoot(t)
	ks, err := Kustomizations(root)
	if err != nil {
		t.Fatal(err)
	}
	byDir := map[string]Kustomization{}
	for _, k := range ks {
		byDir[k.Dir] = k
	}
	reached := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if reached[dir] {
			return
		}
		reached[dir] = true
		k, ok := byDir[dir]
		if !ok {
			return
		}
		for _, entry := range append(slices.Clone(k.Resources), k.Components...) {
			sub := filepath.ToSlash(filepath.Clean(filepath.Join(dir, entry)))
			if _, isKustomization := byDir[sub]; isKustomization {
				visit(sub)
			}
		}
	}
	for _, tg := range targets {
		if _, ok := byDir[tg.dir]; !ok {
			t.Errorf("target %s has no kustomization.yaml", tg.dir)
		}
		visit(tg.dir)
	}
	for _, k := range ks {
		if !reached[k.Dir] {
			t.Errorf("%s: kustomization not rendered by any target of policy_test.go", k.Dir)
		}
	}
	// The render command builds every target on its own.
	dirs, err := RenderTargets(root)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tg := range targets {
		want = append(want, tg.dir)
	}
	sort.Strings(want)
	sort.Strings(dirs)
	if !slices.Equal(dirs, want) {
		t.Errorf("RenderTargets = %v, want the policy targets %v", dirs, want)
	}
}

// TestMatchesKubectlKustomize: Argo CD and `oc apply -k` run the kustomize CLI, not this library; when
// kubectl is installed, its kustomize must render the same objects in the same order.
func TestMatchesKubectlKustomize(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	for _, tg := range targets {
		t.Run(tg.dir, func(t *testing.T) {
			out, err := exec.Command(kubectl, "kustomize", filepath.Join(repoRoot(t), tg.dir)).Output()
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
			ours := rendered(t, tg.dir)
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
					t.Errorf("object %d (%s) differs between kubectl kustomize and Render", i, ref(ours[i]))
				}
			}
		})
	}
}

// TestRenderYAML: RenderYAML gives the same objects as Render.
func TestRenderYAML(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "gitops/overlays/example")
	data, err := RenderYAML(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := len(documents(t, data))
	if objs := rendered(t, "gitops/overlays/example"); n != len(objs) {
		t.Errorf("RenderYAML has %d documents, Render %d objects", n, len(objs))
	}
	if _, err := Render(filepath.Join(repoRoot(t), "gitops/no-such-dir")); err == nil {
		t.Error("Render of a missing directory did not fail")
	}
}
