package traffic

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/advisory"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

// Every overlay and cluster folder that renders a backend affected by litemaas#137 runs the guard.
func TestBackendGuardInEveryAffectedOverlay(t *testing.T) {
	ks, err := targets.Kustomizations(manifeststest.RepoRoot(t))
	require.NoError(t, err)
	n := 0
	for _, k := range ks {
		if k.IsComponent() || !(strings.HasPrefix(k.Dir, "gitops/overlays/") || strings.HasPrefix(k.Dir, "gitops/clusters/")) {
			continue
		}
		objs := manifeststest.Rendered(t, k.Dir)
		backend := objects.Find(objs, "Deployment", "backend")
		if backend == nil {
			continue
		}
		n++
		assert.True(t, HasGuard(backend), "%s renders %s without the backend guard", k.Dir, backendImage(backend))
		assert.Empty(t, CheckBackendGuard(objs), k.Dir)
	}
	assert.GreaterOrEqual(t, n, 8, "overlays and cluster folders rendering the backend")
}

// The check fails an affected backend without the guard, and says why; a fixed backend needs none; a
// guard wired so that requests could pass around it, or one that leaves the bypass open, fails too.
func TestBackendGuardRejects(t *testing.T) {
	const overlay = "gitops/overlays/example"
	dropGuard := func(t *testing.T, o []*unstructured.Unstructured) {
		spec := manifeststest.PodSpecOf(t, o, "Deployment", "backend")
		cs := spec["containers"].([]any)
		spec["containers"] = slices.DeleteFunc(cs, func(c any) bool { return c.(map[string]any)["name"] == GuardContainer })
	}
	setImage := func(image string) func(t *testing.T, o []*unstructured.Unstructured) {
		return func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend")["image"] = image
		}
	}
	editConf := func(old, new string) func(t *testing.T, o []*unstructured.Unstructured) {
		return func(t *testing.T, o []*unstructured.Unstructured) {
			for _, x := range o {
				if x.GetKind() == "ConfigMap" && strings.HasPrefix(x.GetName(), "backend-guard") {
					data := x.Object["data"].(map[string]any)
					conf := data[guardConfKey].(string)
					require.Contains(t, conf, old)
					data[guardConfKey] = strings.Replace(conf, old, new, 1)
				}
			}
		}
	}
	tests := []struct {
		name    string
		breakIt []func(t *testing.T, o []*unstructured.Unstructured)
		want    string // "" for no problem
	}{
		{"0.4.0 without the guard", []func(*testing.T, []*unstructured.Unstructured){dropGuard},
			"pins quay.io/rh-aiservices-bu/litemaas-backend:0.4.0, affected by litemaas#137"},
		{"0.3.1 without the guard", []func(*testing.T, []*unstructured.Unstructured){dropGuard, setImage("quay.io/rh-aiservices-bu/litemaas-backend:0.3.1")},
			"Add `- ../../components/backend-guard`"},
		{"0.4.1 without the guard", []func(*testing.T, []*unstructured.Unstructured){dropGuard, setImage("quay.io/rh-aiservices-bu/litemaas-backend:0.4.1")}, ""},
		{"backend on every address", []func(*testing.T, []*unstructured.Unstructured){func(t *testing.T, o []*unstructured.Unstructured) {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "HOST", "0.0.0.0")
		}}, `HOST is "0.0.0.0" behind the guard`},
		{"upstream elsewhere", []func(*testing.T, []*unstructured.Unstructured){editConf("server 127.0.0.1:8081;", "server 127.0.0.1:8082;")}, "upstream server is not the backend's HOST:PORT"},
		{"Origin passed", []func(*testing.T, []*unstructured.Unstructured){editConf(`proxy_set_header Origin "";`, "")}, "does not set Origin"},
		{"browser User-Agent", []func(*testing.T, []*unstructured.Unstructured){editConf(`"litemaas-backend-guard"`, `"Mozilla/5.0 guard"`)}, `contains "Mozilla"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := manifeststest.Rendered(t, overlay)
			for _, b := range tt.breakIt {
				b(t, objs)
			}
			ps := CheckBackendGuard(objs)
			if tt.want == "" {
				assert.Empty(t, ps)
				return
			}
			require.NotEmpty(t, ps)
			assert.Contains(t, strings.Join(ps, "\n"), tt.want)
		})
	}
}

// The guard's own port is the backend Service's; the backend's port behind it is in the truth table and
// reached by nobody.
func TestBackendGuardTruthTable(t *testing.T) {
	objs := manifeststest.Rendered(t, "gitops/overlays/example")
	table, ps := truthTable(objs)
	assert.Empty(t, ps)
	require.Contains(t, table, "backend-own:8081")
	header, rows, _ := strings.Cut(table, "\n")
	cols := strings.Fields(header)[3:] // after "from \ to"
	own := slices.Index(cols, "backend-own:8081")
	svc := slices.Index(cols, "backend:8080")
	require.True(t, own >= 0 && svc >= 0, header)
	for _, line := range strings.Split(strings.TrimSpace(rows), "\n") {
		f := strings.Fields(line)
		cells := f[len(f)-len(cols):]
		assert.Equal(t, "-", cells[own], "%s reaches the backend's own port", f[0])
		if f[0] == "frontend" || f[0] == "router" {
			assert.Equal(t, "allow", cells[svc], "%s reaches the guard", f[0])
		}
	}
	// A policy that admitted the backend's own port would show.
	np := manifeststest.MustFind(t, objs, "NetworkPolicy", "backend")
	manifeststest.Set(t, np.Object, []any{map[string]any{"from": []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{objects.LabelName: "frontend", objects.LabelPartOf: "litemaas"}}}}}}, "spec", "ingress")
	_, ps = truthTable(objs)
	assert.Contains(t, strings.Join(ps, "\n"), "frontend -> backend-own:8081 is allowed")
}

// images/advisories.yaml reviews exactly the images of images.yaml, and each advisory is of one of them.
func TestAdvisoryImagesArePins(t *testing.T) {
	f, err := advisory.Load()
	require.NoError(t, err)
	data, err := os.ReadFile(filepath.Join(manifeststest.RepoRoot(t), "images", "images.yaml"))
	require.NoError(t, err)
	listed, err := workload.ImageSetImages(data)
	require.NoError(t, err)
	var names []string
	for _, ref := range listed {
		name, _ := advisory.SplitImage(ref)
		names = append(names, name)
	}
	assert.ElementsMatch(t, names, f.Images, "advisories.yaml images: vs images.yaml")
	for _, a := range f.Advisories {
		assert.Contains(t, names, a.Image, a.ID)
	}
}
