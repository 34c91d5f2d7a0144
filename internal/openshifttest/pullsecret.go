package openshifttest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	applycorev1 "k8s.io/client-go/applyconfigurations/core/v1"
	applymetav1 "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	listersv1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The annotations and field manager of openshift-controller-manager's image pull-secret controllers
// (pkg/internalregistry/controllers/annotations.go, service_account_controller.go).
const (
	// PullSecretRefAnnotation on a ServiceAccount names its managed image pull secret.
	PullSecretRefAnnotation = "openshift.io/internal-registry-pull-secret-ref"
	// PullSecretServiceAccountAnnotation on a managed pull secret names its ServiceAccount.
	PullSecretServiceAccountAnnotation = "openshift.io/internal-registry-auth-token.service-account"
	// PullSecretFieldManager is the field manager of the controller's server-side applies.
	PullSecretFieldManager = "openshift.io/image-registry-pull-secrets_service-account-controller"
)

// PullSecrets plays the ServiceAccount controller of OpenShift's integrated-registry pull secrets,
// following openshift/openshift-controller-manager pkg/internalregistry/controllers/
// service_account_controller.go (OpenShift 4.16 and later; read at commit 26d20fe, 2026-03): for every
// ServiceAccount it
//   - picks the managed secret's name: the SA's openshift.io/internal-registry-pull-secret-ref
//     annotation, else an existing kubernetes.io/dockercfg Secret annotated for (or owned by) the SA,
//     else <sa>-dockercfg-<5 random chars> (names.SimpleNameGenerator);
//   - server-side applies the ServiceAccount with force, as field manager PullSecretFieldManager: that
//     annotation, `secrets: [{name}]`, and imagePullSecrets = the existing entries plus the managed one
//     (imagePullSecrets is atomic, so the apply carries the resourceVersion the list was read at);
//   - applies the Secret: type kubernetes.io/dockercfg, annotated with the SA's name, owned by the SA,
//     `.dockercfg` "{}" (the image-pull-secret controller later fills in registry credentials; this
//     stand-in leaves "{}": no registry exists here).
//
// The legacy (pre-4.16) token-secret path is not played.
type PullSecrets struct {
	Client kubernetes.Interface
	Log    Logf

	sas     listersv1.ServiceAccountLister
	secrets listersv1.SecretLister
}

// Start runs the controller until ctx ends; it returns once its informers have synced.
func (p *PullSecrets) Start(ctx context.Context, wg *sync.WaitGroup) error {
	factory := informers.NewSharedInformerFactory(p.Client, 0)
	saInf := factory.Core().V1().ServiceAccounts()
	secInf := factory.Core().V1().Secrets()
	p.sas, p.secrets = saInf.Lister(), secInf.Lister()
	c := newController("pull-secrets", p.Log, p.sync)
	if _, err := saInf.Informer().AddEventHandler(c.handler()); err != nil {
		return err
	}
	// A managed Secret's change or deletion re-syncs its ServiceAccount.
	bySA := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		s, ok := obj.(*corev1.Secret)
		if !ok || s.Type != corev1.SecretTypeDockercfg {
			return
		}
		if sa := s.Annotations[PullSecretServiceAccountAnnotation]; sa != "" {
			c.queue.Add(s.Namespace + "/" + sa)
		}
	}
	if _, err := secInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: bySA, UpdateFunc: func(_, obj any) { bySA(obj) }, DeleteFunc: bySA,
	}); err != nil {
		return err
	}
	return c.run(ctx, wg, 2, []informerFactory{factory}, saInf.Informer().HasSynced, secInf.Informer().HasSynced)
}

func (p *PullSecrets) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return err
	}
	sa, err := p.sas.ServiceAccounts(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	secretName, err := p.secretName(sa)
	if err != nil {
		return err
	}
	patch := applycorev1.ServiceAccount(name, ns).
		WithAnnotations(map[string]string{PullSecretRefAnnotation: secretName}).
		WithSecrets(applycorev1.ObjectReference().WithName(secretName))
	extracted, err := applycorev1.ExtractServiceAccount(sa, PullSecretFieldManager)
	if err != nil {
		return err
	}
	if slices.ContainsFunc(sa.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == secretName }) {
		patch.ImagePullSecrets = extracted.ImagePullSecrets
	} else {
		for _, r := range sa.ImagePullSecrets {
			patch.WithImagePullSecrets(applycorev1.LocalObjectReference().WithName(r.Name))
		}
		patch.WithImagePullSecrets(applycorev1.LocalObjectReference().WithName(secretName))
	}
	if !equality.Semantic.DeepEqual(patch, extracted) {
		patch.WithUID(sa.UID)
		if len(patch.ImagePullSecrets) > 0 {
			patch.WithResourceVersion(sa.ResourceVersion)
		}
		if sa, err = p.Client.CoreV1().ServiceAccounts(ns).Apply(ctx, patch, metav1.ApplyOptions{Force: true, FieldManager: PullSecretFieldManager}); err != nil {
			return fmt.Errorf("applying ServiceAccount %s/%s: %w", ns, name, err)
		}
		p.Log.printf("pull-secrets: ServiceAccount %s/%s: imagePullSecrets += %s", ns, name, secretName)
	}
	secret, err := p.secrets.Secrets(ns).Get(secretName)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if secret != nil && secret.Annotations[PullSecretServiceAccountAnnotation] == sa.Name &&
		slices.ContainsFunc(secret.OwnerReferences, func(r metav1.OwnerReference) bool { return r.UID == sa.UID && r.Kind == "ServiceAccount" }) {
		return nil
	}
	data := []byte("{}")
	if secret != nil && secret.Data[corev1.DockerConfigKey] != nil {
		data = secret.Data[corev1.DockerConfigKey]
	}
	sp := applycorev1.Secret(secretName, ns).
		WithAnnotations(map[string]string{PullSecretServiceAccountAnnotation: sa.Name}).
		WithOwnerReferences(applymetav1.OwnerReference().WithAPIVersion("v1").WithKind("ServiceAccount").WithName(sa.Name).WithUID(sa.UID)).
		WithType(corev1.SecretTypeDockercfg).
		WithData(map[string][]byte{corev1.DockerConfigKey: data})
	if _, err := p.Client.CoreV1().Secrets(ns).Apply(ctx, sp, metav1.ApplyOptions{Force: true, FieldManager: PullSecretFieldManager}); err != nil {
		return fmt.Errorf("applying the managed image pull secret %s/%s: %w", ns, secretName, err)
	}
	return nil
}

// secretName is managedImagePullSecretName without the legacy lookup.
func (p *PullSecrets) secretName(sa *corev1.ServiceAccount) (string, error) {
	if n := sa.Annotations[PullSecretRefAnnotation]; n != "" {
		return n, nil
	}
	secrets, err := p.secrets.Secrets(sa.Namespace).List(labels.Everything())
	if err != nil {
		return "", err
	}
	for _, s := range secrets {
		if s.Type != corev1.SecretTypeDockercfg {
			continue
		}
		if owner, ok := s.Annotations[PullSecretServiceAccountAnnotation]; ok {
			if owner == sa.Name {
				return s.Name, nil
			}
			continue
		}
		for _, r := range s.OwnerReferences {
			if r.Name == sa.Name && r.UID == sa.UID {
				return s.Name, nil
			}
		}
	}
	// naming.GetName(sa, "dockercfg-", 58) shortens long names with a hash; ServiceAccount names here
	// are short, so the plain concatenation is what it returns.
	// SimpleNameGenerator appends utilrand.String(5).
	return sa.Name + "-dockercfg-" + utilrand.String(5), nil
}
