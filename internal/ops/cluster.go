// Package ops implements litemaas-ops, the operator's tool for a LiteMaaS installation: deploy (preflight,
// Argo CD Application, wait, access URLs), verify (pods, published models, routes), undeploy and restore
// (database dumps of the backup component into a PostgreSQL server).
//
// It talks to the cluster with the user's own kubeconfig (as after `oc login`) through client-go: a dynamic
// client and a discovery-based RESTMapper for the OpenShift and Argo CD kinds, the typed client for core
// objects and access reviews. No oc or kubectl binary is needed.
package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// FieldManager owns the fields litemaas-ops applies (server-side apply).
const FieldManager = "litemaas-ops"

// Kinds served by OpenShift and Argo CD, not by plain Kubernetes.
var (
	applicationGVK   = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Application"}
	ingressConfigGVK = schema.GroupVersionKind{Group: "config.openshift.io", Version: "v1", Kind: "Ingress"}
	routeGVK         = schema.GroupVersionKind{Group: "route.openshift.io", Version: "v1", Kind: "Route"}
)

// Cluster is a connection to one API server.
type Cluster struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	// Context is the kubeconfig context in use, for messages; empty when the config did not come from a
	// kubeconfig file.
	Context string
	Log     *slog.Logger

	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// LoadCluster connects with the standard kubeconfig loading rules ($KUBECONFIG, else ~/.kube/config), the
// way oc and kubectl do, optionally with another context than the current one.
func LoadCluster(kubeContext string, log *slog.Logger) (*Cluster, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no kubeconfig found: log in first (oc login --server=https://api.<cluster>:6443) or set KUBECONFIG")
		}
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	c, err := NewCluster(cfg, log)
	if err != nil {
		return nil, err
	}
	c.Context = raw.CurrentContext
	if kubeContext != "" {
		c.Context = kubeContext
	}
	return c, nil
}

// NewCluster builds the clients for cfg.
func NewCluster(cfg *rest.Config, log *slog.Logger) (*Cluster, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.UserAgent == "" {
		cfg.UserAgent = "litemaas-ops"
	}
	// The API server's warnings (e.g. that Argo CD's finalizer name has no path) would otherwise be
	// printed by klog in the middle of the tool's tables; they are kept for -v.
	cfg.WarningHandler = slogWarnings{log}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building Kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("building dynamic client: %w", err)
	}
	return &Cluster{
		Config:  cfg,
		Kube:    kube,
		Dynamic: dyn,
		Log:     log,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(kube.Discovery())),
	}, nil
}

// slogWarnings passes API server warnings to the debug log.
type slogWarnings struct{ log *slog.Logger }

func (w slogWarnings) HandleWarningHeader(code int, agent, text string) {
	w.log.Debug("API server warning", "code", code, "agent", agent, "text", text)
}

// mapping resolves a kind through discovery. A kind missing from the cached discovery may have been
// installed since (a CRD), so a miss refreshes the cache once before giving up.
func (c *Cluster) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// resourceFor returns the dynamic client for objects of gvk in namespace (ignored for cluster-scoped kinds).
func (c *Cluster) resourceFor(gvk schema.GroupVersionKind, namespace string) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	m, err := c.mapping(gvk)
	if err != nil {
		return nil, nil, err
	}
	ri := c.Dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return ri.Namespace(namespace), m, nil
	}
	return ri, m, nil
}

// apply creates or updates obj with server-side apply. Conflicts are forced: these objects come from git,
// and git is the source of truth, as it is for Argo CD.
func (c *Cluster) apply(ctx context.Context, obj *unstructured.Unstructured) error {
	ri, _, err := c.resourceFor(obj.GroupVersionKind(), obj.GetNamespace())
	if err != nil {
		return fmt.Errorf("%s: %w", describe(obj), err)
	}
	if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying %s: %w", describe(obj), err)
	}
	c.Log.Debug("applied", "object", describe(obj))
	return nil
}

// whoAmI returns the user name and groups the API server sees for these credentials.
func (c *Cluster) whoAmI(ctx context.Context) (string, []string, error) {
	r, err := c.Kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, err
	}
	return r.Status.UserInfo.Username, r.Status.UserInfo.Groups, nil
}

// can asks the API server whether the current user may do verb on resource (SelfSubjectAccessReview).
func (c *Cluster) can(ctx context.Context, verb string, gr schema.GroupResource, namespace string) (bool, error) {
	r, err := c.Kube.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authorizationv1.SelfSubjectAccessReview{
		Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: verb, Group: gr.Group, Resource: gr.Resource, Namespace: namespace,
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("asking whether %s on %s is allowed: %w", verb, gr, err)
	}
	return r.Status.Allowed, nil
}

// appsDomain reads the cluster's apps (ingress) domain, like
// `oc get ingress.config.openshift.io cluster -o jsonpath='{.spec.domain}'`. The error says why it is
// unknown (not OpenShift, object missing, not allowed).
func (c *Cluster) appsDomain(ctx context.Context) (string, error) {
	ri, _, err := c.resourceFor(ingressConfigGVK, "")
	if meta.IsNoMatchError(err) {
		return "", errors.New("the cluster serves no ingresses.config.openshift.io (not OpenShift?)")
	}
	if err != nil {
		return "", err
	}
	obj, err := ri.Get(ctx, "cluster", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return "", errors.New("ingresses.config.openshift.io/cluster does not exist")
	case apierrors.IsForbidden(err):
		return "", errors.New("not allowed to read ingresses.config.openshift.io/cluster")
	case err != nil:
		return "", fmt.Errorf("reading ingresses.config.openshift.io/cluster: %w", err)
	}
	d, _, _ := unstructured.NestedString(obj.Object, "spec", "domain")
	if d == "" {
		return "", errors.New("ingresses.config.openshift.io/cluster has no spec.domain")
	}
	return d, nil
}

// describe names an object in messages: Kind namespace/name.
func describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", obj.GetKind(), ns, obj.GetName())
	}
	return fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
}

// shortDuration prints a duration rounded to the second: 5s, 2m10s.
func shortDuration(d time.Duration) string { return d.Round(time.Second).String() }
