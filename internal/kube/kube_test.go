package kube_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

var srv *kapitest.Server

func TestMain(m *testing.M) {
	srv = kapitest.MustStart(m)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// isolateEnv makes the test independent of the developer's kubeconfig and of running inside a pod.
func isolateEnv(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	t.Setenv("POD_NAMESPACE", "")
	nsFile = filepath.Join(t.TempDir(), "namespace")
	t.Cleanup(kube.SetServiceAccountNamespaceFile(nsFile))
}

// nsFile is where the current test's pod namespace is written (see isolateEnv).
var nsFile string

func TestReadConfigMapKey(t *testing.T) {
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "readcm")
	admin := srv.Clientset()
	_, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "models"},
		Data:       map[string]string{"models.yaml": "- name: a\n"},
		BinaryData: map[string][]byte{"blob": {0, 1, 2}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	// An identity that may read only this one ConfigMap, as the job's Role allows.
	_, err = admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "read-models"},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"models"}, Verbs: []string{"get"},
		}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "read-models"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "read-models"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "job"}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	limited, err := dynamic.NewForConfig(srv.TokenConfig(t, ns, "job"))
	require.NoError(t, err)

	tests := []struct {
		name      string
		client    dynamic.Interface
		cm, key   string
		want      string
		wantErr   string
		wantCheck func(error) bool
	}{
		{name: "data key", client: srv.Dynamic(), cm: "models", key: "models.yaml", want: "- name: a\n"},
		{name: "binaryData key", client: srv.Dynamic(), cm: "models", key: "blob", want: "\x00\x01\x02"},
		{name: "allowed by resourceNames", client: limited, cm: "models", key: "models.yaml", want: "- name: a\n"},
		{
			name: "missing key", client: srv.Dynamic(), cm: "models", key: "nope",
			wantErr: `configmap ` + ns + `/models has no key "nope" (keys: blob, models.yaml)`,
		},
		{
			name: "missing configmap", client: srv.Dynamic(), cm: "absent", key: "k",
			wantErr: `configmap ` + ns + `/absent not found (wanted key "k")`, wantCheck: apierrors.IsNotFound,
		},
		{
			name: "forbidden", client: limited, cm: "kube-root-ca.crt", key: "ca.crt",
			wantErr: `reading configmap ` + ns + `/kube-root-ca.crt (key "ca.crt")`, wantCheck: apierrors.IsForbidden,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kube.ReadConfigMapKey(ctx, tc.client, ns, tc.cm, tc.key)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				if tc.wantCheck != nil {
					assert.True(t, tc.wantCheck(err), "error kind lost in wrapping: %v", err)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, string(got))
		})
	}
}

func TestRESTConfigFromKubeconfig(t *testing.T) {
	isolateEnv(t)
	ns := srv.CreateNamespace(t, "restcfg")
	t.Setenv("KUBECONFIG", srv.WriteKubeconfig(t, srv.TokenConfig(t, ns, "job")))

	cfg, err := kube.RESTConfig()
	require.NoError(t, err)
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	_, err = cs.Discovery().ServerVersion()
	require.NoError(t, err, "the kubeconfig's CA and token work")
}

func TestRESTConfigNone(t *testing.T) {
	isolateEnv(t)
	_, err := kube.RESTConfig()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "not running in a pod")
	assert.Contains(t, err.Error(), "set KUBECONFIG")
}

func TestDefaultNamespace(t *testing.T) {
	writeKubeconfig := func(t *testing.T, namespace string) string {
		cfg := srv.WriteKubeconfig(t, srv.Config)
		kc, err := clientcmd.LoadFromFile(cfg)
		require.NoError(t, err)
		kc.Contexts[kc.CurrentContext].Namespace = namespace
		require.NoError(t, clientcmd.WriteToFile(*kc, cfg))
		return cfg
	}
	tests := []struct {
		name       string
		kubeconfig string // namespace of the kubeconfig context; "-" means no KUBECONFIG
		podNS      string // content of the serviceaccount namespace file; "" means no file
		want       string
	}{
		{name: "kubeconfig context namespace", kubeconfig: "litemaas", want: "litemaas"},
		{name: "kubeconfig without namespace", kubeconfig: "", want: "default"},
		{name: "pod namespace", kubeconfig: "-", podNS: "litemaas-pod\n", want: "litemaas-pod"},
		{name: "explicit KUBECONFIG wins over the pod", kubeconfig: "other", podNS: "litemaas-pod", want: "other"},
		{name: "nothing at all", kubeconfig: "-", want: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			if tc.kubeconfig != "-" {
				t.Setenv("KUBECONFIG", writeKubeconfig(t, tc.kubeconfig))
			}
			if tc.podNS != "" {
				require.NoError(t, os.WriteFile(nsFile, []byte(tc.podNS), 0o600))
			}
			assert.Equal(t, tc.want, kube.DefaultNamespace())
		})
	}
}
