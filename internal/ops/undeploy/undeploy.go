// Package undeploy is `litemaas-ops undeploy`: it removes what deploy created, the Argo CD
// Application(s) (Argo CD prunes their resources), the LiteMaaS namespace and, with --cluster, the
// cluster-admin part, each deletion bounded in time.
package undeploy

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// argoFinalizer makes Argo CD delete an Application's resources before the Application itself (cascade).
// The Applications in git carry none on purpose (deleting one by accident must not delete LiteMaaS);
// undeploy adds it right before deleting.
const argoFinalizer = "resources-finalizer.argocd.argoproj.io"

// NewCommand is `litemaas-ops undeploy`; it asks for confirmation on stdin, the connection logs to stderr.
func NewCommand(stdin io.Reader, stderr io.Writer) *cli.Command {
	return &cli.Command{
		Name: "undeploy", Args: "[--yes] [--cluster] [--overlay DIR] [--wait 3m]",
		Summary: "remove the Application and namespace litemaas (--cluster: also the cluster-admin part)",
		New: func(fs *flag.FlagSet) cli.Runner {
			c := &Command{Connection: cluster.Connection{Log: stderr}}
			c.In = stdin
			fs.BoolVar(&c.Yes, "yes", false, "do not ask for confirmation")
			fs.BoolVar(&c.Cluster, "cluster", false, "also remove the cluster-admin part (OAuthClient, Groups)")
			fs.StringVar(&c.Overlay, "overlay", tree.DefaultOverlay, "overlay whose cluster-admin part --cluster removes")
			fs.DurationVar(&c.Wait, "wait", 3*time.Minute, "how long to wait for each deletion to finish")
			c.Connection.Bind(fs)
			return c
		},
	}
}

// Command is `litemaas-ops undeploy`.
type Command struct {
	Options
	cluster.Connection
}

// Run removes what deploy created.
func (c *Command) Run(ctx context.Context, out io.Writer) error {
	root, err := tree.WorkRoot()
	if err != nil {
		return err
	}
	cl, err := c.Connect()
	if err != nil {
		return err
	}
	o := c.Options
	o.Root, o.Out, o.Overlay = root, out, tree.InRepo(root, o.Overlay)
	return Undeploy(ctx, cl, o)
}

// Options configures Undeploy.
type Options struct {
	Root string
	// Overlay selects the cluster-admin part removed with Cluster; empty means tree.DefaultOverlay.
	Overlay string
	// Cluster also removes the cluster-admin part (OAuthClient, Groups), when allowed.
	Cluster bool
	Yes     bool
	// Wait bounds the wait for each deletion to finish (Argo CD pruning, namespace termination).
	Wait time.Duration
	In   io.Reader
	Out  io.Writer
}

// target is one object undeploy removes.
type target struct {
	obj      *unstructured.Unstructured // as rendered from git (kind, name, namespace)
	res      dynamic.ResourceInterface
	exists   bool
	cascade  bool   // add argoFinalizer before deleting
	guard    string // non-empty: do not delete, and say why
	result   string
	terminal bool // already being deleted when undeploy started
}

// Undeploy removes what deploy created: the Argo CD Application(s) (Argo CD prunes their resources), the
// LiteMaaS namespace with its data, and with Cluster the cluster-admin part. Objects already gone are
// reported as such. No wait is unbounded: what is still terminating after Wait is reported with the
// command to look further.
func Undeploy(ctx context.Context, c *cluster.Cluster, o Options) error {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Wait <= 0 {
		o.Wait = 3 * time.Minute
	}
	out := o.Out
	targets, err := undeployTargets(ctx, c, o)
	if err != nil {
		return err
	}

	var present []string
	for _, t := range targets {
		if t.exists && t.guard == "" {
			present = append(present, cluster.Describe(t.obj))
		}
	}
	if len(present) == 0 {
		fmt.Fprintln(out, "Nothing to remove:")
		printUndeployReport(out, targets)
		return nil
	}
	fmt.Fprintf(out, "Cluster %s%s. To be removed:\n  %s\n", c.Config.Host, c.ContextNote(), strings.Join(present, "\n  "))
	if !o.Yes {
		q := "Continue?"
		for _, t := range targets {
			if t.exists && t.guard == "" && t.obj.GetKind() == "Namespace" && !t.terminal {
				q = "Deleting namespace " + t.obj.GetName() + " deletes the PostgreSQL database and the backups volume with it. Continue?"
			}
		}
		if !report.Confirm(o.In, out, q) {
			return report.ErrNotConfirmed
		}
	}
	fmt.Fprintln(out)

	for _, t := range targets {
		if t.result != "" {
			continue
		}
		if err := removeTarget(ctx, c, t, o.Wait, out); err != nil {
			return err
		}
	}
	fmt.Fprintln(out)
	printUndeployReport(out, targets)
	return nil
}

// undeployTargets lists, in deletion order, the objects deploy creates: the root Application first (its
// self-heal would recreate the child), the child Application(s), the namespace, the cluster-admin part.
func undeployTargets(ctx context.Context, c *cluster.Cluster, o Options) ([]*target, error) {
	apps, err := tree.RenderApplications(o.Root)
	if err != nil {
		return nil, err
	}
	var objs []*unstructured.Unstructured
	rootApp, err := tree.RenderRootApplication(o.Root)
	if err != nil {
		return nil, err
	}
	if rootApp != nil {
		objs = append(objs, rootApp)
	}
	objs = append(objs, apps...)
	var namespaces []string
	for _, app := range apps {
		ns, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "namespace")
		if ns != "" && ns != app.GetNamespace() && !slices.Contains(namespaces, ns) {
			namespaces = append(namespaces, ns)
		}
	}
	for _, ns := range namespaces {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("Namespace")
		u.SetName(ns)
		objs = append(objs, u)
	}
	if o.Cluster {
		part, err := clusterPartObjects(o)
		if err != nil {
			return nil, err
		}
		objs = append(objs, part...)
	}

	var targets []*target
	for _, obj := range objs {
		t := &target{obj: obj}
		targets = append(targets, t)
		res, m, err := c.ResourceFor(obj.GroupVersionKind(), obj.GetNamespace())
		if meta.IsNoMatchError(err) {
			t.result = "already gone (the cluster does not serve " + obj.GroupVersionKind().GroupKind().String() + ")"
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("looking up %s: %w", cluster.Describe(obj), err)
		}
		t.res = res
		live, err := res.Get(ctx, obj.GetName(), metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			t.result = "already gone"
			continue
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", cluster.Describe(obj), err)
		}
		t.exists = true
		t.terminal = live.GetDeletionTimestamp() != nil
		isApp := obj.GroupVersionKind().GroupKind() == cluster.ApplicationGVK.GroupKind()
		t.cascade = isApp && (rootApp == nil || obj.GetName() != rootApp.GetName())
		switch {
		case obj.GetKind() == "Namespace" && obj.GetAPIVersion() == "v1" && live.GetLabels()[tree.LabelPartOf] != tree.PartOf:
			t.guard = fmt.Sprintf("kept: not labelled %s=%s, so not created by this deployment (delete it yourself if you mean to)", tree.LabelPartOf, tree.PartOf)
			t.result = t.guard
		case m.Scope.Name() == meta.RESTScopeNameRoot && obj.GetKind() != "Namespace":
			ok, err := c.Can(ctx, "delete", m.Resource.GroupResource(), "")
			if err != nil {
				return nil, err
			}
			if !ok {
				t.guard = fmt.Sprintf("skipped: you may not delete %s; a cluster admin can run `oc delete -k %s`", m.Resource.GroupResource(), clusterPartDir(o))
				t.result = t.guard
			}
		}
	}
	return targets, nil
}

func clusterPartDir(o Options) string {
	overlay := o.Overlay
	if overlay == "" {
		overlay = filepath.Join(o.Root, filepath.FromSlash(tree.DefaultOverlay))
	}
	if rel, err := tree.RelToRoot(o.Root, overlay); err == nil {
		return rel + "/" + tree.ClusterPart
	}
	return tree.DefaultOverlay + "/" + tree.ClusterPart
}

// clusterPartObjects renders the overlay's cluster-admin part for the names of its objects.
func clusterPartObjects(o Options) ([]*unstructured.Unstructured, error) {
	dir := filepath.Join(o.Root, filepath.FromSlash(clusterPartDir(o)))
	if _, err := os.Stat(filepath.Join(dir, "kustomization.yaml")); err != nil {
		return nil, fmt.Errorf("the cluster-admin part %s does not exist: pass --overlay with the overlay you deployed", clusterPartDir(o))
	}
	return manifests.Render(dir)
}

// removeTarget deletes one object and waits, at most wait, until it is gone.
func removeTarget(ctx context.Context, c *cluster.Cluster, t *target, bound time.Duration, out io.Writer) error {
	name := cluster.Describe(t.obj)
	if t.cascade && !t.terminal {
		if err := addFinalizer(ctx, t.res, t.obj.GetName()); err != nil {
			if apierrors.IsNotFound(err) {
				t.result = "already gone"
				return nil
			}
			if apierrors.IsForbidden(err) {
				t.result = "not deleted: you may not patch it (needed to let Argo CD prune its resources first)"
				fmt.Fprintf(out, "  cannot update %s: %v\n", name, err)
				return nil
			}
			return fmt.Errorf("adding %s to %s: %w", argoFinalizer, name, err)
		}
	}
	if !t.terminal {
		policy := metav1.DeletePropagationBackground
		err := t.res.Delete(ctx, t.obj.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy})
		if apierrors.IsNotFound(err) {
			t.result = "already gone"
			return nil
		}
		if apierrors.IsForbidden(err) {
			t.result = "not deleted: you may not delete it (ask someone with the rights, or a cluster admin)"
			fmt.Fprintf(out, "  cannot delete %s: %v\n", name, err)
			return nil
		}
		if err != nil {
			return fmt.Errorf("deleting %s: %w", name, err)
		}
		fmt.Fprintf(out, "  deleting %s\n", name)
	} else {
		fmt.Fprintf(out, "  %s is already being deleted\n", name)
	}
	start := time.Now()
	gone, err := waitGone(ctx, t.res, t.obj.GetName(), bound)
	if err != nil {
		return fmt.Errorf("waiting for %s to go: %w", name, err)
	}
	switch {
	case gone:
		t.result = "deleted"
		if t.terminal {
			t.result = "deleted (was already terminating)"
		}
		fmt.Fprintf(out, "  deleted  %s after %s\n", name, report.ShortDuration(time.Since(start)))
	case t.cascade:
		t.result = fmt.Sprintf("deletion requested; still there after %s: Argo CD has not finished pruning (finalizer %s). "+
			"If the openshift-gitops controller is not running, nothing will: remove the finalizer with "+
			"`oc patch application %s -n %s --type=json -p '[{\"op\":\"remove\",\"path\":\"/metadata/finalizers\"}]'`",
			report.ShortDuration(bound), argoFinalizer, t.obj.GetName(), t.obj.GetNamespace())
	case t.obj.GetKind() == "Namespace":
		t.result = fmt.Sprintf("deletion requested; still terminating after %s (its pods and volumes are being removed): oc get namespace %s", report.ShortDuration(bound), t.obj.GetName())
	default:
		t.result = fmt.Sprintf("deletion requested; still there after %s", report.ShortDuration(bound))
	}
	return nil
}

// addFinalizer adds argoFinalizer to the Application unless present. The merge patch carries the
// resourceVersion it was computed from, so a concurrent change makes it fail instead of dropping a
// finalizer someone else added.
func addFinalizer(ctx context.Context, res dynamic.ResourceInterface, name string) error {
	live, err := res.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	fins := live.GetFinalizers()
	if slices.Contains(fins, argoFinalizer) {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers":      append(fins, argoFinalizer),
		"resourceVersion": live.GetResourceVersion(),
	}})
	if err != nil {
		return err
	}
	_, err = res.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: cluster.FieldManager})
	return err
}

// waitGone polls until the object is gone or timeout passes, and reports which. Read errors are retried
// until then: the bound, not a transient error, ends the wait.
func waitGone(ctx context.Context, res dynamic.ResourceInterface, name string, timeout time.Duration) (bool, error) {
	gone := false
	_ = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		_, err := res.Get(ctx, name, metav1.GetOptions{})
		gone = apierrors.IsNotFound(err)
		return gone, nil
	})
	if !gone && ctx.Err() != nil {
		return false, ctx.Err()
	}
	return gone, nil
}

func printUndeployReport(out io.Writer, targets []*target) {
	rows := make([][]string, len(targets))
	for i, t := range targets {
		rows[i] = []string{cluster.Describe(t.obj), t.result}
	}
	report.PrintTable(out, []string{"OBJECT", "RESULT"}, rows)
}
