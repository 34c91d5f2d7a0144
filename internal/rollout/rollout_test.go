package rollout_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kapitest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/rollout"
)

var srv *kapitest.Server

func TestMain(m *testing.M) {
	srv = kapitest.MustStart(m)
	code := m.Run()
	srv.Stop()
	os.Exit(code)
}

// maxReaction is how long Wait may take to return after the last workload's status says rolled out.
const maxReaction = 1500 * time.Millisecond

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func podTemplate(app, image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": app}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: app, Image: image}}},
	}
}

func createDeployment(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	_, err := srv.Clientset().AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "registry.example/"+name+":1"),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

func createStatefulSet(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	_, err := srv.Clientset().AppsV1().StatefulSets(ns).Create(t.Context(), &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: podTemplate(name, "registry.example/"+name+":1"),
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
}

// updateDeployment applies mutate to the spec (update) or, with status=true, to the status subresource.
func updateDeployment(t *testing.T, ns, name string, status bool, mutate func(*appsv1.Deployment)) {
	t.Helper()
	c := srv.Clientset().AppsV1().Deployments(ns)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := c.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(d)
		if status {
			_, err = c.UpdateStatus(t.Context(), d, metav1.UpdateOptions{})
		} else {
			_, err = c.Update(t.Context(), d, metav1.UpdateOptions{})
		}
		return err
	}))
}

func updateStatefulSet(t *testing.T, ns, name string, status bool, mutate func(*appsv1.StatefulSet)) {
	t.Helper()
	c := srv.Clientset().AppsV1().StatefulSets(ns)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		s, err := c.Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(s)
		if status {
			_, err = c.UpdateStatus(t.Context(), s, metav1.UpdateOptions{})
		} else {
			_, err = c.Update(t.Context(), s, metav1.UpdateOptions{})
		}
		return err
	}))
}

// markProgressing writes what the deployment controller writes while the new pods are not ready.
func markProgressing(t *testing.T, ns, name string) {
	t.Helper()
	updateDeployment(t, ns, name, true, func(d *appsv1.Deployment) {
		now := metav1.Now()
		d.Status = appsv1.DeploymentStatus{
			ObservedGeneration: d.Generation, Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1,
			Conditions: []appsv1.DeploymentCondition{{
				Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated",
				Message: `ReplicaSet "` + name + `-abc" is progressing.`, LastUpdateTime: now, LastTransitionTime: now,
			}},
		}
	})
}

type result struct {
	err error
	at  time.Time
}

func startWait(ctx context.Context, w *rollout.Waiter) <-chan result {
	ch := make(chan result, 1)
	go func() {
		err := w.Wait(ctx)
		ch <- result{err: err, at: time.Now()}
	}()
	return ch
}

// eventuallyPending waits until Pending reports exactly want, i.e. the watch has delivered that state.
func eventuallyPending(t *testing.T, w *rollout.Waiter, want ...string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, want, w.Pending())
	}, 10*time.Second, 10*time.Millisecond)
}

// stillWaiting asserts Wait has not returned for a while.
func stillWaiting(t *testing.T, done <-chan result) {
	t.Helper()
	select {
	case r := <-done:
		t.Fatalf("Wait returned early: %v", r.err)
	case <-time.After(300 * time.Millisecond):
	}
}

func receive(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return")
		return result{}
	}
}

func TestWaitReturnsSoonAfterRollout(t *testing.T) {
	ns := srv.CreateNamespace(t, "reaction")
	createDeployment(t, ns, "litellm", 1)
	markProgressing(t, ns, "litellm")

	w := &rollout.Waiter{
		Client: srv.Dynamic(), Namespace: ns, Logger: testLogger(t),
		Workloads: []rollout.Workload{{Kind: "deployment", Name: "litellm"}},
	}
	done := startWait(t.Context(), w)
	eventuallyPending(t, w, `deployment/litellm: 0/1 ready, 1/1 updated, Progressing: ReplicaSet "litellm-abc" is progressing.`)
	stillWaiting(t, done)

	patchStart := time.Now()
	srv.MarkRolledOut(t, ns, "deployment", "litellm")
	patchDone := time.Now()
	r := receive(t, done)
	require.NoError(t, r.err)
	reaction := r.at.Sub(patchStart)
	t.Logf("reaction time: Wait returned %v after the status update was sent (%v after its response; the update call took %v)",
		reaction.Round(time.Millisecond), r.at.Sub(patchDone).Round(time.Millisecond), patchDone.Sub(patchStart).Round(time.Millisecond))
	assert.Less(t, reaction, maxReaction)
	assert.Empty(t, w.Pending())
}

func TestWaitTimeoutReportsPending(t *testing.T) {
	t.Parallel()
	ns := srv.CreateNamespace(t, "timeout")
	createDeployment(t, ns, "litellm", 1)
	markProgressing(t, ns, "litellm")
	createDeployment(t, ns, "backend", 1)
	srv.MarkRolledOut(t, ns, "deployment", "backend")
	// A spec change the (absent) controller has not observed yet.
	updateDeployment(t, ns, "backend", false, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "registry.example/backend:2"
	})
	createDeployment(t, ns, "frontend", 1)
	srv.MarkRolledOut(t, ns, "deployment", "frontend")

	workloads, err := rollout.ParseWorkloads("statefulset/postgres,deployment/litellm,deployment/backend,deployment/frontend")
	require.NoError(t, err)
	w := &rollout.Waiter{Client: srv.Dynamic(), Namespace: ns, Workloads: workloads, Logger: testLogger(t)}
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = w.Wait(ctx)
	t.Logf("Wait gave up after %v: %v", time.Since(start).Round(time.Millisecond), err)

	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "statefulset/postgres, deployment/litellm, deployment/backend")
	assert.NotContains(t, err.Error(), "frontend")
	assert.Equal(t, []string{
		"statefulset/postgres: not found",
		`deployment/litellm: 0/1 ready, 1/1 updated, Progressing: ReplicaSet "litellm-abc" is progressing.`,
		"deployment/backend: waiting for rollout: observed generation 1 < generation 2",
	}, w.Pending())
}

func TestWaitForWorkloadCreatedLater(t *testing.T) {
	t.Parallel()
	ns := srv.CreateNamespace(t, "later")
	w := &rollout.Waiter{
		Client: srv.Dynamic(), Namespace: ns, Logger: testLogger(t),
		Workloads: []rollout.Workload{{Kind: "sts", Name: "postgres"}},
	}
	done := startWait(t.Context(), w)
	eventuallyPending(t, w, "statefulset/postgres: not found")
	stillWaiting(t, done)

	createStatefulSet(t, ns, "postgres", 1)
	eventuallyPending(t, w, "statefulset/postgres: waiting for rollout: generation 1 not observed yet")

	patched := time.Now()
	srv.MarkRolledOut(t, ns, "statefulset", "postgres")
	r := receive(t, done)
	require.NoError(t, r.err)
	t.Logf("reaction time (statefulset created after Wait started): %v", r.at.Sub(patched).Round(time.Millisecond))
	assert.Less(t, r.at.Sub(patched), maxReaction)
}

func TestWaitRolloutInProgress(t *testing.T) {
	t.Parallel()
	ns := srv.CreateNamespace(t, "inprogress")
	createDeployment(t, ns, "backend", 1)
	srv.MarkRolledOut(t, ns, "deployment", "backend")
	// New spec: generation 2, while the status still describes generation 1 as fully rolled out.
	updateDeployment(t, ns, "backend", false, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "registry.example/backend:2"
	})

	w := &rollout.Waiter{
		Client: srv.Dynamic(), Namespace: ns, Logger: testLogger(t),
		Workloads: []rollout.Workload{{Kind: "Deployment", Name: "backend"}},
	}
	done := startWait(t.Context(), w)
	eventuallyPending(t, w, "deployment/backend: waiting for rollout: observed generation 1 < generation 2")
	stillWaiting(t, done)

	// The controller observed generation 2 and started a new ReplicaSet; the old pod still serves.
	updateDeployment(t, ns, "backend", true, func(d *appsv1.Deployment) {
		now := metav1.Now()
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = 2, 1, 1, 1
		d.Status.Conditions = []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated",
			Message: `ReplicaSet "backend-def" is progressing.`, LastUpdateTime: now, LastTransitionTime: now,
		}}
	})
	eventuallyPending(t, w, `deployment/backend: 1/1 ready, 1 old replicas pending termination, Progressing: ReplicaSet "backend-def" is progressing.`)
	stillWaiting(t, done)

	srv.MarkRolledOut(t, ns, "deployment", "backend")
	require.NoError(t, receive(t, done).err)
}

func TestWaitStatefulSetRevision(t *testing.T) {
	t.Parallel()
	ns := srv.CreateNamespace(t, "sts")
	createStatefulSet(t, ns, "postgres", 2)
	srv.MarkRolledOut(t, ns, "statefulset", "postgres")
	updateStatefulSet(t, ns, "postgres", false, func(s *appsv1.StatefulSet) {
		s.Spec.Template.Spec.Containers[0].Image = "registry.example/postgres:2"
	})
	// Generation 2 observed; one of two pods is on the new revision, both ready.
	updateStatefulSet(t, ns, "postgres", true, func(s *appsv1.StatefulSet) {
		s.Status.ObservedGeneration = s.Generation
		s.Status.UpdatedReplicas, s.Status.CurrentReplicas = 1, 1
		s.Status.UpdateRevision = "postgres-new"
	})
	cur, err := srv.Clientset().AppsV1().StatefulSets(ns).Get(t.Context(), "postgres", metav1.GetOptions{})
	require.NoError(t, err)

	w := &rollout.Waiter{
		Client: srv.Dynamic(), Namespace: ns, Logger: testLogger(t),
		Workloads: []rollout.Workload{{Kind: "statefulset", Name: "postgres"}},
	}
	done := startWait(t.Context(), w)
	eventuallyPending(t, w, "statefulset/postgres: 2/2 ready, 1/2 updated, updating revision "+cur.Status.CurrentRevision+" to postgres-new")
	stillWaiting(t, done)

	srv.MarkRolledOut(t, ns, "statefulset", "postgres")
	require.NoError(t, receive(t, done).err)
	s, err := srv.Clientset().AppsV1().StatefulSets(ns).Get(t.Context(), "postgres", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "postgres-new", s.Status.CurrentRevision)
}

// jobRBAC is the job's least-privilege access: read the workloads it waits for, and one ConfigMap.
func jobRBAC(ns string) []*unstructured.Unstructured {
	return []*unstructured.Unstructured{
		{Object: map[string]any{
			"apiVersion": "v1", "kind": "ServiceAccount",
			"metadata": map[string]any{"name": "litemaas-sync", "namespace": ns},
		}},
		{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"metadata": map[string]any{"name": "litemaas-sync", "namespace": ns},
			"rules": []any{
				map[string]any{
					"apiGroups": []any{"apps"}, "resources": []any{"deployments", "statefulsets"},
					"verbs": []any{"get", "list", "watch"},
				},
				map[string]any{
					"apiGroups": []any{""}, "resources": []any{"configmaps"},
					"resourceNames": []any{"litemaas-models"}, "verbs": []any{"get"},
				},
			},
		}},
		{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"metadata": map[string]any{"name": "litemaas-sync", "namespace": ns},
			"roleRef": map[string]any{
				"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "litemaas-sync",
			},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "litemaas-sync", "namespace": ns}},
		}},
	}
}

func TestWaitAsServiceAccount(t *testing.T) {
	t.Parallel()
	ns := srv.CreateNamespace(t, "rbac")
	other := srv.CreateNamespace(t, "rbac-other")
	srv.Apply(t, jobRBAC(ns)...)
	ctx := t.Context()
	admin := srv.Clientset()
	_, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "litemaas-models"}, Data: map[string]string{"models.yaml": "[]"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "postgres"}, StringData: map[string]string{"password": "x"},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	createStatefulSet(t, ns, "postgres", 1)
	createDeployment(t, ns, "litellm", 1)
	createDeployment(t, other, "litellm", 1)

	job, err := kubernetes.NewForConfig(srv.TokenConfig(t, ns, "litemaas-sync"))
	require.NoError(t, err)
	jobDynamic, err := dynamic.NewForConfig(srv.TokenConfig(t, ns, "litemaas-sync"))
	require.NoError(t, err)

	t.Run("wait works with the job's token", func(t *testing.T) {
		workloads, err := rollout.ParseWorkloads("statefulset/postgres,deployment/litellm")
		require.NoError(t, err)
		w := &rollout.Waiter{Client: jobDynamic, Namespace: ns, Workloads: workloads, Logger: testLogger(t)}
		done := startWait(t.Context(), w)
		eventuallyPending(t, w,
			"statefulset/postgres: waiting for rollout: generation 1 not observed yet",
			"deployment/litellm: waiting for rollout: generation 1 not observed yet")
		srv.MarkRolledOut(t, ns, "statefulset", "postgres")
		patched := time.Now()
		srv.MarkRolledOut(t, ns, "deployment", "litellm")
		r := receive(t, done)
		require.NoError(t, r.err)
		t.Logf("reaction time as the ServiceAccount: %v", r.at.Sub(patched).Round(time.Millisecond))
	})

	t.Run("the job's token is refused elsewhere", func(t *testing.T) {
		checks := []struct {
			name string
			call func(context.Context) error
		}{
			{"get secret", func(ctx context.Context) error {
				_, err := job.CoreV1().Secrets(ns).Get(ctx, "postgres", metav1.GetOptions{})
				return err
			}},
			{"list secrets", func(ctx context.Context) error {
				_, err := job.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
				return err
			}},
			{"get another configmap", func(ctx context.Context) error {
				_, err := job.CoreV1().ConfigMaps(ns).Get(ctx, "kube-root-ca.crt", metav1.GetOptions{})
				return err
			}},
			{"list configmaps", func(ctx context.Context) error {
				_, err := job.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
				return err
			}},
			{"get deployment in another namespace", func(ctx context.Context) error {
				_, err := job.AppsV1().Deployments(other).Get(ctx, "litellm", metav1.GetOptions{})
				return err
			}},
			{"list deployments in all namespaces", func(ctx context.Context) error {
				_, err := job.AppsV1().Deployments("").List(ctx, metav1.ListOptions{})
				return err
			}},
			{"write deployment status", func(ctx context.Context) error {
				d, err := admin.AppsV1().Deployments(ns).Get(ctx, "litellm", metav1.GetOptions{})
				if err != nil {
					return err
				}
				_, err = job.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
				return err
			}},
			{"delete deployment", func(ctx context.Context) error {
				return job.AppsV1().Deployments(ns).Delete(ctx, "litellm", metav1.DeleteOptions{})
			}},
		}
		for _, c := range checks {
			err := c.call(t.Context())
			assert.True(t, apierrors.IsForbidden(err), "%s: want Forbidden, got %v", c.name, err)
		}
		// Positive control: the one ConfigMap the Role names.
		_, err := job.CoreV1().ConfigMaps(ns).Get(t.Context(), "litemaas-models", metav1.GetOptions{})
		assert.NoError(t, err)
	})

	t.Run("a Role limited by resourceNames suffices", func(t *testing.T) {
		// Each workload is listed and watched with a metadata.name field selector, which RBAC
		// authorizes against resourceNames.
		srv.Apply(t, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
			"metadata": map[string]any{"name": "narrow", "namespace": ns},
			"rules": []any{map[string]any{
				"apiGroups": []any{"apps"}, "resources": []any{"deployments"},
				"resourceNames": []any{"litellm"}, "verbs": []any{"get", "list", "watch"},
			}},
		}}, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
			"metadata": map[string]any{"name": "narrow", "namespace": ns},
			"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "narrow"},
			"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": "narrow", "namespace": ns}},
		}})
		narrow, err := dynamic.NewForConfig(srv.TokenConfig(t, ns, "narrow"))
		require.NoError(t, err)
		_, err = narrow.Resource(rollout.Workload{Kind: rollout.KindDeployment}.Resource()).Namespace(ns).List(t.Context(), metav1.ListOptions{})
		require.True(t, apierrors.IsForbidden(err), "an unrestricted list must be refused, got %v", err)

		w := &rollout.Waiter{
			Client: narrow, Namespace: ns, Logger: testLogger(t),
			Workloads: []rollout.Workload{{Kind: "deployment", Name: "litellm"}},
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		require.NoError(t, w.Wait(ctx))
	})

	t.Run("Pending shows the Forbidden error", func(t *testing.T) {
		w := &rollout.Waiter{
			Client: jobDynamic, Namespace: other, Logger: testLogger(t),
			Workloads: []rollout.Workload{{Kind: "deployment", Name: "litellm"}},
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		err := w.Wait(ctx)
		require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
		pending := w.Pending()
		require.Len(t, pending, 1)
		assert.True(t, strings.HasPrefix(pending[0], "deployment/litellm: not observed yet; last list/watch error: "), pending[0])
		assert.Contains(t, pending[0], `deployments.apps "litellm" is forbidden`)
		assert.Contains(t, pending[0], "system:serviceaccount:"+ns+":litemaas-sync")
	})
}
