package argocd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/litemaas-gitops/litemaas-gitops/internal/argocdtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// applyProject applies the AppProject of the repository under test (gitops/argocd/project.yaml, whose
// sourceRepos NewRepo pointed at that repository).
func applyProject(ctx context.Context, f *fixture) error {
	proj, err := manifests.ReadProject(f.repo.Work)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := f.kube.ApplyObjects(ctx, proj); err != nil {
		return fmt.Errorf("applying AppProject %s: %w", proj.GetName(), err)
	}
	return nil
}

// TestAppProjectRefuses: a commit that makes the tree apply a ClusterRoleBinding, or a Role in another
// namespace, is refused by Argo CD through the AppProject: the sync fails naming the object and the
// project, and nothing of the commit (nor of the rest of the overlay) is applied.
func TestAppProjectRefuses(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	crb := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: litemaas-escalate
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: litemaas-sync
    namespace: litemaas
`
	role := `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: litemaas-escalate
  namespace: kube-system
rules:
  - apiGroups: [""]
    resources: [secrets]
    verbs: [get, list]
`
	cases := []struct {
		name, dir, file, object string
		gone                    func() error
		want                    string
	}{
		{"a ClusterRoleBinding", "gitops/escalate-crb", crb, "ClusterRoleBinding/litemaas-escalate",
			func() error {
				_, err := f.kube.Clientset().RbacV1().ClusterRoleBindings().Get(ctx, "litemaas-escalate", metav1.GetOptions{})
				return err
			}, "resource rbac.authorization.k8s.io:ClusterRoleBinding is not permitted in project litemaas"},
		{"a Role in namespace kube-system", "gitops/escalate-role", role, "Role/litemaas-escalate",
			func() error {
				_, err := f.kube.Clientset().RbacV1().Roles("kube-system").Get(ctx, "litemaas-escalate", metav1.GetOptions{})
				return err
			}, "namespace kube-system is not permitted in project 'litemaas'"},
	}
	shipped := readObject(t, filepath.Join(f.repo.Work, "gitops/argocd/app-of-apps/step-06b-private-ai-litemaas.yaml"))
	apps := f.kube.Dynamic().Resource(argocdtest.ApplicationGVR).Namespace(argocdtest.DefaultNamespace)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The example overlay plus the object, as a commit to the fork would add it.
			head, err := f.repo.Commit(ctx, "add "+tc.object, func(work string) error {
				dir := filepath.Join(work, tc.dir)
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../overlays/example\n  - escalate.yaml\n"
				if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(dir, "escalate.yaml"), []byte(tc.file), 0o644)
			})
			require.NoError(t, err)
			t.Cleanup(func() {
				_, err := f.repo.Commit(ctx, "remove "+tc.object, func(work string) error { return os.RemoveAll(filepath.Join(work, tc.dir)) })
				assert.NoError(t, err)
			})
			runsBefore := len(f.h.Kubelet.Runs())

			app := shipped.DeepCopy()
			name := "escalate-" + filepath.Base(tc.dir)
			app.SetName(name)
			require.NoError(t, unstructured.SetNestedField(app.Object, tc.dir, "spec", "source", "path"))
			require.Equal(t, manifests.ProjectName, nested(app, "spec", "project"))
			f.kube.Apply(t, app)
			t.Cleanup(func() { _ = apps.Delete(ctx, name, metav1.DeleteOptions{}) })

			// The automated sync is refused before any task runs; with the shipped retry policy the
			// operation stays Running between attempts, saying why each time.
			a, err := f.h.WaitApp(ctx, name, 2*time.Minute, func(a *argocdtest.App) bool {
				ph := a.Phase()
				op := a.Status.OperationState
				return ph == "Failed" || ph == "Error" || ph == "Succeeded" || (op != nil && strings.Contains(op.Message, "not permitted in project"))
			})
			require.NoError(t, err)
			var msgs []string
			if op := a.Status.OperationState; op != nil {
				msgs = append(msgs, "operation: "+op.Message)
				if op.SyncResult != nil {
					for _, r := range op.SyncResult.Resources {
						if r.Message != "" {
							msgs = append(msgs, fmt.Sprintf("%s/%s: %s %s", r.Kind, r.Name, r.Status, r.Message))
						}
					}
				}
			}
			for _, c := range a.Status.Conditions {
				msgs = append(msgs, "condition "+c.Type+": "+c.Message)
			}
			t.Logf("Argo CD on %s at %.8s:\n  %s", tc.object, head, strings.Join(msgs, "\n  "))
			assert.NotEqual(t, "Succeeded", a.Phase(), "the sync must be refused")
			assert.Contains(t, strings.Join(msgs, "\n"), tc.want, "the Application says why")
			assert.NotEqual(t, "Synced", a.Status.Sync.Status)

			// Nothing applied: not the object, no hook run, no object tracked as this Application's.
			assert.True(t, apierrors.IsNotFound(tc.gone()), "%s must not exist", tc.object)
			assert.Equal(t, runsBefore, len(f.h.Kubelet.Runs()), "no hook ran")
			for _, gvr := range []schema.GroupVersionResource{{Version: "v1", Resource: "configmaps"}, {Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "batch", Version: "v1", Resource: "jobs"}} {
				l, err := f.kube.Dynamic().Resource(gvr).Namespace(namespace).List(ctx, metav1.ListOptions{})
				require.NoError(t, err)
				for _, o := range l.Items {
					assert.False(t, strings.HasPrefix(o.GetAnnotations()["argocd.argoproj.io/tracking-id"], name+":"), "%s %s was applied by %s", gvr.Resource, o.GetName(), name)
				}
			}
		})
	}
}
