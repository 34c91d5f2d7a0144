package argocdtest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
)

// RouteGVR is OpenShift's Route.
var RouteGVR = schema.GroupVersionResource{Group: "route.openshift.io", Version: "v1", Resource: "routes"}

// startRouter plays the OpenShift router: every Route is admitted for its host, which is what Argo
// CD's Route health check waits for (status.ingress[].conditions Admitted=True).
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

// startProvisioner plays a dynamic volume provisioner: each Pending claim without a volume gets a
// hostPath PersistentVolume of its size, access modes and class, pre-bound to it, which the
// persistentvolume-binder controller then binds. (A StatefulSet's claims get one as well.)
func startProvisioner(ctx context.Context, h *Harness, wg *sync.WaitGroup) error {
	cs := h.Kube.Clientset()
	factory := informers.NewSharedInformerFactory(cs, 0)
	inf := factory.Core().V1().PersistentVolumeClaims().Informer()
	provision := func(obj any) {
		pvc, ok := obj.(*corev1.PersistentVolumeClaim)
		if !ok || pvc.Spec.VolumeName != "" || pvc.Status.Phase != corev1.ClaimPending || pvc.DeletionTimestamp != nil {
			return
		}
		size := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		if size.IsZero() {
			size = resource.MustParse("1Gi")
		}
		class := ""
		if pvc.Spec.StorageClassName != nil {
			class = *pvc.Spec.StorageClassName
		}
		hostPathType := corev1.HostPathDirectoryOrCreate
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: "pv-" + string(pvc.UID)},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
				AccessModes:                   pvc.Spec.AccessModes,
				StorageClassName:              class,
				VolumeMode:                    pvc.Spec.VolumeMode,
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
				PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
					Path: filepath.Join(h.Dir, "claims", pvc.Namespace, pvc.Name), Type: &hostPathType,
				}},
			},
		}
		_, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: "provisioner"})
		if err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
			h.logf("provisioner: claim %s/%s: %v", pvc.Namespace, pvc.Name, err)
			return
		}
		if err == nil {
			h.logf("provisioner: claim %s/%s: volume %s (%s)", pvc.Namespace, pvc.Name, pv.Name, size.String())
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    provision,
		UpdateFunc: func(_, obj any) { provision(obj) },
	}); err != nil {
		return err
	}
	return runInformer(ctx, wg, factory, inf, "provisioner: the claim informer")
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
