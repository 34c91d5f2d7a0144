package openshifttest_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
)

var metav1GetOptions = metav1.GetOptions{}

func TestPullSecrets(t *testing.T) {
	cs := kube.Clientset()
	p := &openshifttest.PullSecrets{Client: cs, Log: t.Logf}
	start(t, p.Start)
	ctx := context.Background()
	ns := kube.CreateNamespace(t, "pull")
	for _, tc := range []struct {
		name string
		sa   corev1.ServiceAccount
		// want: the imagePullSecrets before the managed one.
		want []string
	}{
		{"a ServiceAccount without pull secrets gets its dockercfg", corev1.ServiceAccount{}, nil},
		{"its own pull secrets are kept, the managed one appended (the list is atomic)",
			corev1.ServiceAccount{ImagePullSecrets: []corev1.LocalObjectReference{{Name: "job-image-pull-secret"}}},
			[]string{"job-image-pull-secret"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sa := tc.sa.DeepCopy()
			sa.Name = "sa-" + randSuffix()
			_, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
			require.NoError(t, err)
			got := eventually(t, "the managed pull secret on "+sa.Name, func() (*corev1.ServiceAccount, error) {
				return cs.CoreV1().ServiceAccounts(ns).Get(ctx, sa.Name, metav1.GetOptions{})
			}, func(s *corev1.ServiceAccount) bool { return len(s.ImagePullSecrets) == len(tc.want)+1 })
			managed := got.ImagePullSecrets[len(got.ImagePullSecrets)-1].Name
			assert.Regexp(t, regexp.MustCompile("^"+sa.Name+"-dockercfg-[a-z0-9]{5}$"), managed)
			var names []string
			for _, r := range got.ImagePullSecrets[:len(tc.want)] {
				names = append(names, r.Name)
			}
			assert.Equal(t, tc.want, names)
			assert.Equal(t, managed, got.Annotations[openshifttest.PullSecretRefAnnotation])
			require.Len(t, got.Secrets, 1)
			assert.Equal(t, managed, got.Secrets[0].Name)
			sec := eventually(t, "Secret "+managed, func() (*corev1.Secret, error) {
				return cs.CoreV1().Secrets(ns).Get(ctx, managed, metav1.GetOptions{})
			}, func(*corev1.Secret) bool { return true })
			assert.Equal(t, corev1.SecretTypeDockercfg, sec.Type)
			assert.Equal(t, sa.Name, sec.Annotations[openshifttest.PullSecretServiceAccountAnnotation])
			require.Len(t, sec.OwnerReferences, 1)
			assert.Equal(t, got.UID, sec.OwnerReferences[0].UID)

			// Whoever writes the list back as it was (an apply of the ServiceAccount as in git) loses the
			// managed entry; the controller appends the same one again: the fight the tree must avoid.
			got.ImagePullSecrets = got.ImagePullSecrets[:len(tc.want)]
			_, err = cs.CoreV1().ServiceAccounts(ns).Update(ctx, got, metav1.UpdateOptions{})
			require.NoError(t, err)
			again := eventually(t, "the managed pull secret appended again", func() (*corev1.ServiceAccount, error) {
				return cs.CoreV1().ServiceAccounts(ns).Get(ctx, sa.Name, metav1.GetOptions{})
			}, func(s *corev1.ServiceAccount) bool { return len(s.ImagePullSecrets) == len(tc.want)+1 })
			assert.Equal(t, managed, again.ImagePullSecrets[len(tc.want)].Name, "the same Secret, found by the annotation")
		})
	}
}
