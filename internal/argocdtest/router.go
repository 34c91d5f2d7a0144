package argocdtest

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// RouteGVR is OpenShift's Route.
var RouteGVR = schema.GroupVersionResource{Group: "route.openshift.io", Version: "v1", Resource: "routes"}

// startRouter plays the OpenShift router's status writer (openshift/router's StatusAdmitter,
// pkg/router/controller/status.go): every Route is admitted for its host, which is what Argo CD's Route
// health check waits for (status.ingress[].conditions Admitted=True). It stays with the harness, as
// nothing but that health check reads it.
func startRouter(ctx context.Context, h *Harness, wg *sync.WaitGroup) error {
	dyn := h.Kube.Dynamic()
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	inf := factory.ForResource(RouteGVR).Informer()
	admit := func(obj any) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok || admitted(u) {
			return
		}
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			cur, err := dyn.Resource(RouteGVR).Namespace(u.GetNamespace()).Get(ctx, u.GetName(), metav1.GetOptions{})
			if err != nil {
				return err
			}
			if admitted(cur) {
				return nil
			}
			host, _, _ := unstructured.NestedString(cur.Object, "spec", "host")
			now := time.Now().UTC().Format(time.RFC3339)
			ingress := []any{map[string]any{
				"host": host, "routerName": "default", "wildcardPolicy": "None",
				"routerCanonicalHostname": "router-default.apps.example.test",
				"conditions":              []any{map[string]any{"type": "Admitted", "status": "True", "lastTransitionTime": now}},
			}}
			if err := unstructured.SetNestedSlice(cur.Object, ingress, "status", "ingress"); err != nil {
				return err
			}
			_, err = dyn.Resource(RouteGVR).Namespace(cur.GetNamespace()).UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: "openshift-router"})
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			h.logf("router: admitting route %s/%s: %v", u.GetNamespace(), u.GetName(), err)
			return
		}
		h.logf("router: route %s/%s admitted", u.GetNamespace(), u.GetName())
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    admit,
		UpdateFunc: func(_, obj any) { admit(obj) },
	}); err != nil {
		return err
	}
	return runInformer(ctx, wg, factory, inf, "router: the Route informer")
}

// admitted reports whether every ingress of u admits its current spec.host.
func admitted(u *unstructured.Unstructured) bool {
	host, _, _ := unstructured.NestedString(u.Object, "spec", "host")
	ingress, _, _ := unstructured.NestedSlice(u.Object, "status", "ingress")
	if len(ingress) == 0 {
		return false
	}
	for _, in := range ingress {
		m, _ := in.(map[string]any)
		if m["host"] != host {
			return false
		}
		ok := false
		conds, _ := m["conditions"].([]any)
		for _, c := range conds {
			cm, _ := c.(map[string]any)
			if cm["type"] == "Admitted" && cm["status"] == "True" {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// informerFactory is what the typed and the dynamic informer factories share.
type informerFactory interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// runInformer starts the factory's informers, shuts them down when ctx ends (wg tracks that), and
// returns once inf has synced.
func runInformer(ctx context.Context, wg *sync.WaitGroup, factory informerFactory, inf cache.SharedIndexInformer, what string) error {
	factory.Start(ctx.Done())
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("%s did not sync", what)
	}
	return nil
}
