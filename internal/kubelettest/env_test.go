package kubelettest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two"}
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"$(A", "$(A"},
		{"cost $5", "cost $5"},
		{"end$", "end$"},
	} {
		assert.Equal(t, tc.want, expand(tc.in, vars), tc.in)
	}
}

func TestImageName(t *testing.T) {
	for in, want := range map[string]string{
		"ghcr.io/litemaas-gitops/litemaas-sync:0.1.0":          "ghcr.io/litemaas-gitops/litemaas-sync",
		"ghcr.io/litemaas-gitops/litemaas-sync@sha256:abc":     "ghcr.io/litemaas-gitops/litemaas-sync",
		"ghcr.io/litemaas-gitops/litemaas-sync:0.1.0@sha256:a": "ghcr.io/litemaas-gitops/litemaas-sync",
		"localhost:5000/x/y":                                   "localhost:5000/x/y",
		"localhost:5000/x/y:1":                                 "localhost:5000/x/y",
		"postgres":                                             "postgres",
	} {
		assert.Equal(t, want, ImageName(in), in)
	}
}

func TestFieldValue(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: "p", Namespace: "ns", UID: "u",
		Labels: map[string]string{"batch.kubernetes.io/job-name": "litemaas-sync", "batch.kubernetes.io/controller-uid": "j-1"},
	}, Spec: corev1.PodSpec{ServiceAccountName: "sa"}}
	for path, want := range map[string]string{
		"metadata.name": "p", "metadata.namespace": "ns", "metadata.uid": "u", "spec.serviceAccountName": "sa",
		"metadata.labels['batch.kubernetes.io/job-name']":       "litemaas-sync",
		"metadata.labels['batch.kubernetes.io/controller-uid']": "j-1",
		"metadata.labels['absent']":                             "",
	} {
		got, err := fieldValue(pod, path)
		require.NoError(t, err, path)
		assert.Equal(t, want, got, path)
	}
	_, err := fieldValue(pod, "spec.unknown")
	assert.Error(t, err)
}

func TestRewriteQueryPaths(t *testing.T) {
	mounts := []mount{{path: "/etc/litemaas/db-ca", local: "/tmp/pod/volumes/db-ca"}}
	for in, want := range map[string]string{
		"postgresql://u:p@litemaas-db-rw:5432/db?sslmode=verify-full&sslrootcert=/etc/litemaas/db-ca/ca.crt": "postgresql://u:p@litemaas-db-rw:5432/db?sslmode=verify-full&sslrootcert=/tmp/pod/volumes/db-ca/ca.crt",
		"postgresql://u:p@h:5432/db?sslmode=disable":                                                         "postgresql://u:p@h:5432/db?sslmode=disable",
		"plain=/etc/litemaas/db-ca/ca.crt not a URL":                                                         "plain=/etc/litemaas/db-ca/ca.crt not a URL",
	} {
		assert.Equal(t, want, rewriteQueryPaths(in, mounts), in)
	}
}
