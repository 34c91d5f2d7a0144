package openshifttest_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
)

func TestBlockAndMCS(t *testing.T) {
	for _, tc := range []struct {
		block    int
		uid, mcs string
	}{
		{0, "1000000000/10000", "s0:c1,c0"},
		{1, "1000010000/10000", "s0:c3,c2"},
		// A namespace as seen on clusters: uid-range 1000680000/10000 with mcs s0:c26,c15.
		{68, "1000680000/10000", "s0:c26,c15"},
	} {
		assert.Equal(t, tc.uid, openshifttest.Block(tc.block), "block %d", tc.block)
		assert.Equal(t, tc.mcs, openshifttest.MCSLabel(tc.block), "block %d", tc.block)
	}
}

func TestSCC(t *testing.T) {
	cs := kube.Clientset()
	s := &openshifttest.SCC{Client: cs, Log: t.Logf}
	start(t, s.Start)
	ctx := context.Background()
	ns := kube.CreateNamespace(t, "scc")
	other := kube.CreateNamespace(t, "scc")
	annotated := func(name string) *corev1.Namespace {
		return eventually(t, "namespace "+name+" annotated", func() (*corev1.Namespace, error) {
			return cs.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
		}, func(n *corev1.Namespace) bool { return n.Annotations[openshifttest.UIDRangeAnnotation] != "" })
	}
	a, b := annotated(ns), annotated(other)
	assert.NotEqual(t, a.Annotations[openshifttest.UIDRangeAnnotation], b.Annotations[openshifttest.UIDRangeAnnotation], "each namespace its own block")
	assert.Equal(t, a.Annotations[openshifttest.UIDRangeAnnotation], a.Annotations[openshifttest.SupplementalGroupsAnnotation])
	assert.Regexp(t, `^s0:c\d+,c\d+$`, a.Annotations[openshifttest.MCSAnnotation])
	var first int64
	_, err := fmtSscan(a.Annotations[openshifttest.UIDRangeAnnotation], &first)
	require.NoError(t, err)

	pod := func(name string, user *int64) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
				Containers:     []corev1.Container{{Name: "main", Image: "busybox"}, {Name: "side", Image: "busybox"}},
			},
		}
		if user != nil {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: user}
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		wantErr string
		want    int64 // main's user
	}{
		{"a pod without users gets the range's first UID, fsGroup and MCS level", pod("plain", nil), "", first},
		{"a user inside the range is kept", pod("inside", ptr.To(first+5)), "", first + 5},
		{"a user outside the range fits no SCC", pod("outside", ptr.To(int64(1001))), "unable to validate against any security context constraint", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *corev1.Pod
			var err error
			// The policies take effect a moment after they are created.
			eventually(t, "admission by the SCC policies", func() (bool, error) {
				got, err = cs.CoreV1().Pods(ns).Create(ctx, tc.pod, metav1.CreateOptions{})
				if err == nil {
					_ = cs.CoreV1().Pods(ns).Delete(ctx, tc.pod.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))})
				}
				if tc.wantErr != "" {
					return err != nil, nil
				}
				return err == nil && got.Annotations[openshifttest.SCCAnnotation] != "", nil
			}, func(ok bool) bool { return ok })
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "restricted-v2", got.Annotations[openshifttest.SCCAnnotation])
			require.NotNil(t, got.Spec.SecurityContext)
			assert.Equal(t, ptr.To(first), got.Spec.SecurityContext.FSGroup)
			require.NotNil(t, got.Spec.SecurityContext.SELinuxOptions)
			assert.Equal(t, a.Annotations[openshifttest.MCSAnnotation], got.Spec.SecurityContext.SELinuxOptions.Level)
			assert.Equal(t, ptr.To(tc.want), got.Spec.Containers[0].SecurityContext.RunAsUser)
			assert.Equal(t, ptr.To(first), got.Spec.Containers[1].SecurityContext.RunAsUser)
			assert.Equal(t, ptr.To(first), got.Spec.InitContainers[0].SecurityContext.RunAsUser)
		})
	}
}
