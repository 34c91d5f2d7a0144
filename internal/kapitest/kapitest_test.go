package kapitest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

var (
	srv       *Server
	startTook time.Duration
)

func TestMain(m *testing.M) {
	t0 := time.Now()
	srv = MustStart(m)
	startTook = time.Since(t0)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

func TestStartupTime(t *testing.T) {
	t.Logf("kapitest.Start took %v (finding binaries %v, etcd healthy after %v, kube-apiserver ready %v after etcd)",
		startTook.Round(time.Millisecond), srv.findTook.Round(time.Millisecond),
		srv.etcdReady.Round(time.Millisecond), srv.apiReady.Round(time.Millisecond))

	// A second, independent server: its own start-up time, and proof that Stop cleans up.
	t0 := time.Now()
	s2, err := Start()
	require.NoError(t, err)
	took := time.Since(t0)
	t.Logf("second kapitest.Start took %v (finding binaries %v, etcd %v, kube-apiserver %v)",
		took.Round(time.Millisecond), s2.findTook.Round(time.Millisecond),
		s2.etcdReady.Round(time.Millisecond), s2.apiReady.Round(time.Millisecond))
	assert.NotEqual(t, srv.URL, s2.URL)
	t1 := time.Now()
	s2.Stop()
	t.Logf("Stop took %v", time.Since(t1).Round(time.Millisecond))
	_, err = os.Stat(s2.Dir)
	assert.True(t, os.IsNotExist(err), "Stop removes the temp dir")
}

func TestCreateNamespace(t *testing.T) {
	ctx := context.Background()
	a := srv.CreateNamespace(t, "Some_Test")
	b := srv.CreateNamespace(t, "Some_Test")
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^some-test-[a-z0-9]{5}$`, a)

	// The ServiceAccount admission plugin is active, so a Pod needs the default ServiceAccount.
	_, err := srv.Clientset().CoreV1().Pods(a).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func TestTokenConfig(t *testing.T) {
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "token")
	cfg := srv.TokenConfig(t, ns, "job")
	assert.Empty(t, cfg.Username)
	assert.NotEqual(t, srv.Config.BearerToken, cfg.BearerToken)

	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	review, err := cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:"+ns+":job", review.Status.UserInfo.Username)

	// No RoleBinding yet: RBAC denies everything beyond discovery.
	_, err = cs.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	assert.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)

	// The kubeconfig written for the same config authenticates as the same identity.
	path := srv.WriteKubeconfig(t, cfg)
	fromFile, err := clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	cs2, err := kubernetes.NewForConfig(fromFile)
	require.NoError(t, err)
	review, err = cs2.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:"+ns+":job", review.Status.UserInfo.Username)
}

func TestApplyCRDAndCustomResource(t *testing.T) {
	ns := srv.CreateNamespace(t, "apply")
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"metadata":   map[string]any{"name": "widgets.example.com"},
		"spec": map[string]any{
			"group": "example.com",
			"names": map[string]any{"kind": "Widget", "plural": "widgets", "singular": "widget"},
			"scope": "Namespaced",
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type":       "object",
						"properties": map[string]any{"size": map[string]any{"type": "integer"}},
					}},
				}},
			}},
		},
	}}
	widget := func(size int64) *unstructured.Unstructured {
		return &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1",
			"kind":       "Widget",
			"metadata":   map[string]any{"name": "w", "namespace": ns},
			"spec":       map[string]any{"size": size},
		}}
	}
	// The custom resource comes first on purpose: Apply orders CRDs before everything else.
	srv.Apply(t, widget(1), crd)
	srv.Apply(t, widget(2)) // second apply updates

	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	got, err := srv.Dynamic().Resource(gvr).Namespace(ns).Get(context.Background(), "w", metav1.GetOptions{})
	require.NoError(t, err)
	size, _, _ := unstructured.NestedInt64(got.Object, "spec", "size")
	assert.Equal(t, int64(2), size)
}

func TestMarkRolledOut(t *testing.T) {
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "mark")
	apps := srv.Clientset().AppsV1()
	labels := map[string]string{"app": "x"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	_, err := apps.Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "d"},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](2), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = apps.StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "s"},
		Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	srv.MarkRolledOut(t, ns, "Deployment", "d")
	srv.MarkRolledOut(t, ns, "sts", "s")

	d, err := apps.Deployments(ns).Get(ctx, "d", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, d.Generation, d.Status.ObservedGeneration)
	assert.Equal(t, int32(2), d.Status.AvailableReplicas)
	assert.Equal(t, int32(2), d.Status.UpdatedReplicas)
	s, err := apps.StatefulSets(ns).Get(ctx, "s", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(1), s.Status.ReadyReplicas)
	assert.NotEmpty(t, s.Status.UpdateRevision)
	assert.Equal(t, s.Status.UpdateRevision, s.Status.CurrentRevision)
}

func TestTail(t *testing.T) {
	assert.Equal(t, "c\nd", string(Tail([]byte("a\nb\nc\nd\n"), 2)))
	assert.Equal(t, "a", string(Tail([]byte("a"), 5)))
}

func TestStartFailureIncludesLog(t *testing.T) {
	bin := t.TempDir()
	require.NoError(t, os.Symlink(filepath.Join(srv.BinDir, "etcd"), filepath.Join(bin, "etcd")))
	fake := "#!/bin/sh\necho 'E0101 unknown flag: --bogus' >&2\nexit 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(bin, "kube-apiserver"), []byte(fake), 0o755))
	t.Setenv("KAPI_BIN", bin)

	s, err := Start()
	require.Error(t, err)
	assert.Nil(t, s)
	assert.Contains(t, err.Error(), "kube-apiserver exited during start-up")
	assert.Contains(t, err.Error(), "E0101 unknown flag: --bogus")
}

func TestStartWithMissingKAPIBin(t *testing.T) {
	t.Setenv("KAPI_BIN", t.TempDir())
	_, err := Start()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "KAPI_BIN=")
}
