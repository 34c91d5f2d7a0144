package kapitest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube/listwatch"
)

const (
	requestTimeout = 30 * time.Second
	fieldManager   = "kapitest"
)

// CreateNamespace creates a namespace named prefix plus a random suffix. Namespaces are never deleted:
// without a controller-manager a deleted namespace stays Terminating forever, so every test gets its
// own. It also creates what the controller-manager would put into a new namespace (the `default`
// ServiceAccount and the kube-root-ca.crt ConfigMap), so that admission behaves as on a cluster.
func (s *Server) CreateNamespace(t testing.TB, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	cs := s.Clientset()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namePrefix(prefix)},
	}, metav1.CreateOptions{})
	require.NoError(t, err, "creating namespace with prefix %q", prefix)
	name := ns.Name

	_, err = cs.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"},
	}, metav1.CreateOptions{})
	require.NoError(t, err, "creating the default ServiceAccount in %s", name)
	_, err = cs.CoreV1().ConfigMaps(name).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"},
		Data:       map[string]string{"ca.crt": string(s.CAData)},
	}, metav1.CreateOptions{})
	require.NoError(t, err, "creating kube-root-ca.crt in %s", name)
	return name
}

// namePrefix turns prefix into a valid generateName (lower case, DNS label characters, ends in "-").
func namePrefix(prefix string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(prefix) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	p := strings.Trim(b.String(), "-")
	if p == "" {
		p = "test"
	}
	// A namespace name is at most 63 characters and the server appends 5 random ones.
	if len(p) > 50 {
		p = strings.TrimRight(p[:50], "-")
	}
	return p + "-"
}

// TokenConfig returns a config that authenticates as namespace/serviceAccount with a token from the
// TokenRequest API, i.e. exactly what a pod of that ServiceAccount gets. The ServiceAccount is created
// when it does not exist. The config carries no admin credentials.
func (s *Server) TokenConfig(t testing.TB, namespace, serviceAccount string) *rest.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	sas := s.Clientset().CoreV1().ServiceAccounts(namespace)
	_, err := sas.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: serviceAccount}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err, "creating ServiceAccount %s/%s", namespace, serviceAccount)
	}
	expiry := int64(3600)
	tr, err := sas.CreateToken(ctx, serviceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry},
	}, metav1.CreateOptions{})
	require.NoError(t, err, "requesting a token for %s/%s", namespace, serviceAccount)

	cfg := rest.AnonymousClientConfig(s.Config)
	cfg.BearerToken = tr.Status.Token
	return cfg
}

// WriteKubeconfig writes a kubeconfig file for cfg into a test temp dir and returns its path, e.g. for
// KUBECONFIG of a subprocess.
func (s *Server) WriteKubeconfig(t testing.TB, cfg *rest.Config) string {
	t.Helper()
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile == "" {
		ca = s.CAData
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kapitest"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthority:     cfg.CAFile,
		CertificateAuthorityData: ca,
	}
	kc.AuthInfos["kapitest"] = &clientcmdapi.AuthInfo{
		Token:                 cfg.BearerToken,
		TokenFile:             cfg.BearerTokenFile,
		ClientCertificate:     cfg.CertFile,
		ClientCertificateData: cfg.CertData,
		ClientKey:             cfg.KeyFile,
		ClientKeyData:         cfg.KeyData,
		Username:              cfg.Username,
		Password:              cfg.Password,
	}
	kc.Contexts["kapitest"] = &clientcmdapi.Context{Cluster: "kapitest", AuthInfo: "kapitest"}
	kc.CurrentContext = "kapitest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*kc, path), "writing kubeconfig")
	return path
}

// WriteTokenKubeconfig writes to path a kubeconfig for the server that authenticates with token, its
// context in namespace (may be empty), e.g. for KUBECONFIG of a process the harnesses start.
func (s *Server) WriteTokenKubeconfig(path, token, namespace string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kapitest"] = &clientcmdapi.Cluster{Server: s.Config.Host, CertificateAuthorityData: s.CAData}
	kc.AuthInfos["kapitest"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["kapitest"] = &clientcmdapi.Context{Cluster: "kapitest", AuthInfo: "kapitest", Namespace: namespace}
	kc.CurrentContext = "kapitest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return nil
}

// Apply creates or updates objs with server-side apply (field manager "kapitest", conflicts forced),
// CustomResourceDefinitions and Namespaces first. It waits for each CRD to be Established so that
// objects of its kind can follow in the same call. A namespaced object must name its namespace:
// silently using "default" would hide a manifest that relies on a destination namespace.
func (s *Server) Apply(t testing.TB, objs ...*unstructured.Unstructured) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*requestTimeout)
	defer cancel()
	require.NoError(t, s.ApplyObjects(ctx, objs...))
}

// ApplyObjects is Apply for callers without a testing.TB (the local demo stack): it returns the first
// error instead of failing a test.
func (s *Server) ApplyObjects(ctx context.Context, objs ...*unstructured.Unstructured) error {
	ordered := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(ordered, func(i, j int) bool { return applyRank(ordered[i]) < applyRank(ordered[j]) })
	for _, obj := range ordered {
		gvk := obj.GroupVersionKind()
		id := fmt.Sprintf("%s %q", gvk.Kind, obj.GetName())
		if obj.GetName() == "" {
			return fmt.Errorf("applying %s: metadata.name is required", gvk)
		}
		mapping, err := s.restMapping(ctx, gvk)
		if err != nil {
			return fmt.Errorf("applying %s: %w", id, err)
		}
		ri := s.Dynamic().Resource(mapping.Resource)
		var res dynamic.ResourceInterface = ri
		if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
			if obj.GetNamespace() == "" {
				return fmt.Errorf("applying namespaced %s: metadata.namespace is not set", id)
			}
			res = ri.Namespace(obj.GetNamespace())
			id = fmt.Sprintf("%s %s/%s", gvk.Kind, obj.GetNamespace(), obj.GetName())
		}
		if _, err := res.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
			return fmt.Errorf("applying %s: %w", id, err)
		}
		if gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition" {
			if err := s.waitEstablished(ctx, mapping.Resource, obj.GetName()); err != nil {
				return fmt.Errorf("waiting for %s: %w", id, err)
			}
			s.mapperMu.Lock()
			if s.mapper != nil {
				s.mapper.Reset()
			}
			s.mapperMu.Unlock()
		}
	}
	return nil
}

func applyRank(u *unstructured.Unstructured) int {
	switch u.GroupVersionKind().GroupKind() {
	case schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"}:
		return 0
	case schema.GroupKind{Kind: "Namespace"}:
		return 1
	}
	return 2
}

// restMapping maps gvk through discovery. A kind whose CRD was just established can be missing from
// discovery for a moment, so a miss resets the cache and retries briefly.
func (s *Server) restMapping(ctx context.Context, gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	s.mapperMu.Lock()
	defer s.mapperMu.Unlock()
	if s.mapper == nil {
		s.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(s.Clientset().Discovery()))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mapping, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil || !meta.IsNoMatchError(err) || time.Now().After(deadline) {
			return mapping, err
		}
		s.mapper.Reset()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) waitEstablished(ctx context.Context, gvr schema.GroupVersionResource, name string) error {
	lw := listwatch.Named(s.Dynamic().Resource(gvr), name)
	established := func(obj runtime.Object) bool {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	}
	_, err := watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		return ev.Type != watch.Deleted && established(ev.Object), nil
	})
	return err
}

// MarkRolledOut writes the status a workload controller writes once a rollout is complete, for the
// current generation and spec.replicas. kind is "deployment", "statefulset" or "daemonset" (any case,
// plural and short forms accepted).
func (s *Server) MarkRolledOut(t testing.TB, ns, kind, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	apps := s.Clientset().AppsV1()
	var err error
	switch strings.ToLower(kind) {
	case "deployment", "deployments", "deploy":
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			d, err := apps.Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			d.Status = RolledOutDeploymentStatus(d)
			_, err = apps.Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{FieldManager: fieldManager})
			return err
		})
	case "statefulset", "statefulsets", "sts":
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			sts, err := apps.StatefulSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			sts.Status = RolledOutStatefulSetStatus(sts)
			_, err = apps.StatefulSets(ns).UpdateStatus(ctx, sts, metav1.UpdateOptions{FieldManager: fieldManager})
			return err
		})
	case "daemonset", "daemonsets", "ds":
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			ds, err := apps.DaemonSets(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			ds.Status = appsv1.DaemonSetStatus{
				ObservedGeneration: ds.Generation, DesiredNumberScheduled: 1, CurrentNumberScheduled: 1,
				UpdatedNumberScheduled: 1, NumberReady: 1, NumberAvailable: 1,
			}
			_, err = apps.DaemonSets(ns).UpdateStatus(ctx, ds, metav1.UpdateOptions{FieldManager: fieldManager})
			return err
		})
	default:
		t.Fatalf("MarkRolledOut: unsupported kind %q (want deployment, statefulset or daemonset)", kind)
	}
	require.NoError(t, err, "marking %s %s/%s rolled out", kind, ns, name)
}

// RolledOutDeploymentStatus is the status the deployment controller writes when d's current
// generation is fully rolled out, conditions included (tools such as kstatus read them).
func RolledOutDeploymentStatus(d *appsv1.Deployment) appsv1.DeploymentStatus {
	r := replicas(d.Spec.Replicas)
	now := metav1.Now()
	rs := d.Name + "-" + templateHash(d.Spec.Template)
	return appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           r,
		UpdatedReplicas:    r,
		ReadyReplicas:      r,
		AvailableReplicas:  r,
		Conditions: []appsv1.DeploymentCondition{
			{
				Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
				Reason: "MinimumReplicasAvailable", Message: "Deployment has minimum availability.",
				LastUpdateTime: now, LastTransitionTime: now,
			},
			{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
				Reason: "NewReplicaSetAvailable", Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", rs),
				LastUpdateTime: now, LastTransitionTime: now,
			},
		},
	}
}

// RolledOutStatefulSetStatus is the status the StatefulSet controller writes when every pod runs the
// update revision and is ready.
func RolledOutStatefulSetStatus(sts *appsv1.StatefulSet) appsv1.StatefulSetStatus {
	r := replicas(sts.Spec.Replicas)
	rev := sts.Status.UpdateRevision
	if rev == "" {
		rev = sts.Name + "-" + templateHash(sts.Spec.Template)
	}
	return appsv1.StatefulSetStatus{
		ObservedGeneration: sts.Generation,
		Replicas:           r,
		ReadyReplicas:      r,
		CurrentReplicas:    r,
		UpdatedReplicas:    r,
		AvailableReplicas:  r,
		CurrentRevision:    rev,
		UpdateRevision:     rev,
	}
}

func replicas(p *int32) int32 {
	if p == nil {
		return 1 // the API server's default
	}
	return *p
}

// templateHash stands in for the controllers' pod-template hash: it changes when the template does,
// which is all the revision names in a simulated status need.
func templateHash(tmpl corev1.PodTemplateSpec) string {
	b, _ := json.Marshal(tmpl)
	h := fnv.New32a()
	_, _ = h.Write(b)
	return fmt.Sprintf("%08x", h.Sum32())[:8]
}
