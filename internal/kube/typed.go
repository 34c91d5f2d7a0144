package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// Typed reads and writes one kind of namespaced object as a struct (objects.go), over the dynamic
// client. The job touches a handful of kinds; client-go's typed clientset would link every API group
// and its scheme (about half of the binary), the dynamic client and these few structs do not.
//
// Objects go to and from the wire as unstructured JSON (runtime.DefaultUnstructuredConverter), so the
// request bodies and the API server's errors (apierrors.IsNotFound, IsForbidden, ...) are the typed
// client's.
type Typed[T any] struct {
	ri  dynamic.ResourceInterface
	gvk schema.GroupVersionKind
}

var (
	core            = schema.GroupVersion{Version: "v1"}
	configMaps      = core.WithResource("configmaps")
	secretsResource = core.WithResource("secrets")
	serviceAccounts = core.WithResource("serviceaccounts")
	eventsV1        = schema.GroupVersion{Group: "events.k8s.io", Version: "v1"}
)

// ConfigMaps returns the ConfigMaps of namespace.
func ConfigMaps(dc dynamic.Interface, namespace string) Typed[ConfigMap] {
	return Typed[ConfigMap]{dc.Resource(configMaps).Namespace(namespace), core.WithKind("ConfigMap")}
}

// Secrets returns the Secrets of namespace.
func Secrets(dc dynamic.Interface, namespace string) Typed[Secret] {
	return Typed[Secret]{dc.Resource(secretsResource).Namespace(namespace), core.WithKind("Secret")}
}

// ServiceAccounts returns the ServiceAccounts of namespace.
func ServiceAccounts(dc dynamic.Interface, namespace string) Typed[ServiceAccount] {
	return Typed[ServiceAccount]{dc.Resource(serviceAccounts).Namespace(namespace), core.WithKind("ServiceAccount")}
}

// Events returns the events.k8s.io/v1 Events of namespace.
func Events(dc dynamic.Interface, namespace string) Typed[Event] {
	return Typed[Event]{dc.Resource(eventsV1.WithResource("events")).Namespace(namespace), eventsV1.WithKind("Event")}
}

// Get returns the object called name.
func (c Typed[T]) Get(ctx context.Context, name string, o metav1.GetOptions) (*T, error) {
	u, err := c.ri.Get(ctx, name, o)
	if err != nil {
		return nil, err
	}
	return c.from(u)
}

// Create creates obj and returns the object the API server stored.
func (c Typed[T]) Create(ctx context.Context, obj *T, o metav1.CreateOptions) (*T, error) {
	u, err := c.to(obj)
	if err != nil {
		return nil, err
	}
	if u, err = c.ri.Create(ctx, u, o); err != nil {
		return nil, err
	}
	return c.from(u)
}

// Update replaces obj (optimistically, by its resourceVersion) and returns the object stored.
func (c Typed[T]) Update(ctx context.Context, obj *T, o metav1.UpdateOptions) (*T, error) {
	u, err := c.to(obj)
	if err != nil {
		return nil, err
	}
	if u, err = c.ri.Update(ctx, u, o); err != nil {
		return nil, err
	}
	return c.from(u)
}

func (c Typed[T]) to(obj *T) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", c.gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(c.gvk)
	return u, nil
}

func (c Typed[T]) from(u *unstructured.Unstructured) (*T, error) {
	obj := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), obj); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", c.gvk.Kind, u.GetName(), err)
	}
	return obj, nil
}

// GroupVersionServed returns a discovery probe over cfg: whether the API server serves groupVersion
// ("route.openshift.io/v1", or "v1" for the core group). It asks what `kubectl api-versions` asks
// (GET /apis/<group>/<version>, which every authenticated user may read) without client-go's
// discovery client, which would link every API group's types.
func GroupVersionServed(cfg *rest.Config) func(ctx context.Context, groupVersion string) (bool, error) {
	return func(ctx context.Context, groupVersion string) (bool, error) {
		base, _, err := rest.DefaultServerUrlFor(cfg)
		if err != nil {
			return false, fmt.Errorf("discovery: %w", err)
		}
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return false, fmt.Errorf("discovery: %w", err)
		}
		prefix := "/apis"
		if !strings.Contains(groupVersion, "/") {
			prefix = "/api"
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base.JoinPath(prefix, groupVersion).String(), nil)
		if err != nil {
			return false, fmt.Errorf("discovery of %s: %w", groupVersion, err)
		}
		req.Header.Set("Accept", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return false, fmt.Errorf("discovery of %s: %w", groupVersion, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		switch {
		case resp.StatusCode == http.StatusOK:
			return true, nil
		case resp.StatusCode == http.StatusNotFound:
			return false, nil
		default:
			// The API server's Status, so that apierrors (and internal/fault) classify a 401 or 403.
			return false, fmt.Errorf("discovery of %s: %w", groupVersion, apierrors.FromObject(statusOf(resp.StatusCode, body)))
		}
	}
}

// statusOf decodes the API server's Status from body, or makes one from the HTTP code.
func statusOf(code int, body []byte) *metav1.Status {
	s := &metav1.Status{}
	if err := json.Unmarshal(body, s); err != nil || s.Kind != "Status" {
		return &apierrors.NewGenericServerResponse(code, http.MethodGet, schema.GroupResource{}, "", strings.TrimSpace(string(body)), 0, false).ErrStatus
	}
	return s
}
