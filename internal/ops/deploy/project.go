package deploy

import (
	"context"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

var appProjectGR = schema.GroupResource{Group: "argoproj.io", Resource: "appprojects"}

// projectFor reads the AppProject of the tree with its sourceRepos set to repo, the fork the
// Applications are applied with (so that --repo-url needs no commit to gitops/argocd/project.yaml).
func projectFor(root, repo string) (*unstructured.Unstructured, error) {
	proj, err := manifests.ReadProject(root)
	if err != nil {
		return nil, fmt.Errorf("reading the Argo CD project: %w", err)
	}
	if err := unstructured.SetNestedStringSlice(proj.Object, []string{repo}, "spec", "sourceRepos"); err != nil {
		return nil, err
	}
	return proj, nil
}

// preflightProject checks that every Application is in the tree's project at a branch or tag, and
// whether the user may apply the AppProject (a cluster admin applies it otherwise). It returns the
// AppProject to apply, or nil.
func preflightProject(ctx context.Context, c *cluster.Cluster, root, argoNS string, apps []*unstructured.Unstructured, add func(component, check, status, detail string)) (*unstructured.Unstructured, error) {
	for _, app := range apps {
		project, _, _ := unstructured.NestedString(app.Object, "spec", "project")
		rev, _, _ := unstructured.NestedString(app.Object, "spec", "source", "targetRevision")
		switch {
		case project != manifests.ProjectName:
			add("git", "project of "+app.GetName(), report.StatusFail, fmt.Sprintf("project %q: use project %s (%s), which limits what a commit can apply", project, manifests.ProjectName, manifests.ProjectFile))
		case rev == "" || rev == "HEAD":
			add("git", "revision of "+app.GetName(), report.StatusFail, fmt.Sprintf("targetRevision %q follows the default branch: set a branch (main) or a tag in %s/ and %s", rev, tree.AppOfAppsDir, tree.RootAppFile))
		}
	}
	repo, _, _ := unstructured.NestedString(apps[0].Object, "spec", "source", "repoURL")
	proj, err := projectFor(root, repo)
	if err != nil {
		add("openshift-gitops", "AppProject "+manifests.ProjectName, report.StatusFail, err.Error())
		return nil, nil
	}
	var denied []string
	for _, verb := range []string{"create", "patch"} {
		ok, err := c.Can(ctx, verb, appProjectGR, argoNS)
		if err != nil {
			return nil, err
		}
		if !ok {
			denied = append(denied, verb)
		}
	}
	if len(denied) > 0 {
		add("openshift-gitops", "AppProject "+manifests.ProjectName, report.StatusWarn, fmt.Sprintf("may not %s appprojects.argoproj.io in %s: a cluster admin applies %s once (oc apply -f), with sourceRepos %s",
			strings.Join(denied, "/"), argoNS, manifests.ProjectFile, repo))
		return nil, nil
	}
	add("openshift-gitops", "AppProject "+manifests.ProjectName, report.StatusOK, "sources "+repo+"; namespaces litemaas, "+argoNS)
	return proj, nil
}
