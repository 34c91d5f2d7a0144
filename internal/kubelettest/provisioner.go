package kubelettest

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Provisioner plays a dynamic volume provisioner: each Pending claim without a volume gets a hostPath
// PersistentVolume of its size, access modes and class, pre-bound to it (spec.claimRef, as
// sig-storage-lib-external-provisioner writes it), which kube-controller-manager's
// persistentvolume-binder controller then binds. (A StatefulSet's claims get one as well.) The volume's
// directory is the one the Kubelet of the same Dir mounts for the claim, so that its data outlives the
// pod, as a volume's does.
type Provisioner struct {
	Client kubernetes.Interface
	// Dir is the Kubelet's directory (see New).
	Dir string
	Log Logf
}

// Start watches claims until ctx ends (wg tracks that) and returns once the watch has synced.
func (p *Provisioner) Start(ctx context.Context, wg *sync.WaitGroup) error {
	cs := p.Client
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
					Path: claimDir(p.Dir, pvc.Namespace, pvc.Name), Type: &hostPathType,
				}},
			},
		}
		_, err := cs.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{FieldManager: "provisioner"})
		if err != nil && !apierrors.IsAlreadyExists(err) && ctx.Err() == nil {
			p.Log.printf("provisioner: claim %s/%s: %v", pvc.Namespace, pvc.Name, err)
			return
		}
		if err == nil {
			p.Log.printf("provisioner: claim %s/%s: volume %s (%s)", pvc.Namespace, pvc.Name, pv.Name, size.String())
		}
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    provision,
		UpdateFunc: func(_, obj any) { provision(obj) },
	}); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return fmt.Errorf("provisioner: the claim informer did not sync")
	}
	return nil
}

// claimDir is the local directory holding claim's data in namespace ns: the Provisioner's hostPath and
// what the Kubelet mounts for the claim.
func claimDir(dir, ns, claim string) string {
	return filepath.Join(dir, "claims", ns, claim)
}
