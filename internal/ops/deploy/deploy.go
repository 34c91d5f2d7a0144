// Package deploy is `litemaas-ops deploy`: preflight (the cluster, OpenShift GitOps, the fork, the
// overlay, the job image it runs and its attestation), the AppProject, the cluster-admin part and the
// Argo CD Application(s) applied, the wait for Argo CD's sync and the PostSync job, then the access URLs.
//
// `deploy --init-overlay NAME` is deploy's first run on a new cluster: deploy runs the preflight, asks the
// questions and checks the job image of the overlay it creates; internal/ops/initoverlay writes the files
// (the overlay for the cluster's apps domain, the fork and revision in gitops/argocd).
package deploy

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/initoverlay"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// refreshAnnotation asks Argo CD to compare the Application with git now instead of at its next poll
// (up to three minutes later); the controller removes it once done. Deploy waits for that removal, so a
// status left over from before the apply is never mistaken for the result.
const refreshAnnotation = "argocd.argoproj.io/refresh"

// NewCommand is `litemaas-ops deploy`; it asks its questions on stdin, the connection logs to stderr.
func NewCommand(stdin io.Reader, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name: "deploy", Args: "[--overlay DIR] [--repo-url URL] [--timeout 20m] [--yes] [--init-overlay NAME [--domain APPS_DOMAIN] [--job-image REF] [--revision BRANCH|TAG]]",
		Summary: "preflight, apply, wait for sync + health + PostSync job, print the URLs",
		Help: "With --init-overlay NAME, creates gitops/overlays/NAME for the cluster's apps domain and stops; with\n" +
			"--domain too, it needs no cluster. It asks for the job image the hook Jobs run (or takes --job-image), the fork (--repo-url) and the\n" +
			"branch or tag Argo CD syncs (--revision; never HEAD), and writes the last two into gitops/argocd.",
		New: func(fs *flag.FlagSet) cli.Runner {
			c := &Command{Connection: cluster.Connection{Log: stderr}}
			c.In = stdin
			fs.StringVar(&c.Overlay, "overlay", tree.DefaultOverlay, "overlay Argo CD syncs (a directory under gitops/overlays)")
			fs.StringVar(&c.RepoURL, "repo-url", "", "your fork's URL for the Applications (default: the repoURL in gitops/argocd)")
			fs.DurationVar(&c.Timeout, "timeout", 20*time.Minute, "how long to wait for Argo CD to sync and the PostSync job to succeed")
			fs.BoolVar(&c.Yes, "yes", false, "do not ask for confirmation")
			fs.StringVar(&c.InitOverlay, "init-overlay", "", "create gitops/overlays/NAME for this cluster's apps domain, then stop")
			fs.StringVar(&c.Domain, "domain", "", "apps domain for --init-overlay (then no cluster is needed)")
			fs.StringVar(&c.JobImage, "job-image", "", "job image for --init-overlay's overlay, as `make image-push` printed it (default: ask)")
			fs.StringVar(&c.Revision, "revision", "", "branch or tag Argo CD syncs, written by --init-overlay into gitops/argocd (default: ask)")
			c.Connection.Bind(fs)
			return c
		},
	}
}

// Command is `litemaas-ops deploy`.
type Command struct {
	Options
	cluster.Connection
}

// Run deploys; with InitOverlay and Domain it only creates the overlay, without a cluster.
func (c *Command) Run(ctx context.Context, out io.Writer) error {
	root, err := tree.WorkRoot()
	if err != nil {
		return err
	}
	o := c.Options
	if o.JobImage != "" && o.InitOverlay == "" {
		return cli.Usagef("--job-image goes with --init-overlay; for an existing overlay, set the job image in its images: entry (kustomization.yaml) and push")
	}
	if o.Revision != "" && o.InitOverlay == "" {
		return cli.Usagef("--revision goes with --init-overlay; for an existing setup, set targetRevision in gitops/argocd and push")
	}
	o.Root, o.Out, o.Overlay = root, out, tree.InRepo(root, o.Overlay)
	if o.InitOverlay != "" && o.Domain != "" {
		return runInitOverlay(ctx, nil, o, &deployment{domain: o.Domain}, nil)
	}
	cl, err := c.Connect()
	if err != nil {
		return err
	}
	return Deploy(ctx, cl, o)
}

// Options configures Deploy.
type Options struct {
	// Root is the repository root (tree.FindRoot).
	Root string
	// Overlay is the overlay Argo CD should sync: absolute, or relative to the working directory.
	// Empty means tree.DefaultOverlay.
	Overlay string
	// RepoURL replaces the Applications' spec.source.repoURL (your fork); empty keeps what git says.
	RepoURL string
	// InitOverlay, when set, creates gitops/overlays/<InitOverlay> for this cluster's apps domain and stops:
	// Argo CD can only sync it once it is committed and pushed.
	InitOverlay string
	// Domain is the apps domain for InitOverlay when the cluster does not publish one.
	Domain string
	// JobImage is the job image InitOverlay's overlay runs; empty asks (or, with Yes, keeps the template's).
	JobImage string
	// Revision is the branch or tag InitOverlay writes into gitops/argocd (never HEAD); empty asks (or,
	// with Yes, keeps what git says). InitOverlay writes RepoURL there too.
	Revision string
	// Timeout bounds the wait for the Application to be synced and healthy.
	Timeout time.Duration
	// Yes skips the confirmation.
	Yes bool
	In  io.Reader
	Out io.Writer
}

// deployment is what Deploy worked out before changing anything.
type deployment struct {
	overlayRel   string
	overlayDir   string
	overlayHosts map[string]string // Route name -> host, as the overlay renders them
	domain       string            // the domain the access URLs use
	apps         []*unstructured.Unstructured
	project      *unstructured.Unstructured // the AppProject to apply; nil when a cluster admin applies it
	clusterObjs  []*unstructured.Unstructured
	applyCluster bool
	user         string
	notes        []string
}

// Deploy checks the prerequisites, applies the cluster-admin part (when allowed) and the Argo CD
// Application(s), waits until Argo CD has synced LiteMaaS and the PostSync job succeeded, then prints the
// access URLs. Running it again is safe: everything is applied, nothing is created twice.
func Deploy(ctx context.Context, c *cluster.Cluster, o Options) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Minute
	}
	out := o.Out
	d, rows, err := preflight(ctx, c, &o)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Preflight: cluster %s%s\n", c.Config.Host, c.ContextNote())
	report.PrintChecks(out, rows)
	fmt.Fprintln(out)

	if o.InitOverlay != "" {
		return runInitOverlay(ctx, c, o, d, rows)
	}
	if n := report.CountStatus(rows, report.StatusFail); n > 0 {
		return &report.ProblemsError{What: "preflight", Count: n}
	}
	for _, n := range d.notes {
		fmt.Fprintln(out, "Note:", n)
	}

	if !o.Yes {
		q := fmt.Sprintf("Deploy LiteMaaS (overlay %s) to %s as %s?", d.overlayRel, c.Config.Host, orUnknown(d.user))
		if !report.Confirm(o.In, out, q) {
			return report.ErrNotConfirmed
		}
	}

	fmt.Fprintln(out, "Applying")
	if d.project != nil {
		if err := c.Apply(ctx, d.project); err != nil {
			return err
		}
		fmt.Fprintf(out, "  %-8s %s\n", "applied", cluster.Describe(d.project))
	}
	if d.applyCluster {
		for _, obj := range d.clusterObjs {
			what, err := applyClusterObject(ctx, c, obj)
			if err != nil {
				return fmt.Errorf("%w (the cluster part is optional: a cluster admin can apply it with `oc apply -k %s/%s`)", err, d.overlayRel, tree.ClusterPart)
			}
			fmt.Fprintf(out, "  %-8s %s\n", what, cluster.Describe(obj))
		}
	}
	for _, app := range d.apps {
		if err := c.Apply(ctx, app); err != nil {
			return err
		}
		path, _, _ := unstructured.NestedString(app.Object, "spec", "source", "path")
		repo, _, _ := unstructured.NestedString(app.Object, "spec", "source", "repoURL")
		fmt.Fprintf(out, "  %-8s %s (repo %s, path %s)\n", "applied", cluster.Describe(app), repo, path)
	}
	fmt.Fprintln(out)

	deadline := time.Now().Add(o.Timeout)
	wctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	for _, app := range d.apps {
		if err := waitForApplication(wctx, c, app, out, o.Timeout); err != nil {
			return err
		}
	}

	ns := destinationNamespace(d.apps, d.overlayRel)
	fmt.Fprintln(out)
	printAccessURLs(ctx, c, out, ns, d)
	fmt.Fprintln(out)
	printJobSummary(ctx, c, out, ns)
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown user)"
	}
	return s
}

// preflight inspects the repository and the cluster and returns one row per check. Only a failure that
// makes every other check meaningless (the API server cannot be reached, the tree does not render) is
// returned as an error; everything else becomes a FAIL or WARN row, so that one run lists every problem.
func preflight(ctx context.Context, c *cluster.Cluster, o *Options) (*deployment, []report.Row, error) {
	d := &deployment{}
	p := &checks{}
	overlay := o.Overlay
	if overlay == "" {
		overlay = filepath.Join(o.Root, filepath.FromSlash(tree.DefaultOverlay))
	}
	rel, err := tree.RelToRoot(o.Root, overlay)
	if err != nil {
		return nil, nil, err
	}
	d.overlayRel, d.overlayDir = rel, filepath.Join(o.Root, filepath.FromSlash(rel))
	apps, err := tree.RenderApplications(o.Root)
	if err != nil {
		return nil, nil, err
	}
	if err := checkCredentials(ctx, c, d, p); err != nil {
		return nil, nil, err
	}
	argoNS := apps[0].GetNamespace()
	gitopsOK, err := checkGitOps(ctx, c, d, argoNS, p)
	if err != nil {
		return nil, nil, err
	}
	fork := prepareApplications(apps, o, d, p)
	d.apps = apps
	if gitopsOK && o.InitOverlay == "" {
		if d.project, err = preflightProject(ctx, c, o.Root, argoNS, apps, p.add); err != nil {
			return nil, nil, err
		}
	}
	clusterDomain := checkAppsDomain(ctx, c, o, p)
	overlayExists := checkOverlay(ctx, c, o, d, clusterDomain, fork, p)
	// --init-overlay writes the cluster's domain; the access URLs fall back to it when no overlay renders.
	if clusterDomain != "" && (d.domain == "" || o.InitOverlay != "") {
		d.domain = clusterDomain
	}
	if changes, ok := uncommitted(ctx, o.Root, d.overlayRel, "gitops/base", "gitops/components"); ok {
		p.add("git", "pushed", report.StatusWarn, changes+": Argo CD syncs your fork, not this checkout")
	}
	if overlayExists {
		if err := checkClusterPart(ctx, c, d, p); err != nil {
			return nil, nil, err
		}
	}
	return d, p.rows, nil
}

// checks collects preflight's rows, in the order they are checked.
type checks struct{ rows []report.Row }

func (p *checks) add(component, check, status, detail string) {
	p.rows = append(p.rows, report.Row{Component: component, Check: check, Status: status, Detail: detail})
}

// checkCredentials reaches the API server and asks who the credentials are. An unreachable server or
// rejected credentials end the preflight.
func checkCredentials(ctx context.Context, c *cluster.Cluster, d *deployment, p *checks) error {
	v, err := c.Kube.Discovery().ServerVersion()
	if err != nil {
		if apierrors.IsUnauthorized(err) {
			return fmt.Errorf("the API server %s rejects your credentials (expired token?): log in again with `oc login`: %w", c.Config.Host, err)
		}
		return fmt.Errorf("cannot reach the API server %s: log in with `oc login` or set KUBECONFIG: %w", c.Config.Host, err)
	}
	p.add("cluster", "API server", report.StatusOK, fmt.Sprintf("%s (Kubernetes %s)", c.Config.Host, v.GitVersion))
	user, groups, err := c.WhoAmI(ctx)
	switch {
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("the API server %s rejects your credentials (expired token?): log in again with `oc login`: %w", c.Config.Host, err)
	case err != nil:
		p.add("cluster", "logged in as", report.StatusWarn, fmt.Sprintf("cannot tell (SelfSubjectReview: %v)", err))
	default:
		d.user = user
		p.add("cluster", "logged in as", report.StatusOK, fmt.Sprintf("%s (groups: %s)", user, strings.Join(groups, ", ")))
	}
	return nil
}

// checkGitOps checks OpenShift GitOps: the namespace of the default instance, the Application kind, and
// whether the user may apply Applications there. It reports whether GitOps is installed.
func checkGitOps(ctx context.Context, c *cluster.Cluster, d *deployment, argoNS string, p *checks) (bool, error) {
	gitopsOK := true
	switch _, err := c.Kube.CoreV1().Namespaces().Get(ctx, argoNS, metav1.GetOptions{}); {
	case apierrors.IsNotFound(err):
		gitopsOK = false
		p.add("openshift-gitops", "namespace", report.StatusFail, fmt.Sprintf("namespace %s not found: install the Red Hat OpenShift GitOps operator, which creates the default Argo CD instance there", argoNS))
	case apierrors.IsForbidden(err):
		p.add("openshift-gitops", "namespace", report.StatusWarn, fmt.Sprintf("not allowed to read namespace %s; assuming it exists", argoNS))
	case err != nil:
		return false, fmt.Errorf("reading namespace %s: %w", argoNS, err)
	default:
		p.add("openshift-gitops", "namespace", report.StatusOK, argoNS)
	}
	appMapping, err := c.Mapping(cluster.ApplicationGVK)
	switch {
	case meta.IsNoMatchError(err):
		gitopsOK = false
		p.add("openshift-gitops", "Application CRD", report.StatusFail, "the cluster serves no applications.argoproj.io/v1alpha1: install the Red Hat OpenShift GitOps operator")
	case err != nil:
		return false, fmt.Errorf("looking up the Argo CD Application kind: %w", err)
	default:
		p.add("openshift-gitops", "Application CRD", report.StatusOK, appMapping.Resource.GroupResource().String()+"/"+cluster.ApplicationGVK.Version)
	}
	if !gitopsOK {
		return false, nil
	}
	appGR := schema.GroupResource{Group: cluster.ApplicationGVK.Group, Resource: "applications"}
	var denied []string
	for _, verb := range []string{"create", "patch"} {
		ok, err := c.Can(ctx, verb, appGR, argoNS)
		if err != nil {
			return false, err
		}
		if !ok {
			denied = append(denied, verb)
		}
	}
	if len(denied) > 0 {
		p.add("openshift-gitops", "may apply Applications", report.StatusFail, fmt.Sprintf("%s may not %s applications.argoproj.io in %s: ask a cluster admin for access (e.g. oc adm policy add-role-to-user admin %s -n %s)",
			orUnknown(d.user), strings.Join(denied, "/"), argoNS, orUnknown(d.user), argoNS))
	} else {
		p.add("openshift-gitops", "may apply Applications", report.StatusOK, "create, patch in "+argoNS)
	}
	return true, nil
}

// prepareApplications makes the Applications what deploy applies: your fork, the chosen overlay, a
// refresh request; it checks their repoURL and returns the fork (the first Application's repoURL), whose
// image workflow must have attested the job image.
func prepareApplications(apps []*unstructured.Unstructured, o *Options, d *deployment, p *checks) string {
	var fork string
	for _, app := range apps {
		repo, _, _ := unstructured.NestedString(app.Object, "spec", "source", "repoURL")
		if o.RepoURL != "" {
			repo = o.RepoURL
			_ = unstructured.SetNestedField(app.Object, repo, "spec", "source", "repoURL")
		}
		if fork == "" {
			fork = repo
		}
		check := "repoURL of " + app.GetName()
		if strings.Contains(repo, tree.RepoURLPlaceholder) {
			p.add("git", check, report.StatusFail, fmt.Sprintf("%s is the placeholder: put your fork's URL into %s/ and %s, commit and push (see gitops/README.md), or pass --repo-url", repo, tree.AppOfAppsDir, tree.RootAppFile))
		} else {
			p.add("git", check, report.StatusOK, repo)
		}
		if path, _, _ := unstructured.NestedString(app.Object, "spec", "source", "path"); strings.HasPrefix(path, tree.OverlaysDir+"/") && path != d.overlayRel {
			_ = unstructured.SetNestedField(app.Object, d.overlayRel, "spec", "source", "path")
			d.notes = append(d.notes, fmt.Sprintf("Application %s is applied with path %s (git says %s). If you also use %s, commit that path in %s/ too, or the root Application will set it back.",
				app.GetName(), d.overlayRel, path, tree.RootAppFile, tree.AppOfAppsDir))
		}
		ann := app.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[refreshAnnotation] = "normal"
		app.SetAnnotations(ann)
	}
	return fork
}

// checkAppsDomain returns the cluster's apps domain (--domain when the cluster publishes none), "" when
// it is unknown.
func checkAppsDomain(ctx context.Context, c *cluster.Cluster, o *Options, p *checks) string {
	clusterDomain, domainErr := c.AppsDomain(ctx)
	if domainErr != nil && o.Domain != "" {
		clusterDomain, domainErr = o.Domain, nil
	}
	if domainErr != nil {
		p.add("cluster", "apps domain", report.StatusWarn, domainErr.Error()+"; the overlay's domain cannot be checked")
	} else {
		p.add("cluster", "apps domain", report.StatusOK, clusterDomain)
	}
	return clusterDomain
}

// checkOverlay checks the overlay: it exists, builds, is set for the cluster's apps domain, and (unless
// --init-overlay replaces it) runs a job image that can be pulled and is attested, and alerts that will be
// evaluated. It reports whether the overlay exists.
func checkOverlay(ctx context.Context, c *cluster.Cluster, o *Options, d *deployment, clusterDomain, fork string, p *checks) bool {
	overlayExists := false
	if fi, err := os.Stat(filepath.Join(d.overlayDir, "kustomization.yaml")); err == nil && !fi.IsDir() {
		overlayExists = true
	}
	suggestion := "my-cluster"
	if clusterDomain != "" {
		suggestion = tree.SuggestOverlayName(clusterDomain)
	}
	switch {
	case !overlayExists && o.InitOverlay == "":
		p.add("git", "overlay", report.StatusFail, fmt.Sprintf("%s does not exist: create one for this cluster with --init-overlay %s", d.overlayRel, suggestion))
		return false
	case !overlayExists:
		p.add("git", "overlay", report.StatusSkip, fmt.Sprintf("%s does not exist; --init-overlay creates %s/%s", d.overlayRel, tree.OverlaysDir, o.InitOverlay))
		return false
	}
	hosts, err := tree.OverlayRoutes(d.overlayDir)
	if err != nil {
		p.add("git", "overlay", report.StatusFail, fmt.Sprintf("%s does not build: %v", d.overlayRel, err))
		return true
	}
	d.overlayHosts = hosts
	p.rows = append(p.rows, advisoryRow(d.overlayDir, d.overlayRel))
	d.domain = tree.DomainOf(hosts[tree.RouteUI])
	checkOverlayDomain(o, d, clusterDomain, suggestion, p)
	if o.InitOverlay == "" {
		pulled := checkJobImages(ctx, c, d.overlayDir, d.overlayRel)
		p.rows = append(p.rows, pulled...)
		p.rows = append(p.rows, checkJobImageSignatures(ctx, d.overlayDir, fork, pulled)...)
		p.rows = append(p.rows, checkOverlayMonitoring(ctx, c, d.overlayDir)...)
	}
	return true
}

// checkOverlayDomain compares the domain the overlay was written for (d.domain) with the cluster's.
func checkOverlayDomain(o *Options, d *deployment, clusterDomain, suggestion string, p *checks) {
	overlayDomain := d.domain
	switch {
	case overlayDomain == "":
		p.add("git", "overlay domain", report.StatusFail, fmt.Sprintf("%s renders no Route %s with a host: is it a LiteMaaS overlay?", d.overlayRel, tree.RouteUI))
	case clusterDomain == "":
		p.add("git", "overlay domain", report.StatusWarn, fmt.Sprintf("%s is set for %s (not compared: the cluster's domain is unknown)", d.overlayRel, overlayDomain))
	case overlayDomain == clusterDomain:
		p.add("git", "overlay domain", report.StatusOK, fmt.Sprintf("%s is set for %s", d.overlayRel, overlayDomain))
	case o.InitOverlay != "":
		p.add("git", "overlay domain", report.StatusSkip, fmt.Sprintf("%s is set for %s, the cluster's is %s; --init-overlay creates %s/%s", d.overlayRel, overlayDomain, clusterDomain, tree.OverlaysDir, o.InitOverlay))
	default:
		p.add("git", "overlay domain", report.StatusFail, fmt.Sprintf("%s is set for %s but the cluster's apps domain is %s: set appsDomain in %s/%s and push, or create an overlay for this cluster with --init-overlay %s",
			d.overlayRel, overlayDomain, clusterDomain, d.overlayRel, tree.SettingsFile, suggestion))
	}
}

// checkClusterPart checks whether the user may apply the overlay's cluster-admin part: deploy applies it
// only with the rights for every object in it.
func checkClusterPart(ctx context.Context, c *cluster.Cluster, d *deployment, p *checks) error {
	clusterDir := filepath.Join(d.overlayDir, tree.ClusterPart)
	if fi, err := os.Stat(filepath.Join(clusterDir, "kustomization.yaml")); err != nil || fi.IsDir() {
		return nil
	}
	objs, err := manifests.Render(clusterDir)
	if err != nil {
		p.add("cluster-admin part", "renders", report.StatusFail, fmt.Sprintf("%s/%s does not build: %v", d.overlayRel, tree.ClusterPart, err))
		return nil
	}
	d.clusterObjs = objs
	status, detail, err := clusterPartAccess(ctx, c, objs)
	if err != nil {
		return err
	}
	if status == report.StatusOK {
		d.applyCluster = true
		p.add("cluster-admin part", "may apply", report.StatusOK, detail)
	} else {
		p.add("cluster-admin part", "may apply", report.StatusWarn, fmt.Sprintf("%s: a cluster admin must run `oc apply -k %s/%s` once; deploy continues without it", detail, d.overlayRel, tree.ClusterPart))
	}
	return nil
}

// clusterPartAccess checks that the user may create every kind in the cluster-admin part.
func clusterPartAccess(ctx context.Context, c *cluster.Cluster, objs []*unstructured.Unstructured) (status, detail string, err error) {
	var names, denied, unknown []string
	seen := map[schema.GroupResource]bool{}
	for _, obj := range objs {
		m, err := c.Mapping(obj.GroupVersionKind())
		if meta.IsNoMatchError(err) {
			if gk := obj.GroupVersionKind().GroupKind().String(); !slices.Contains(unknown, gk) {
				unknown = append(unknown, gk)
			}
			continue
		}
		if err != nil {
			return "", "", fmt.Errorf("looking up %s: %w", obj.GroupVersionKind(), err)
		}
		gr := m.Resource.GroupResource()
		if seen[gr] {
			continue
		}
		seen[gr] = true
		names = append(names, gr.String())
		ns := ""
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			ns = obj.GetNamespace()
		}
		ok, err := c.Can(ctx, "create", gr, ns)
		if err != nil {
			return "", "", err
		}
		if !ok {
			denied = append(denied, gr.String())
		}
	}
	switch {
	case len(unknown) > 0:
		return report.StatusWarn, fmt.Sprintf("the cluster does not serve %s (not OpenShift?)", strings.Join(unknown, ", ")), nil
	case len(denied) > 0:
		return report.StatusWarn, fmt.Sprintf("no cluster-admin rights (may not create %s)", strings.Join(denied, ", ")), nil
	}
	return report.StatusOK, fmt.Sprintf("%d objects (%s)", len(objs), strings.Join(names, ", ")), nil
}

// applyClusterObject applies one object of the cluster-admin part. A Group is only created when absent:
// its member list is maintained by hand (oc adm groups add-users), and applying `users: []` would empty it.
func applyClusterObject(ctx context.Context, c *cluster.Cluster, obj *unstructured.Unstructured) (string, error) {
	if obj.GroupVersionKind().GroupKind() == (schema.GroupKind{Group: "user.openshift.io", Kind: "Group"}) {
		ri, _, err := c.ResourceFor(obj.GroupVersionKind(), "")
		if err != nil {
			return "", fmt.Errorf("%s: %w", cluster.Describe(obj), err)
		}
		_, err = ri.Create(ctx, obj, metav1.CreateOptions{FieldManager: cluster.FieldManager})
		switch {
		case apierrors.IsAlreadyExists(err):
			return "kept", nil
		case err != nil:
			return "", fmt.Errorf("creating %s: %w", cluster.Describe(obj), err)
		}
		return "created", nil
	}
	if err := c.Apply(ctx, obj); err != nil {
		return "", err
	}
	return "applied", nil
}

// runInitOverlay creates the overlay for this cluster and says what to do next; nothing is applied,
// since Argo CD reads the overlay from git.
func runInitOverlay(ctx context.Context, c *cluster.Cluster, o Options, d *deployment, rows []report.Row) error {
	if d.domain == "" {
		return errors.New("--init-overlay needs the cluster's apps domain, which is unknown: pass it with --domain apps.<cluster>.<base domain>")
	}
	if o.In != nil {
		// One buffered reader for every question, so that none reads ahead into the next one's answer.
		o.In = bufio.NewReader(o.In)
	}
	if o.JobImage == "" && !o.Yes {
		o.JobImage = initoverlay.AskJobImage(o.In, o.Out, templateJobImage(o.Root))
	}
	if o.JobImage != "" {
		if _, err := jobimage.ParseReference(o.JobImage); err != nil {
			return fmt.Errorf("--job-image: %w", err)
		}
	}
	rel, err := initoverlay.Create(o.Root, o.InitOverlay, d.domain)
	if err != nil {
		return err
	}
	argoChanged, err := initoverlay.WriteSource(o.Root, initoverlay.SourceOptions{RepoURL: o.RepoURL, Revision: o.Revision, Yes: o.Yes, In: o.In, Out: o.Out})
	if err != nil {
		_ = os.RemoveAll(filepath.Join(o.Root, filepath.FromSlash(rel)))
		return err
	}
	out := o.Out
	differs := "only appsDomain in " + tree.SettingsFile + " differs"
	if o.JobImage != "" {
		if err := initoverlay.SetJobImage(o.Root, rel, o.JobImage); err != nil {
			_ = os.RemoveAll(filepath.Join(o.Root, filepath.FromSlash(rel)))
			return fmt.Errorf("setting the job image of %s: %w", rel, err)
		}
		differs = "appsDomain in " + tree.SettingsFile + " and the job image " + o.JobImage + " differ; images/images.yaml lists it"
	}
	fmt.Fprintf(out, "Created %s for apps domain %s (a copy of %s; %s).\n\n", rel, d.domain, tree.TemplateOverlay, differs)
	images := checkJobImages(ctx, c, filepath.Join(o.Root, filepath.FromSlash(rel)), rel)
	report.PrintChecks(out, images)
	fmt.Fprintln(out)
	rows = append(rows, images...)
	fmt.Fprintf(out, "Argo CD syncs your fork, not this checkout. Next:\n")
	if len(argoChanged) > 0 {
		fmt.Fprintf(out, "Set the fork and revision Argo CD syncs in %s.\n", strings.Join(argoChanged, ", "))
	}
	fmt.Fprintf(out, "  git add %s images/images.yaml gitops/argocd && git commit -m \"Add overlay %s\" && git push\n", rel, o.InitOverlay)
	fmt.Fprintf(out, "  make deploy OVERLAY=%s\n", rel)
	var blocking []string
	for _, r := range rows {
		if r.Status == report.StatusFail {
			blocking = append(blocking, r.Check+": "+r.Detail)
		}
	}
	if len(blocking) > 0 {
		fmt.Fprintf(out, "\nFix these first:\n  %s\n", strings.Join(blocking, "\n  "))
	}
	return nil
}

// uncommitted reports uncommitted or unpushed changes under paths, when root is a git checkout and git is
// installed; otherwise it says nothing (the check is a convenience, not a requirement).
func uncommitted(ctx context.Context, root string, paths ...string) (string, bool) {
	git, err := exec.LookPath("git")
	if err != nil {
		return "", false
	}
	args := append([]string{"-C", root, "status", "--porcelain=v1", "--branch", "--"}, paths...)
	b, err := exec.CommandContext(ctx, git, args...).Output()
	if err != nil {
		return "", false
	}
	var changed int
	var ahead string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		switch {
		case strings.HasPrefix(l, "## "):
			if i := strings.Index(l, "[ahead "); i >= 0 {
				ahead = strings.TrimSuffix(strings.Fields(l[i+len("[ahead "):])[0], "]")
				ahead = strings.TrimSuffix(ahead, ",")
			}
		case l != "":
			changed++
		}
	}
	var parts []string
	if changed > 0 {
		parts = append(parts, fmt.Sprintf("%d uncommitted change(s) under %s", changed, strings.Join(paths, ", ")))
	}
	if ahead != "" {
		parts = append(parts, ahead+" local commit(s) not pushed")
	}
	if len(parts) == 0 {
		return "", false
	}
	return strings.Join(parts, "; "), true
}

// destinationNamespace is the namespace LiteMaaS runs in: the destination of the Application that syncs
// the overlay (litemaas).
func destinationNamespace(apps []*unstructured.Unstructured, overlayRel string) string {
	for _, app := range apps {
		if p, _, _ := unstructured.NestedString(app.Object, "spec", "source", "path"); p == overlayRel {
			ns, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "namespace")
			return ns
		}
	}
	return tree.DefaultNamespace
}

// printAccessURLs prints the runbook's Access URLs table with the hosts of the live Routes, or the hosts the
// overlay renders when a Route cannot be read.
func printAccessURLs(ctx context.Context, c *cluster.Cluster, out io.Writer, ns string, d *deployment) {
	live := c.RouteURLs(ctx, ns)
	expected := d.overlayHosts
	if len(expected) == 0 && d.domain != "" {
		expected = tree.ExpectedHosts(d.domain)
	}
	entries := []struct{ route, name, purpose string }{
		{tree.RouteUI, "LiteMaaS UI", "User portal, subscriptions, API keys"},
		{tree.RouteLiteLLM, "LiteLLM Proxy", "OpenAI-compatible API endpoint for models"},
		{tree.RouteAPI, "Backend API", "Direct backend access"},
	}
	var rows [][]string
	for _, e := range entries {
		u, ok := live[e.route]
		if !ok {
			if h := expected[e.route]; h != "" {
				u = "https://" + h + "  (Route " + e.route + " not found; expected)"
			} else {
				u = "(Route " + e.route + " not found)"
			}
		}
		rows = append(rows, []string{e.name, u, e.purpose})
	}
	fmt.Fprintln(out, "Access URLs")
	report.PrintTable(out, []string{"APPLICATION", "URL", "PURPOSE"}, rows)
}

// printJobSummary prints the one-line summary the litemaas-sync job left in its status ConfigMap.
func printJobSummary(ctx context.Context, c *cluster.Cluster, out io.Writer, ns string) {
	cm, err := c.Kube.CoreV1().ConfigMaps(ns).Get(ctx, tree.StatusConfigMap, metav1.GetOptions{})
	if err != nil {
		fmt.Fprintf(out, "Model sync: no status yet (ConfigMap %s/%s: %v)\n", ns, tree.StatusConfigMap, shortErr(err))
		return
	}
	fmt.Fprintf(out, "Model sync (%s, finished %s): %s\n", orUnknown(cm.Data["result"]), orUnknown(cm.Data["finishedAt"]), cm.Data["summary"])
}

func shortErr(err error) string {
	if apierrors.IsNotFound(err) {
		return "not found"
	}
	return err.Error()
}
