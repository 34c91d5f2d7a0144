package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

// The Argo CD project every Application of the tree belongs to, and the file that declares it (a plain
// file applied by `make deploy` or `oc apply -f`, never synced by Argo CD, so that no commit can widen it).
const (
	ProjectName = "litemaas"
	ProjectFile = "gitops/argocd/project.yaml"
)

// forbiddenClusterKinds may never be in the project's clusterResourceWhitelist: with either, a commit to
// the fork would grant itself any right on the cluster.
var forbiddenClusterKinds = []string{"ClusterRole", "ClusterRoleBinding"}

// checkSource: an Application (or an ApplicationSet's template or generator) in project litemaas, at a
// branch or a tag. HEAD follows whatever the remote's default branch is at the time of each poll, so a
// change of the default branch would deploy it without a commit on the branch the user reviews.
func checkSource(what, project, revision string) []string {
	var p objects.Problems
	switch project {
	case ProjectName:
	case "", "default":
		p.Addf("%s: project %q: use project %s (%s), which limits what a commit can apply", what, project, ProjectName, ProjectFile)
	default:
		p.Addf("%s: project %q, want %s", what, project, ProjectName)
	}
	switch strings.TrimSpace(revision) {
	case "", "HEAD":
		p.Addf("%s: revision %q follows the repository's default branch: name a branch (main) or a tag", what, revision)
	}
	return p
}

// checkApplicationSource runs checkSource on an Application.
func checkApplicationSource(app *unstructured.Unstructured) []string {
	return checkSource(objects.Ref(app), objects.StringAt(app.Object, "spec", "project"), objects.StringAt(app.Object, "spec", "source", "targetRevision"))
}

// checkApplicationSetSource runs checkSource on an ApplicationSet's template and on every git
// generator's revision.
func checkApplicationSetSource(set *unstructured.Unstructured) []string {
	p := objects.Problems(checkSource(objects.Ref(set)+" template", objects.StringAt(set.Object, "spec", "template", "spec", "project"),
		objects.StringAt(set.Object, "spec", "template", "spec", "source", "targetRevision")))
	for i, g := range objects.Maps(objects.ListAt(set.Object, "spec", "generators")) {
		if git := objects.MapAt(g, "git"); git != nil {
			if rev := objects.StringAt(git, "revision"); rev == "" || rev == "HEAD" {
				p.Addf("%s generators[%d].git: revision %q follows the repository's default branch: name a branch (main) or a tag", objects.Ref(set), i, rev)
			}
		}
	}
	return p
}

// kindRef is a group and kind as an AppProject lists them.
type kindRef struct{ Group, Kind string }

func (k kindRef) String() string {
	if k.Group == "" {
		return k.Kind
	}
	return k.Kind + "." + k.Group
}

// appliedKinds returns the cluster-scoped and the namespaced kinds of objs. Rendered by kustomize with
// the overlays' namespace, an object without a namespace is cluster-scoped.
func appliedKinds(objs []*unstructured.Unstructured) (cluster, namespaced []kindRef) {
	seen := map[kindRef]bool{}
	for _, o := range objs {
		k := kindRef{o.GroupVersionKind().Group, o.GetKind()}
		if seen[k] {
			continue
		}
		seen[k] = true
		if o.GetNamespace() == "" {
			cluster = append(cluster, k)
		} else {
			namespaced = append(namespaced, k)
		}
	}
	return cluster, namespaced
}

func sortKinds(ks []kindRef) []kindRef {
	sort.Slice(ks, func(i, j int) bool { return ks[i].String() < ks[j].String() })
	return slices.Compact(ks)
}

// ReadProject reads the AppProject of ProjectFile under root.
func ReadProject(root string) (*unstructured.Unstructured, error) {
	return readObjectFile(root, ProjectFile)
}

// projectKinds reads a whitelist of the AppProject.
func projectKinds(proj *unstructured.Unstructured, field string) ([]kindRef, []string) {
	var out []kindRef
	var p objects.Problems
	for _, e := range objects.Maps(objects.ListAt(proj.Object, "spec", field)) {
		k := kindRef{objects.StringAt(e, "group"), objects.StringAt(e, "kind")}
		if strings.Contains(k.Group, "*") || strings.Contains(k.Kind, "*") {
			p.Addf("AppProject/%s: spec.%s has the wildcard %s: list the kinds", proj.GetName(), field, k)
		}
		out = append(out, k)
	}
	return sortKinds(out), p
}

// checkProject holds the AppProject against the tree: the kinds Argo CD applies (the overlays' and
// the app-of-apps' objects) are exactly the kinds it allows, no ClusterRole(Binding), sources only the
// fork the Applications name, destinations only namespaces litemaas and openshift-gitops.
func (c *Checker) checkProject(all []targets.Target) []string {
	proj, err := ReadProject(c.Root)
	if err != nil {
		return []string{err.Error()}
	}
	return c.checkProjectObject(proj, all)
}

func (c *Checker) checkProjectObject(proj *unstructured.Unstructured, all []targets.Target) []string {
	var p objects.Problems
	if proj.GetKind() != "AppProject" || proj.GetName() != ProjectName || proj.GetNamespace() != "openshift-gitops" {
		p.Addf("want AppProject %s in namespace openshift-gitops, got %s in %q", ProjectName, objects.Ref(proj), proj.GetNamespace())
	}
	p = append(p, workload.CheckLabels([]*unstructured.Unstructured{proj})...)

	var cluster, namespaced []kindRef
	for _, t := range all {
		// What Argo CD syncs: the overlays, and the Applications of the app-of-apps. The fleet's
		// ApplicationSet and the cluster-admin parts are applied by hand.
		if t.Kind != targets.AppTarget && t.Kind != targets.HATarget && t.Dir != appOfAppsDir {
			continue
		}
		objs, err := c.Render(t.Dir)
		if err != nil {
			continue // reported by CheckTarget
		}
		cl, ns := appliedKinds(objs)
		cluster, namespaced = append(cluster, cl...), append(namespaced, ns...)
	}
	cluster, namespaced = sortKinds(cluster), sortKinds(namespaced)
	allowedCluster, ps := projectKinds(proj, "clusterResourceWhitelist")
	p = append(p, ps...)
	allowedNamespaced, ps := projectKinds(proj, "namespaceResourceWhitelist")
	p = append(p, ps...)
	for _, k := range allowedCluster {
		if k.Group == "rbac.authorization.k8s.io" && slices.Contains(forbiddenClusterKinds, k.Kind) {
			p.Addf("clusterResourceWhitelist allows %s: a commit could then grant itself any right on the cluster; keep cluster RBAC in the cluster-admin part (oc apply -k)", k)
		}
	}
	p = append(p, diffKinds("clusterResourceWhitelist", "cluster-scoped", cluster, allowedCluster)...)
	p = append(p, diffKinds("namespaceResourceWhitelist", "namespaced", namespaced, allowedNamespaced)...)

	// Sources: the fork the root Application names, and nothing else.
	if root, err := readObjectFile(c.Root, rootAppFile); err == nil {
		want := objects.StringAt(root.Object, "spec", "source", "repoURL")
		if got := objects.Strs(objects.ListAt(proj.Object, "spec", "sourceRepos")); len(got) != 1 || got[0] != want {
			p.Addf("spec.sourceRepos %v, want exactly the repoURL of %s: [%s]", got, rootAppFile, want)
		}
	}
	for i, d := range objects.Maps(objects.ListAt(proj.Object, "spec", "destinations")) {
		ns := objects.StringAt(d, "namespace")
		if ns != "litemaas" && ns != "openshift-gitops" {
			p.Addf("spec.destinations[%d]: namespace %q, want litemaas (LiteMaaS) or openshift-gitops (the child Applications)", i, ns)
		}
		if ns == "openshift-gitops" && objects.StringAt(d, "server") != "https://kubernetes.default.svc" {
			p.Addf("spec.destinations[%d]: namespace openshift-gitops only on this cluster (server https://kubernetes.default.svc)", i)
		}
	}
	return p
}

// diffKinds reports kinds used but not allowed (Argo CD would refuse the sync) and allowed but unused
// (more than the tree needs).
func diffKinds(field, scope string, used, allowed []kindRef) []string {
	var p objects.Problems
	for _, k := range used {
		if !slices.Contains(allowed, k) {
			p.Addf("the tree applies the %s kind %s through Argo CD but spec.%s does not allow it (group %q, kind %s): Argo CD would refuse the sync", scope, k, field, k.Group, k.Kind)
		}
	}
	for _, k := range allowed {
		if !slices.Contains(used, k) {
			p.Addf("spec.%s allows %s, which no overlay renders: remove it", field, k)
		}
	}
	return p
}

// readObjectFile reads one object from a YAML file relative to root.
func readObjectFile(root, rel string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not YAML: %w", rel, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("%s: %w", rel, err)
	}
	return obj, nil
}
