package manifests

// The fleet ApplicationSet (gitops/argocd/fleet), rendered the way Argo CD's applicationset controller
// renders a git directory generator (argo-cd v3.5.0, applicationset/generators/git.go and
// applicationset/utils): every directory of the repository whose path matches a `directories` pattern
// (path.Match; `exclude: true` entries remove matches) becomes one parameter set
// {path: {path, basename, basenameNormalized, segments}}, and with goTemplate every string of the
// template is executed as a Go template with those parameters and the goTemplateOptions. The generated
// Applications are then validated like the tree's own and dry-run on the real API server. This proves
// the generator's output for this repository; it is not the controller itself (no repo-server, no
// sprig functions beyond what the template uses).

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

const fleetName = "litemaas-fleet"

// repoDirectories lists every directory under root (relative, forward slashes), as the repo-server's
// directory listing does: hidden directories (.git and others) are skipped.
func repoDirectories(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || p == root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			return filepath.SkipDir
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	return out, err
}

var invalidDNSNameChars = regexp.MustCompile("[^-a-z0-9.]")

// sanitizeName is the applicationset's basenameNormalized.
func sanitizeName(name string) string {
	name = invalidDNSNameChars.ReplaceAllString(strings.ToLower(name), "-")
	if len(name) > 253 {
		name = name[:253]
	}
	return strings.Trim(name, "-.")
}

// gitDirectoryParams applies a git directory generator's patterns to the directories of root.
func gitDirectoryParams(appSet *unstructured.Unstructured, root string) ([]map[string]any, error) {
	gens := objects.Maps(objects.ListAt(appSet.Object, "spec", "generators"))
	if len(gens) != 1 || objects.MapAt(gens[0], "git") == nil {
		return nil, fmt.Errorf("want exactly one git generator, got %v", gens)
	}
	items := objects.Maps(objects.ListAt(gens[0], "git", "directories"))
	if len(items) == 0 {
		return nil, fmt.Errorf("the git generator has no directories (a files generator is not rendered here)")
	}
	dirs, err := repoDirectories(root)
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, d := range dirs {
		include, exclude := false, false
		for _, it := range items {
			ok, err := path.Match(objects.StringAt(it, "path"), d)
			if err != nil {
				return nil, fmt.Errorf("pattern %q: %w", objects.StringAt(it, "path"), err)
			}
			if ok && objects.IsTrue(it, "exclude") {
				exclude = true
			} else if ok {
				include = true
			}
		}
		if include && !exclude {
			out = append(out, map[string]any{"path": map[string]any{
				"path": d, "basename": path.Base(d), "basenameNormalized": sanitizeName(path.Base(d)),
				"segments": strings.Split(d, "/"),
			}})
		}
	}
	return out, nil
}

// renderTemplate executes every string of the ApplicationSet's template with params.
func renderTemplate(appSet *unstructured.Unstructured, params map[string]any) (*unstructured.Unstructured, error) {
	if !objects.IsTrue(appSet.Object, "spec", "goTemplate") {
		return nil, fmt.Errorf("only goTemplate: true is rendered here")
	}
	opts := objects.Strs(objects.ListAt(appSet.Object, "spec", "goTemplateOptions"))
	var walk func(v any) (any, error)
	walk = func(v any) (any, error) {
		switch x := v.(type) {
		case string:
			tmpl, err := template.New("").Option(opts...).Parse(x)
			if err != nil {
				return nil, err
			}
			var b bytes.Buffer
			if err := tmpl.Execute(&b, params); err != nil {
				return nil, err
			}
			return b.String(), nil
		case map[string]any:
			out := map[string]any{}
			for k, e := range x {
				r, err := walk(e)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", k, err)
				}
				out[k] = r
			}
			return out, nil
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				r, err := walk(e)
				if err != nil {
					return nil, err
				}
				out[i] = r
			}
			return out, nil
		}
		return v, nil
	}
	tmpl := objects.MapAt(appSet.Object, "spec", "template")
	r, err := walk(tmpl)
	if err != nil {
		return nil, err
	}
	app := &unstructured.Unstructured{Object: r.(map[string]any)}
	app.SetAPIVersion("argoproj.io/v1alpha1")
	app.SetKind("Application")
	app.SetNamespace(appSet.GetNamespace())
	return app, nil
}

// generateFleet renders the Applications the ApplicationSet generates for the tree under root.
func generateFleet(appSet *unstructured.Unstructured, root string) ([]*unstructured.Unstructured, error) {
	params, err := gitDirectoryParams(appSet, root)
	if err != nil {
		return nil, err
	}
	var apps []*unstructured.Unstructured
	for _, p := range params {
		app, err := renderTemplate(appSet, p)
		if err != nil {
			return nil, err
		}
		apps = append(apps, app)
	}
	return apps, nil
}

// clusterFolders lists gitops/clusters/<name>.
func clusterFolders(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "gitops", "clusters"))
	require.NoError(t, err)
	var out []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestFleet: the ApplicationSet generates one valid Application per cluster folder, each syncing an
// overlay the policy checks cover.
func TestFleet(t *testing.T) {
	objs := manifeststest.Rendered(t, "gitops/argocd/fleet")
	manifeststest.Report(t, "labels", workload.CheckLabels(objs))
	appSet := objects.Find(objs, "ApplicationSet", fleetName)
	if appSet == nil || len(objs) != 1 {
		t.Fatalf("want exactly the ApplicationSet %s, got %d objects", fleetName, len(objs))
	}
	if !objects.IsTrue(appSet.Object, "spec", "syncPolicy", "preserveResourcesOnDeletion") {
		t.Errorf("ApplicationSet/%s: preserveResourcesOnDeletion must be true: removing a folder must not delete LiteMaaS", fleetName)
	}
	if !slices.Contains(objects.Strs(objects.ListAt(appSet.Object, "spec", "goTemplateOptions")), "missingkey=error") {
		t.Errorf("ApplicationSet/%s: goTemplateOptions lacks missingkey=error", fleetName)
	}
	root := manifeststest.RepoRoot(t)
	apps, err := generateFleet(appSet, root)
	require.NoError(t, err)
	folders := clusterFolders(t, root)
	require.NotEmpty(t, folders)
	require.Len(t, apps, len(folders), "one Application per folder of gitops/clusters")
	exists := func(p string) bool {
		fi, err := os.Stat(filepath.Join(root, p))
		return p != "" && err == nil && fi.IsDir()
	}
	var names []string
	for i, app := range apps {
		folder := folders[i]
		names = append(names, app.GetName())
		assert.Equal(t, "litemaas-"+folder, app.GetName())
		assert.Equal(t, "gitops/clusters/"+folder, objects.StringAt(app.Object, "spec", "source", "path"))
		assert.Equal(t, folder, objects.StringAt(app.Object, "spec", "destination", "name"), "the folder names the destination cluster")
		assert.Equal(t, "litemaas", objects.StringAt(app.Object, "spec", "destination", "namespace"))
		manifeststest.Report(t, "generated "+objects.Ref(app), checkApplication(app, exists))
		manifeststest.Report(t, "generated "+objects.Ref(app), workload.CheckLabels([]*unstructured.Unstructured{app}))
		// Every generated path is one of the policy targets, so the overlay it syncs is checked too.
		assert.True(t, slices.ContainsFunc(treeTargets, func(tg target) bool {
			return tg.dir == "gitops/clusters/"+folder && (tg.kind == appTarget || tg.kind == haTarget)
		}), "gitops/clusters/%s is not a policy target", folder)
	}
	assert.Len(t, names, len(slices.Compact(slices.Sorted(slices.Values(names)))), "Application names are unique")
}

// The generated Applications are valid Applications for the API server (strict dry run).
func TestFleetApplicationsDryRun(t *testing.T) {
	d := manifeststest.NewDryRunner(t, kube)
	appSet := objects.Find(manifeststest.Rendered(t, "gitops/argocd/fleet"), "ApplicationSet", fleetName)
	require.NotNil(t, appSet)
	apps, err := generateFleet(appSet, manifeststest.RepoRoot(t))
	require.NoError(t, err)
	require.NotEmpty(t, apps)
	for _, app := range apps {
		assert.NoError(t, d.Create(context.Background(), app), objects.Ref(app))
	}
}

// The generator semantics on a tree of our own: one Application per top-level folder, nested folders
// and hidden ones ignored, exclusions honoured, and a misspelled parameter fails.
func TestFleetGeneratorSemantics(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"gitops/clusters/a/settings", "gitops/clusters/b/cluster", "gitops/clusters/C_3", "gitops/clusters/.hidden", "gitops/other/x"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	appSet := objects.Find(manifeststest.Rendered(t, "gitops/argocd/fleet"), "ApplicationSet", fleetName)
	require.NotNil(t, appSet)
	apps, err := generateFleet(appSet, root)
	require.NoError(t, err)
	var got [][2]string
	for _, a := range apps {
		got = append(got, [2]string{a.GetName(), objects.StringAt(a.Object, "spec", "destination", "name")})
	}
	assert.ElementsMatch(t, [][2]string{{"litemaas-a", "a"}, {"litemaas-b", "b"}, {"litemaas-c-3", "C_3"}}, got)

	excluded := appSet.DeepCopy()
	items := objects.ListAt(objects.Maps(objects.ListAt(excluded.Object, "spec", "generators"))[0], "git", "directories")
	items = append(items, map[string]any{"path": "gitops/clusters/b", "exclude": true})
	require.NoError(t, unstructured.SetNestedSlice(objects.Maps(objects.ListAt(excluded.Object, "spec", "generators"))[0], items, "git", "directories"))
	apps, err = generateFleet(excluded, root)
	require.NoError(t, err)
	assert.Len(t, apps, 2)

	broken := appSet.DeepCopy()
	require.NoError(t, unstructured.SetNestedField(broken.Object, "{{ .path.basenam }}", "spec", "template", "spec", "destination", "name"))
	_, err = generateFleet(broken, root)
	require.Error(t, err, "missingkey=error")
}
