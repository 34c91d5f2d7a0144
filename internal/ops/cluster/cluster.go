// Package cluster is how the litemaas-ops commands that need a cluster (deploy, verify, undeploy) reach
// it: the user's own kubeconfig (as after `oc login`), the --context and -v flags they all take, and the
// questions they all ask the API server (who am I, may I, what is the apps domain, where do the Routes
// point).
//
// It talks to the cluster through client-go: a dynamic client and a discovery-based RESTMapper for the
// OpenShift and Argo CD kinds, the typed client for core objects and access reviews. No oc or kubectl
// binary is needed.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

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
	ApplicationGVK   = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Application"}
	ingressConfigGVK = schema.GroupVersionKind{Group: "config.openshift.io", Version: "v1", Kind: "Ingress"}
	RouteGVK         = schema.GroupVersionKind{Group: "route.openshift.io", Version: "v1", Kind: "Route"}
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

// Load connects with the standard kubeconfig loading rules ($KUBECONFIG, else ~/.kube/config), the
// way oc and kubectl do, optionally with another context than the current one.
func Load(kubeContext string, log *slog.Logger) (*Cluster, error) {
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
	c, err := New(cfg, log)
	if err != nil {
		return nil, err
	}
	c.Context = raw.CurrentContext
	if kubeContext != "" {
		c.Context = kubeContext
	}
	return c, nil
}

// New builds the clients for cfg.
func New(cfg *rest.Config, log *slog.Logger) (*Cluster, error) {
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

// Mapping resolves a kind through discovery. A kind missing from the cached discovery may have been
// installed since (a CRD), so a miss refreshes the cache once before giving up.
func (c *Cluster) Mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// ResourceFor returns the dynamic client for objects of gvk in namespace (ignored for cluster-scoped kinds).
func (c *Cluster) ResourceFor(gvk schema.GroupVersionKind, namespace string) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	m, err := c.Mapping(gvk)
	if err != nil {
		return nil, nil, err
	}
	ri := c.Dynamic.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return ri.Namespace(namespace), m, nil
	}
	return ri, m, nil
}

// Apply creates or updates obj with server-side apply. Conflicts are forced: these objects come from git,
// and git is the source of truth, as it is for Argo CD.
func (c *Cluster) Apply(ctx context.Context, obj *unstructured.Unstructured) error {
	ri, _, err := c.ResourceFor(obj.GroupVersionKind(), obj.GetNamespace())
	if err != nil {
		return fmt.Errorf("%s: %w", Describe(obj), err)
	}
	if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: FieldManager, Force: true}); err != nil {
		return fmt.Errorf("applying %s: %w", Describe(obj), err)
	}
	c.Log.Debug("applied", "object", Describe(obj))
	return nil
}

// WhoAmI returns the user name and groups the API server sees for these credentials.
func (c *Cluster) WhoAmI(ctx context.Context) (string, []string, error) {
	r, err := c.Kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, err
	}
	return r.Status.UserInfo.Username, r.Status.UserInfo.Groups, nil
}

// Can asks the API server whether the current user may do verb on resource (SelfSubjectAccessReview).
func (c *Cluster) Can(ctx context.Context, verb string, gr schema.GroupResource, namespace string) (bool, error) {
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

// AppsDomain reads the cluster's apps (ingress) domain, like
// `oc get ingress.config.openshift.io cluster -o jsonpath='{.spec.domain}'`. The error says why it is
// unknown (not OpenShift, object missing, not allowed).
func (c *Cluster) AppsDomain(ctx context.Context) (string, error) {
	ri, _, err := c.ResourceFor(ingressConfigGVK, "")
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

// Describe names an object in messages: Kind namespace/name.
func Describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", obj.GetKind(), ns, obj.GetName())
	}
	return fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
}

// ContextNote is " (context NAME)" for messages, or "" when the config came from no kubeconfig context.
func (c *Cluster) ContextNote() string {
	if c.Context == "" {
		return ""
	}
	return " (context " + c.Context + ")"
}

// RouteURLs returns the URL of every Route in ns by Route name; empty when Routes cannot be read.
func (c *Cluster) RouteURLs(ctx context.Context, ns string) map[string]string {
	urls := map[string]string{}
	ri, _, err := c.ResourceFor(RouteGVK, ns)
	if err != nil {
		return urls
	}
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return urls
	}
	for _, r := range list.Items {
		if u := RouteURL(&r); u != "" {
			urls[r.GetName()] = u
		}
	}
	return urls
}

// RouteURL is the URL a Route serves: its spec.host (or the host the router admitted), https when it
// has TLS, plus its path.
func RouteURL(r *unstructured.Unstructured) string {
	host, _, _ := unstructured.NestedString(r.Object, "spec", "host")
	if host == "" {
		ingress, _, _ := unstructured.NestedSlice(r.Object, "status", "ingress")
		for _, i := range ingress {
			if m, ok := i.(map[string]any); ok {
				if h, ok := m["host"].(string); ok && h != "" {
					host = h
					break
				}
			}
		}
	}
	if host == "" {
		return ""
	}
	scheme := "http"
	if _, ok, _ := unstructured.NestedMap(r.Object, "spec", "tls"); ok {
		scheme = "https"
	}
	path, _, _ := unstructured.NestedString(r.Object, "spec", "path")
	return scheme + "://" + host + path
}
