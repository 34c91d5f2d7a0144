package manifests

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/admission"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/ha"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/parity"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/syncjob"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/traffic"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/wiring"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

// Finding is one policy problem: where (the kustomization), which rule, and what is wrong (naming
// the object).
type Finding struct {
	Target string
	Rule   string
	Msg    string
}

func (f Finding) String() string { return f.Target + ": " + f.Rule + ": " + f.Msg }

// Checker runs the policy checks on a repository tree. The tests and `litemaas-ops check` use the same
// Checker, so what passes before a push is what the tests accept. Renders are cached; safe for
// concurrent use.
type Checker struct {
	Root string

	mu    sync.Mutex
	cache map[string]rendering
}

type rendering struct {
	objs []*unstructured.Unstructured
	err  error
}

// NewChecker returns a Checker for the tree at root.
func NewChecker(root string) *Checker { return &Checker{Root: root, cache: map[string]rendering{}} }

// Render renders dir (relative to Root) once and returns deep copies of its objects, which callers may
// change.
func (c *Checker) Render(dir string) ([]*unstructured.Unstructured, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cache == nil {
		c.cache = map[string]rendering{}
	}
	r, ok := c.cache[dir]
	if !ok {
		r.objs, r.err = objects.Render(filepath.Join(c.Root, filepath.FromSlash(dir)))
		c.cache[dir] = r
	}
	if r.err != nil {
		return nil, r.err
	}
	out := make([]*unstructured.Unstructured, len(r.objs))
	for i, o := range r.objs {
		out[i] = o.DeepCopy()
	}
	return out, nil
}

// CheckAll runs every check on every target of the tree, and the checks on the tree as a whole.
func (c *Checker) CheckAll() ([]Finding, error) {
	ts, err := targets.Targets(c.Root)
	if err != nil {
		return nil, err
	}
	var out []Finding
	for _, t := range ts {
		out = append(out, c.CheckTarget(t, ts)...)
	}
	return append(out, c.CheckTree(ts)...), nil
}

// CheckTarget runs the checks that apply to the kind of t; all lists every target of the tree (an
// Application must point at one of its overlays).
func (c *Checker) CheckTarget(t targets.Target, all []targets.Target) []Finding {
	var out []Finding
	add := func(rule string, ps []string) {
		for _, p := range ps {
			out = append(out, Finding{Target: t.Dir, Rule: rule, Msg: p})
		}
	}
	objs, err := c.Render(t.Dir)
	if err != nil {
		add("kustomize build", []string{err.Error()})
		return out
	}
	if len(objs) == 0 {
		add("kustomize build", []string{"renders no objects"})
		return out
	}
	add("no Secret data", workload.CheckNoSecretData(objs))
	if slices.ContainsFunc(objs, func(o *unstructured.Unstructured) bool { return o.GetKind() == "Subscription" }) {
		cat, err := LoadOLMCatalog(c.Root)
		if err != nil {
			add("OLM Subscription", []string{err.Error()})
		} else {
			add("OLM Subscription", checkSubscriptions(objs, cat))
		}
	}
	switch t.Kind {
	case targets.AppTarget:
		for _, ac := range appChecks {
			add(ac.rule, ac.check(objs))
		}
		add("models catalog", wiring.CheckCatalogFile(objs, c.Root, t.Catalog))
		add("apps domain", c.checkDomain(t, objs))
		add("parity", c.checkParity(t, objs))
		add("storage settings", c.checkStorage(t, objs))
		add("admission policy", c.checkAdmissionPolicies(t, objs))
	case targets.HATarget:
		for _, ac := range haChecks {
			add(ac.rule, ac.check(objs))
		}
		add("models catalog", wiring.CheckCatalogFile(objs, c.Root, t.Catalog))
		add("apps domain", c.checkDomain(t, objs))
		add("ha profile", c.checkHA(t, objs))
		add("storage settings", c.checkStorage(t, objs))
		add("admission policy", c.checkAdmissionPolicies(t, objs))
	case targets.ClusterTarget:
		add("labels", workload.CheckLabels(objs))
		add("cluster part", checkClusterPart(objs))
	case targets.ArgoCDTarget:
		add("labels", workload.CheckLabels(objs))
		add("Application", c.checkApplications(t.Dir, objs, all))
	case targets.CRDTarget:
		var ps []string
		for _, o := range objs {
			// Upstream CRDs are what their projects publish; their few free-form fields (Helm
			// values) are theirs. Only a hand-written CRD must be closed, or the dry run would
			// validate nothing.
			if copiedCRDs[o.GetName()] {
				continue
			}
			ps = append(ps, checkCRD(o)...)
		}
		for _, want := range []string{"routes.route.openshift.io", "oauthclients.oauth.openshift.io", "groups.user.openshift.io", "applications.argoproj.io"} {
			if objects.Find(objs, "CustomResourceDefinition", want) == nil {
				ps = append(ps, "CRD "+want+" is missing")
			}
		}
		add("CRD", ps)
	}
	return out
}

// objectCheck is one rule over an overlay's objects, by rule name.
type objectCheck struct {
	rule  string
	check func([]*unstructured.Unstructured) []string
}

// commonChecks apply to every overlay, single-instance and production alike. A new check is one
// more entry here (or in the profile's own list below): the tests and `litemaas-ops check` then
// both run it.
var commonChecks = []objectCheck{
	{"Pod Security restricted", admission.CheckPodSecurity},
	{"restricted-v2", workload.CheckRestrictedV2},
	{"hook Jobs", syncjob.CheckHookJobs},
	{"labels", workload.CheckLabels},
	{"namespace", workload.CheckNamespace},
	{"sync RBAC", syncjob.CheckSyncRBAC},
	{"backup volume", parity.CheckBackupVolume},
	{"Redis", parity.CheckRedisWiring},
	{"schema update", parity.CheckSchemaUpdate},
	{"drift CronJob", syncjob.CheckDriftCronJob},
	{"NetworkPolicy", traffic.CheckNetworkPolicies},
	{"HSTS", workload.CheckHSTS},
	{"service account tokens", workload.CheckServiceAccountTokens},
	{"read-only root", workload.CheckReadOnlyRoot},
	{"login TLS", workload.CheckLoginTLS},
	{"TLS verification", workload.CheckTLSVerification},
	{"Job deadlines", syncjob.CheckJobDeadlines},
	{"backend guard", traffic.CheckBackendGuard},
	{"ServiceAccount pull secrets", ha.CheckServiceAccountPullSecrets},
}

// appChecks are the checks of an app overlay that need nothing but its objects.
var appChecks = append(slices.Clip(commonChecks),
	objectCheck{"Secret references", wiring.CheckSecretRefs},
	objectCheck{"component settings", wiring.CheckComponentSettings},
	objectCheck{"sync Job", syncjob.CheckSyncJob},
	objectCheck{"database roles", workload.CheckDatabaseRoles},
)

// checkParity holds the overlay against the parity table (gitops/parity.yaml) and its rate limits
// against its cluster-settings.
func (c *Checker) checkParity(t targets.Target, objs []*unstructured.Unstructured) []string {
	if t.Settings == "" {
		return nil // checkDomain reports it
	}
	settings, err := targets.SettingsData(c.Root, t.Settings)
	if err != nil {
		return []string{err.Error()}
	}
	p := objects.Problems(parity.CheckRateLimits(objs, settings))
	rows, err := parity.ReadRows(c.Root)
	if err != nil {
		return append(p, err.Error())
	}
	components, err := targets.ComponentsIn(c.Root, t.Dir)
	if err != nil {
		return append(p, err.Error())
	}
	return append(p, parity.Check(rows, objs, components, settings)...)
}

// checkDomain runs CheckDomainWiring with the overlay's apps domain and cluster-admin part.
func (c *Checker) checkDomain(t targets.Target, objs []*unstructured.Unstructured) []string {
	if t.Settings == "" {
		return []string{"no ConfigMap " + targets.ClusterSettingsName + " (data.appsDomain) in what the overlay builds; copy settings/ from gitops/overlays/example"}
	}
	domain, err := targets.AppsDomain(c.Root, t.Settings)
	if err != nil {
		return []string{err.Error()}
	}
	var cluster []*unstructured.Unstructured
	if t.Cluster != "" {
		if cluster, err = c.Render(t.Cluster); err != nil {
			return []string{fmt.Sprintf("cluster part %s: %v", t.Cluster, err)}
		}
	}
	// oauthIssuer (component oauth-issuer) replaces the derived OAuth issuer; set without the
	// component, the check reports the derived one as wrong.
	settings, err := targets.SettingsData(c.Root, t.Settings)
	if err != nil {
		return []string{err.Error()}
	}
	return wiring.CheckDomainWiring(objs, cluster, domain, settings["oauthIssuer"])
}

// checkClusterPart: cluster-scoped objects only, the OAuthClient and the two Groups.
func checkClusterPart(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		// The one exception: OLM's Subscription (ha/cnpg-operator) lives in the operators' namespace.
		if o.GetNamespace() != "" && (o.GetKind() != "Subscription" || o.GetNamespace() != "openshift-operators") {
			p.Addf("%s: the cluster part holds cluster-scoped objects only, got namespace %q", objects.Ref(o), o.GetNamespace())
		}
	}
	for _, want := range [][2]string{{"OAuthClient", "litemaas-oauth-client"}, {"Group", "litemaas-admins"}, {"Group", "litemaas-users"}} {
		if objects.Find(objs, want[0], want[1]) == nil {
			p.Addf("%s/%s is missing", want[0], want[1])
		}
	}
	if oc := objects.Find(objs, "OAuthClient", "litemaas-oauth-client"); oc != nil && objects.StringAt(oc.Object, "grantMethod") != "auto" {
		p.Addf("OAuthClient/litemaas-oauth-client: grantMethod %q, want auto", objects.StringAt(oc.Object, "grantMethod"))
	}
	return p
}

// appOverlays returns the directories of the app targets.
func appOverlays(all []targets.Target) []string {
	var out []string
	for _, t := range all {
		if t.Kind == targets.AppTarget || t.Kind == targets.HATarget {
			out = append(out, t.Dir)
		}
	}
	return out
}

func (c *Checker) dirExists(p string) bool {
	fi, err := os.Stat(filepath.Join(c.Root, filepath.FromSlash(p)))
	return p != "" && err == nil && fi.IsDir()
}

// checkApplications: Applications (or a fleet's ApplicationSets), each Application as checkApplication
// wants it, and in gitops/argocd/app-of-apps the LiteMaaS Application syncing one of the tree's overlays
// into namespace litemaas.
func (c *Checker) checkApplications(dir string, objs []*unstructured.Unstructured, all []targets.Target) []string {
	var p objects.Problems
	for _, o := range objs {
		switch o.GetKind() {
		case "Application":
			p = append(p, checkApplication(o, c.dirExists)...)
		case "ApplicationSet":
			// A fleet's generator of Applications; its other checks belong to the fleet layout.
			p = append(p, checkApplicationSetSource(o)...)
		default:
			p.Addf("%s: only Applications and ApplicationSets belong here", objects.Ref(o))
		}
	}
	if path.Clean(dir) != appOfAppsDir {
		return p
	}
	app := objects.Find(objs, "Application", appName)
	if app == nil {
		p.Addf("Application/%s is missing", appName)
		return p
	}
	overlays := appOverlays(all)
	if path := objects.StringAt(app.Object, "spec", "source", "path"); !slices.Contains(overlays, path) {
		p.Addf("Application/%s: source.path %q is not an overlay of this tree (%s)", appName, path, strings.Join(overlays, ", "))
	}
	if ns := objects.StringAt(app.Object, "spec", "destination", "namespace"); ns != "litemaas" {
		p.Addf("Application/%s: destination.namespace %q, want litemaas", appName, ns)
	}
	return p
}

// appName is the Application that syncs LiteMaaS (the runbook's step 06b).
const appName = "step-06b-private-ai-litemaas"

// Files of the tree that the tree-wide checks read.
const (
	rootAppFile    = "gitops/argocd/root-app.yaml"
	appOfAppsDir   = "gitops/argocd/app-of-apps"
	imageInventory = "images/images.yaml"
)

// CheckTree runs the checks on the tree as a whole: the root Application, the image inventory, the
// CRDs' coverage of the rendered kinds, no Secret data in any file, every kustomization built.
func (c *Checker) CheckTree(all []targets.Target) []Finding {
	var out []Finding
	add := func(target, rule string, ps []string) {
		for _, p := range ps {
			out = append(out, Finding{Target: target, Rule: rule, Msg: p})
		}
	}
	add(rootAppFile, "root Application", c.checkRootApplication())
	add(ProjectFile, "AppProject", c.checkProject(all))

	data, err := os.ReadFile(filepath.Join(c.Root, imageInventory))
	listed, perr := workload.ImageSetImages(data)
	switch {
	case err != nil:
		add(imageInventory, "image inventory", []string{err.Error()})
	case perr != nil:
		add(imageInventory, "image inventory", []string{perr.Error()})
	default:
		var used []string
		for _, t := range all {
			if t.Kind == targets.CRDTarget {
				continue
			}
			objs, err := c.Render(t.Dir)
			if err != nil {
				continue // reported by CheckTarget
			}
			for _, img := range objects.ImagesOf(objs) {
				if !slices.Contains(used, img) {
					used = append(used, img)
				}
			}
		}
		sort.Strings(used)
		var ps []string
		for _, img := range listed {
			if why := workload.Pinned(img); why != "" {
				ps = append(ps, fmt.Sprintf("%s is not pinned: %s", img, why))
			}
		}
		add(imageInventory, "image inventory", append(ps, workload.CheckImageInventory(used, listed)...))
	}

	var crds []*unstructured.Unstructured
	for _, t := range all {
		if t.Kind == targets.CRDTarget {
			objs, err := c.Render(t.Dir)
			if err == nil {
				crds = append(crds, objs...)
			}
		}
	}
	for _, t := range all {
		if t.Kind == targets.CRDTarget {
			continue
		}
		if objs, err := c.Render(t.Dir); err == nil {
			add(t.Dir, "CRD coverage", checkCRDCoverage(objs, crds))
		}
	}

	ps, err := checkNoSecretDataInTree(c.Root)
	if err != nil {
		ps = append(ps, err.Error())
	}
	add("gitops", "no Secret data", ps)

	ps, err = targets.CheckEveryKustomizationBuilt(c.Root, all)
	if err != nil {
		ps = append(ps, err.Error())
	}
	add("gitops", "every kustomization built", ps)
	return out
}

// checkRootApplication checks gitops/argocd/root-app.yaml (a plain file, applied with oc apply -f):
// an Application on gitops/argocd/app-of-apps whose children point at the same fork.
func (c *Checker) checkRootApplication() []string {
	data, err := os.ReadFile(filepath.Join(c.Root, rootAppFile))
	if err != nil {
		return []string{err.Error()}
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return []string{"not YAML: " + err.Error()}
	}
	app := &unstructured.Unstructured{}
	if err := app.UnmarshalJSON(js); err != nil {
		return []string{err.Error()}
	}
	p := objects.Problems(checkApplication(app, c.dirExists))
	p = append(p, workload.CheckLabels([]*unstructured.Unstructured{app})...)
	if path := objects.StringAt(app.Object, "spec", "source", "path"); path != appOfAppsDir {
		p.Addf("%s: source.path %q, want %s", objects.Ref(app), path, appOfAppsDir)
	}
	// One fork, one repoURL: the children must point where the root does.
	children, err := c.Render(appOfAppsDir)
	if err != nil {
		return append(p, err.Error())
	}
	for _, child := range children {
		if got, want := objects.StringAt(child.Object, "spec", "source", "repoURL"), objects.StringAt(app.Object, "spec", "source", "repoURL"); got != want {
			p.Addf("%s: repoURL %q differs from the root Application's %q", objects.Ref(child), got, want)
		}
	}
	return p
}

// checkNoSecretDataInTree scans every YAML file under gitops/, rendered or not.
func checkNoSecretDataInTree(root string) ([]string, error) {
	var p objects.Problems
	err := filepath.WalkDir(filepath.Join(root, "gitops"), func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		docs, err := objects.Documents(data)
		if err != nil {
			p.Addf("%s: %v", rel, err)
			return nil
		}
		for i, doc := range docs {
			var obj map[string]any
			if err := yaml.Unmarshal(doc, &obj); err != nil {
				p.Addf("%s document %d: not YAML: %v", rel, i+1, err)
				continue
			}
			if obj == nil {
				continue
			}
			for _, s := range workload.CheckNoSecretData([]*unstructured.Unstructured{{Object: obj}}) {
				p.Addf("%s: %s", rel, s)
			}
			if _, ok := obj["secretGenerator"]; ok {
				p.Addf("%s: secretGenerator puts secret values in git", rel)
			}
		}
		return nil
	})
	return p, err
}

// workloadPolicyDir holds the admission policies every cluster part ships (gitops/cluster includes it).
const workloadPolicyDir = "gitops/cluster-policy"

// checkAdmissionPolicies judges the overlay's objects with the ValidatingAdmissionPolicies of its
// cluster-admin part (gitops/cluster-policy when it has none), as the API server will when Argo CD
// applies them. A namespace's labels are those of its Namespace object in the overlay or the cluster
// part, plus the kubernetes.io/metadata.name label the API server sets.
func (c *Checker) checkAdmissionPolicies(t targets.Target, objs []*unstructured.Unstructured) []string {
	dir := t.Cluster
	if dir == "" {
		dir = workloadPolicyDir
	}
	cluster, err := c.Render(dir)
	if err != nil {
		return []string{fmt.Sprintf("rendering %s for its admission policies: %v", dir, err)}
	}
	nsLabels := func(ns string) map[string]string {
		out := map[string]string{}
		for _, o := range slices.Concat(cluster, objs) {
			if o.GetKind() == "Namespace" && o.GetName() == ns {
				maps.Copy(out, o.GetLabels())
			}
		}
		out["kubernetes.io/metadata.name"] = ns
		return out
	}
	return admission.CheckPolicies(cluster, objs, nsLabels)
}
