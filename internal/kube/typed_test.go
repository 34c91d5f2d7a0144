package kube_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

func TestGroupVersionServed(t *testing.T) {
	ns := srv.CreateNamespace(t, "served")
	job := srv.TokenConfig(t, ns, "job") // discovery needs no Role
	anonymous := rest.AnonymousClientConfig(job)
	tests := []struct {
		name      string
		cfg       *rest.Config
		gv        string
		want      bool
		wantCheck func(error) bool
	}{
		{name: "core group", cfg: job, gv: "v1", want: true},
		{name: "apps", cfg: job, gv: "apps/v1", want: true},
		{name: "no Route kind on a plain API server", cfg: job, gv: "route.openshift.io/v1", want: false},
		{name: "unknown version", cfg: job, gv: "apps/v9", want: false},
		{name: "anonymous is refused", cfg: anonymous, gv: "apps/v1", wantCheck: func(err error) bool {
			return apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := kube.GroupVersionServed(tc.cfg)(context.Background(), tc.gv)
			if tc.wantCheck != nil {
				require.Error(t, err)
				assert.True(t, tc.wantCheck(err), "the API server's status is lost: %v", err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestTyped round-trips Secrets through the dynamic client: bytes stay bytes, the API server's
// errors keep their kind, and an update with a stale resourceVersion is refused.
func TestTyped(t *testing.T) {
	ctx := context.Background()
	ns := srv.CreateNamespace(t, "typed")
	secrets := kube.Secrets(srv.Dynamic(), ns)

	_, err := secrets.Get(ctx, "absent", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)

	created, err := secrets.Create(ctx, &kube.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "s", Labels: map[string]string{"a": "b"}},
		Type:       kube.SecretTypeOpaque,
		Data:       map[string][]byte{"k": {0, 1, 0xff}},
	}, metav1.CreateOptions{FieldManager: "test"})
	require.NoError(t, err)
	assert.NotEmpty(t, created.ResourceVersion)

	typed, err := srv.Clientset().CoreV1().Secrets(ns).Get(ctx, "s", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 1, 0xff}, typed.Data["k"], "what the typed client reads")
	assert.Equal(t, corev1.SecretTypeOpaque, typed.Type)

	_, err = secrets.Create(ctx, &kube.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}}, metav1.CreateOptions{})
	assert.True(t, apierrors.IsAlreadyExists(err), "%v", err)

	got, err := secrets.Get(ctx, "s", metav1.GetOptions{})
	require.NoError(t, err)
	got.Data["k2"] = []byte("v")
	updated, err := secrets.Update(ctx, got, metav1.UpdateOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string][]byte{"k": {0, 1, 0xff}, "k2": []byte("v")}, updated.Data)

	_, err = secrets.Update(ctx, created, metav1.UpdateOptions{}) // the resourceVersion of before
	assert.True(t, apierrors.IsConflict(err), "%v", err)
}
