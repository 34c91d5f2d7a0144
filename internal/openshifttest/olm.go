package openshifttest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// OLM's kinds (operators.coreos.com/v1alpha1).
var (
	SubscriptionGVR = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "subscriptions"}
	InstallPlanGVR  = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "installplans"}
	CSVGVR          = schema.GroupVersionResource{Group: "operators.coreos.com", Version: "v1alpha1", Resource: "clusterserviceversions"}
)

// olmAPIModule holds OLM's CRDs; the version upstream-crds.yaml reads the Subscription CRD from.
const (
	olmAPIModule  = "github.com/operator-framework/api"
	olmAPIVersion = "v0.9.1"
)

// OLMCRDs returns OLM's Subscription, InstallPlan and ClusterServiceVersion CRDs from its API module.
func OLMCRDs() ([]*unstructured.Unstructured, error) {
	return moduleCRDs(manifests.UpstreamSource{Module: olmAPIModule, Version: olmAPIVersion, Dir: "crds", Files: []string{
		"operators.coreos.com_subscriptions.yaml", "operators.coreos.com_installplans.yaml",
		"operators.coreos.com_clusterserviceversions.yaml",
	}})
}

// moduleCRDs reads the files of src from its Go module.
func moduleCRDs(src manifests.UpstreamSource) ([]*unstructured.Unstructured, error) {
	dir, err := manifests.ModuleDir(src.Module, src.Version)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	for _, f := range src.Files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(src.Dir), f))
		if err != nil {
			return nil, fmt.Errorf("reading %s of %s@%s: %w", f, src.Module, src.Version, err)
		}
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(b, &u.Object); err != nil {
			return nil, fmt.Errorf("%s of %s@%s: %w", f, src.Module, src.Version, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// OLM plays Operator Lifecycle Manager's catalog operator and OLM operator for Subscriptions against
// one catalog, following operator-framework/operator-lifecycle-manager (pkg/controller/operators/
// catalog/operator.go: syncResolvingNamespace, ensureInstallPlan, syncInstallPlans; pkg/controller/
// operators/olm: the CSV's phases) and the status fields of operator-framework/api v1alpha1:
//
//   - a Subscription of another catalog is left alone (as for a CatalogSource OLM does not serve);
//   - package or channel missing: condition ResolutionFailed=True (reason ConstraintsNotSatisfiable,
//     OLM's "no operators found in channel ... of package ... in the catalog referenced by subscription
//     ..." message), no InstallPlan, nothing installed;
//   - otherwise the CSV to install is spec.startingCSV (which must be in the channel) or the channel's
//     head; an InstallPlan install-<5 chars> owned by the Subscription names it, with approval as the
//     Subscription's installPlanApproval. Manual: spec.approved false, phase RequiresApproval, the
//     Subscription UpgradePending with InstallPlanPending=True (reason RequiresApproval) — the first
//     install too, until a person approves it;
//   - an approved plan applies the bundle's CRDs (from the catalog's bundles), creates the CSV in the
//     Subscription's namespace (phase Succeeded, reason InstallSucceeded), and the plan turns Complete;
//     the Subscription gets installedCSV and AtLatestKnown; when the channel has a CSV replacing it,
//     OLM resolves the upgrade at once: a new plan (pending again under Manual), UpgradePending.
//
// The operator's Deployment, RBAC, copied CSVs and OperatorGroups are not played; CloudNativePG's
// controller is a stand-in of its own.
type OLM struct {
	Dynamic dynamic.Interface
	Catalog *manifests.OLMCatalog
	// Apply creates or updates objects, CRDs first (kapitest.Server.ApplyObjects).
	Apply func(ctx context.Context, objs ...*unstructured.Unstructured) error
	Log   Logf
	// BundleCRDs reads a bundle's CRDs (default: from its Go module).
	BundleCRDs func(manifests.UpstreamSource) ([]*unstructured.Unstructured, error)

	subs cache.GenericLister
	ips  cache.GenericLister
}

// Start runs the stand-in until ctx ends; it returns once its informers have synced.
func (o *OLM) Start(ctx context.Context, wg *sync.WaitGroup) error {
	if o.BundleCRDs == nil {
		o.BundleCRDs = moduleCRDs
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(o.Dynamic, 0)
	subInf := factory.ForResource(SubscriptionGVR)
	ipInf := factory.ForResource(InstallPlanGVR)
	o.subs, o.ips = subInf.Lister(), ipInf.Lister()
	c := newController("olm", o.Log, o.sync)
	if _, err := subInf.Informer().AddEventHandler(c.handler()); err != nil {
		return err
	}
	// An InstallPlan's change (its approval) re-syncs its Subscription.
	byOwner := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return
		}
		for _, r := range u.GetOwnerReferences() {
			if r.Kind == "Subscription" {
				c.queue.Add(u.GetNamespace() + "/" + r.Name)
			}
		}
	}
	if _, err := ipInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: byOwner, UpdateFunc: func(_, obj any) { byOwner(obj) },
	}); err != nil {
		return err
	}
	return c.run(ctx, wg, 1, []informerFactory{factory}, subInf.Informer().HasSynced, ipInf.Informer().HasSynced)
}

func condition(typ, status, reason, message string) map[string]any {
	return map[string]any{"type": typ, "status": status, "reason": reason, "message": message,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339)}
}

func (o *OLM) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	obj, err := o.subs.ByNamespace(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	sub := obj.(*unstructured.Unstructured).DeepCopy()
	spec, _, _ := unstructured.NestedMap(sub.Object, "spec")
	str := func(k string) string { s, _ := spec[k].(string); return s }
	if str("source") != o.Catalog.Source || str("sourceNamespace") != o.Catalog.SourceNamespace {
		return nil
	}
	pkgName, chName := str("name"), str("channel")
	pkg := o.Catalog.Package(pkgName)
	var entries []string
	if pkg != nil {
		if chName == "" {
			chName = pkg.DefaultChannel
		}
		if ch := pkg.Channel(chName); ch != nil {
			entries = ch.Entries
		}
	}
	start := str("startingCSV")
	if len(entries) == 0 || (start != "" && !slices.Contains(entries, start)) {
		msg := fmt.Sprintf("constraints not satisfiable: no operators found in channel %s of package %s in the catalog referenced by subscription %s", chName, pkgName, name)
		if len(entries) > 0 {
			msg = fmt.Sprintf("constraints not satisfiable: no operators found with name %s in channel %s of package %s in the catalog referenced by subscription %s", start, chName, pkgName, name)
		}
		return o.setSubStatus(ctx, sub, map[string]any{
			"conditions": []any{condition("ResolutionFailed", "True", "ConstraintsNotSatisfiable", msg)},
		})
	}
	installed, _, _ := unstructured.NestedString(sub.Object, "status", "installedCSV")
	// The CSV to have next: the starting one, then whatever replaces the installed one.
	want := start
	if want == "" {
		want = entries[len(entries)-1]
	}
	if installed != "" {
		i := slices.Index(entries, installed)
		if i < 0 || i == len(entries)-1 {
			return o.setSubStatus(ctx, sub, map[string]any{
				"state": "AtLatestKnown", "installedCSV": installed, "currentCSV": installed,
				"conditions": []any{condition("CatalogSourcesUnhealthy", "False", "AllCatalogSourcesHealthy", "all available catalogsources are healthy")},
			})
		}
		want = entries[i+1]
	}
	approval := str("installPlanApproval")
	if approval == "" {
		approval = "Automatic"
	}
	ip, err := o.installPlan(ctx, sub, want, approval)
	if err != nil {
		return err
	}
	approved, _, _ := unstructured.NestedBool(ip.Object, "spec", "approved")
	ipRef := map[string]any{"apiVersion": "operators.coreos.com/v1alpha1", "kind": "InstallPlan", "name": ip.GetName(),
		"namespace": ns, "uid": string(ip.GetUID()), "resourceVersion": ip.GetResourceVersion()}
	status := map[string]any{
		"currentCSV": want, "installPlanRef": ipRef, "installPlanGeneration": int64(1),
		"installplan": map[string]any{"apiVersion": "operators.coreos.com/v1alpha1", "kind": "InstallPlan", "name": ip.GetName(), "uuid": string(ip.GetUID())},
	}
	if installed != "" {
		status["installedCSV"] = installed
	}
	if !approved {
		if err := o.setPlanPhase(ctx, ip, "RequiresApproval", ""); err != nil {
			return err
		}
		status["state"] = "UpgradePending"
		status["conditions"] = []any{condition("InstallPlanPending", "True", "RequiresApproval", "")}
		return o.setSubStatus(ctx, sub, status)
	}
	if err := o.install(ctx, ns, pkg, want); err != nil {
		_ = o.setPlanPhase(ctx, ip, "Failed", err.Error())
		status["state"] = "UpgradePending"
		status["conditions"] = []any{condition("InstallPlanFailed", "True", "InstallComponentFailed", err.Error())}
		if serr := o.setSubStatus(ctx, sub, status); serr != nil {
			return serr
		}
		return nil
	}
	if err := o.setPlanPhase(ctx, ip, "Complete", ""); err != nil {
		return err
	}
	o.Log.printf("olm: subscription %s/%s: %s installed", ns, name, want)
	status["installedCSV"] = want
	status["state"] = "AtLatestKnown"
	status["conditions"] = []any{condition("CatalogSourcesUnhealthy", "False", "AllCatalogSourcesHealthy", "all available catalogsources are healthy")}
	// The status update brings the Subscription back through the queue: an upgrade already in the
	// channel is resolved then.
	return o.setSubStatus(ctx, sub, status)
}

// installPlan returns the Subscription's InstallPlan for csv, creating it.
func (o *OLM) installPlan(ctx context.Context, sub *unstructured.Unstructured, csv, approval string) (*unstructured.Unstructured, error) {
	objs, err := o.ips.ByNamespace(sub.GetNamespace()).List(everything)
	if err != nil {
		return nil, err
	}
	for _, obj := range objs {
		ip := obj.(*unstructured.Unstructured)
		names, _, _ := unstructured.NestedStringSlice(ip.Object, "spec", "clusterServiceVersionNames")
		owned := slices.ContainsFunc(ip.GetOwnerReferences(), func(r metav1.OwnerReference) bool { return r.UID == sub.GetUID() })
		if owned && slices.Contains(names, csv) {
			// The informer may lag an approval: read the plan itself.
			return o.Dynamic.Resource(InstallPlanGVR).Namespace(ip.GetNamespace()).Get(ctx, ip.GetName(), metav1.GetOptions{})
		}
	}
	ip := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operators.coreos.com/v1alpha1", "kind": "InstallPlan",
		"metadata": map[string]any{
			"name": "install-" + utilrand.String(5), "namespace": sub.GetNamespace(),
			"ownerReferences": []any{map[string]any{"apiVersion": "operators.coreos.com/v1alpha1", "kind": "Subscription",
				"name": sub.GetName(), "uid": string(sub.GetUID())}},
		},
		"spec": map[string]any{
			"clusterServiceVersionNames": []any{csv}, "approval": approval, "approved": approval == "Automatic", "generation": int64(1),
		},
	}}
	created, err := o.Dynamic.Resource(InstallPlanGVR).Namespace(sub.GetNamespace()).Create(ctx, ip, metav1.CreateOptions{FieldManager: "catalog-operator"})
	if err != nil {
		return nil, fmt.Errorf("creating the InstallPlan for %s: %w", csv, err)
	}
	o.Log.printf("olm: subscription %s/%s: InstallPlan %s for %s (%s)", sub.GetNamespace(), sub.GetName(), created.GetName(), csv, approval)
	return created, nil
}

func (o *OLM) setPlanPhase(ctx context.Context, ip *unstructured.Unstructured, phase, message string) error {
	if cur, _, _ := unstructured.NestedString(ip.Object, "status", "phase"); cur == phase {
		return nil
	}
	st := map[string]any{"phase": phase, "catalogSources": []any{o.Catalog.Source}}
	if message != "" {
		st["message"] = message
	}
	ip = ip.DeepCopy()
	ip.Object["status"] = st
	_, err := o.Dynamic.Resource(InstallPlanGVR).Namespace(ip.GetNamespace()).UpdateStatus(ctx, ip, metav1.UpdateOptions{FieldManager: "catalog-operator"})
	return err
}

// setSubStatus writes status unless its fields other than timestamps are already so.
func (o *OLM) setSubStatus(ctx context.Context, sub *unstructured.Unstructured, status map[string]any) error {
	now := time.Now().UTC().Format(time.RFC3339)
	status["catalogHealth"] = []any{map[string]any{"catalogSourceRef": map[string]any{"kind": "CatalogSource",
		"name": o.Catalog.Source, "namespace": o.Catalog.SourceNamespace, "apiVersion": "operators.coreos.com/v1alpha1"},
		"healthy": true, "lastUpdated": now}}
	old, _, _ := unstructured.NestedMap(sub.Object, "status")
	if sameIgnoringTimes(old, status) {
		return nil
	}
	status["lastUpdated"] = now
	sub.Object["status"] = status
	_, err := o.Dynamic.Resource(SubscriptionGVR).Namespace(sub.GetNamespace()).UpdateStatus(ctx, sub, metav1.UpdateOptions{FieldManager: "catalog-operator"})
	return err
}

// sameIgnoringTimes compares two statuses without lastUpdated, lastTransitionTime and resourceVersion.
func sameIgnoringTimes(a, b map[string]any) bool {
	strip := func(v any) any { return stripTimes(v) }
	ya, _ := yaml.Marshal(strip(a))
	yb, _ := yaml.Marshal(strip(b))
	return string(ya) == string(yb)
}

func stripTimes(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, x := range t {
			if k == "lastUpdated" || k == "lastTransitionTime" || k == "resourceVersion" {
				continue
			}
			m[k] = stripTimes(x)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = stripTimes(x)
		}
		return out
	case int:
		return int64(t)
	}
	return v
}

// install applies csv's CRDs and creates the CSV, as an approved InstallPlan's steps do.
func (o *OLM) install(ctx context.Context, ns string, pkg *manifests.OLMPackage, csv string) error {
	var bundle *manifests.OLMBundle
	for i := range pkg.Bundles {
		if pkg.Bundles[i].Name == csv {
			bundle = &pkg.Bundles[i]
		}
	}
	if bundle == nil {
		return fmt.Errorf("bundle %s is not in the catalog fixture (%s): its CRDs are unknown", csv, manifests.OLMCatalogFile)
	}
	crds, err := o.BundleCRDs(bundle.CRDs)
	if err != nil {
		return fmt.Errorf("reading the CRDs of %s: %w", csv, err)
	}
	if err := o.Apply(ctx, crds...); err != nil {
		return fmt.Errorf("installing the CRDs of %s: %w", csv, err)
	}
	var owned []any
	for _, gvk := range bundle.Owned {
		owned = append(owned, map[string]any{"name": gvk, "version": filepath.Base(filepath.Dir(gvk)), "kind": filepath.Base(gvk)})
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "operators.coreos.com/v1alpha1", "kind": "ClusterServiceVersion",
		"metadata": map[string]any{"name": csv, "namespace": ns},
		"spec": map[string]any{
			"displayName": pkg.Name, "version": bundle.Version,
			"install":                   map[string]any{"strategy": "deployment"},
			"installModes":              []any{map[string]any{"type": "AllNamespaces", "supported": true}},
			"customresourcedefinitions": map[string]any{"owned": owned},
		},
	}}
	csvs := o.Dynamic.Resource(CSVGVR).Namespace(ns)
	cur, err := csvs.Get(ctx, csv, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		cur, err = csvs.Create(ctx, obj, metav1.CreateOptions{FieldManager: "olm-operator"})
	}
	if err != nil {
		return fmt.Errorf("creating the ClusterServiceVersion %s: %w", csv, err)
	}
	if phase, _, _ := unstructured.NestedString(cur.Object, "status", "phase"); phase == "Succeeded" {
		return nil
	}
	now := time.Now().UTC().Format(time.RFC3339)
	cur.Object["status"] = map[string]any{"phase": "Succeeded", "reason": "InstallSucceeded", "message": "install strategy completed with no errors",
		"lastUpdateTime": now, "lastTransitionTime": now}
	_, err = csvs.UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: "olm-operator"})
	return err
}
