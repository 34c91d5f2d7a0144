package rollout

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func TestParseWorkloads(t *testing.T) {
	tests := []struct {
		in      string
		want    []Workload
		wantErr string
	}{
		{in: "", want: nil},
		{in: " , ", want: nil},
		{
			in:   "statefulset/postgres,deployment/litellm",
			want: []Workload{{KindStatefulSet, "postgres"}, {KindDeployment, "litellm"}},
		},
		{
			in: " StatefulSets/postgres , deploy/litellm, Deployment/backend,deployments.apps/frontend, sts / db ,ds/agent,",
			want: []Workload{
				{KindStatefulSet, "postgres"}, {KindDeployment, "litellm"}, {KindDeployment, "backend"},
				{KindDeployment, "frontend"}, {KindStatefulSet, "db"}, {KindDaemonSet, "agent"},
			},
		},
		{in: "deployment/a,deploy/a", want: []Workload{{KindDeployment, "a"}}},
		{in: "deployment/litellm,postgres", wantErr: `workload "postgres": want KIND/NAME`},
		{in: "deployment/", wantErr: `workload "deployment/": want KIND/NAME`},
		{in: "/x", wantErr: `workload "/x": want KIND/NAME`},
		{in: "pod/x", wantErr: `workload "pod/x": unknown kind "pod"`},
		{in: "deployment/Bad_Name", wantErr: `workload "deployment/Bad_Name": invalid name "Bad_Name"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseWorkloads(tc.in)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestWorkloadString(t *testing.T) {
	assert.Equal(t, "deployment/litellm", Workload{KindDeployment, "litellm"}.String())
}

func deployment(mut func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "litellm", Namespace: "ns", Generation: 1},
		// What the API server's defaulting leaves in place.
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), ProgressDeadlineSeconds: ptr.To[int32](600)},
	}
	mut(d)
	return d
}

func rolledOutDeployment(d *appsv1.Deployment) {
	r := *d.Spec.Replicas
	d.Status = appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation, Replicas: r, UpdatedReplicas: r, ReadyReplicas: r, AvailableReplicas: r,
		Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"},
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable"},
		},
	}
}

func statefulSet(mut func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "postgres", Namespace: "ns", Generation: 1},
		Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1),
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr.To[int32](0)},
			},
		},
	}
	mut(s)
	return s
}

func rolledOutStatefulSet(s *appsv1.StatefulSet) {
	r := *s.Spec.Replicas
	s.Status = appsv1.StatefulSetStatus{
		ObservedGeneration: s.Generation, Replicas: r, ReadyReplicas: r, CurrentReplicas: r, UpdatedReplicas: r,
		AvailableReplicas: r, CurrentRevision: "postgres-1", UpdateRevision: "postgres-1",
	}
}

// rawKstatus is kstatus's own verdict, to document where describe departs from it.
func rawKstatus(t *testing.T, obj runtime.Object) kstatus.Status {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	require.NoError(t, err)
	u := &unstructured.Unstructured{Object: content}
	u.SetAPIVersion("apps/v1")
	switch obj.(type) {
	case *appsv1.Deployment:
		u.SetKind("Deployment")
	case *appsv1.StatefulSet:
		u.SetKind("StatefulSet")
	case *appsv1.DaemonSet:
		u.SetKind("DaemonSet")
	}
	res, err := kstatus.Compute(u)
	require.NoError(t, err)
	return res.Status
}

// TestDescribe compares the verdict with kubectl's rule (kubectl column) and kstatus's raw verdict.
func TestDescribe(t *testing.T) {
	tests := []struct {
		name    string
		obj     runtime.Object
		kubectl bool           // kubectl rollout status: done?
		kstatus kstatus.Status // sigs.k8s.io/cli-utils kstatus on its own
		done    bool
		msg     string
	}{
		{
			name:    "deployment rolled out",
			obj:     deployment(rolledOutDeployment),
			kubectl: true, kstatus: kstatus.CurrentStatus, done: true, msg: "1/1 ready",
		},
		{
			name:    "deployment just created, no status",
			obj:     deployment(func(*appsv1.Deployment) {}),
			kubectl: false, kstatus: kstatus.InProgressStatus,
			msg: "waiting for rollout: generation 1 not observed yet",
		},
		{
			name: "deployment spec changed, status still for the previous generation",
			obj: deployment(func(d *appsv1.Deployment) {
				rolledOutDeployment(d)
				d.Generation = 2
			}),
			kubectl: false, kstatus: kstatus.InProgressStatus,
			msg: "waiting for rollout: observed generation 1 < generation 2",
		},
		{
			name: "deployment with no pod ready yet",
			obj: deployment(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{
					ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, UnavailableReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{{
						Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "ReplicaSetUpdated",
						Message: `ReplicaSet "litellm-abc" is progressing.`,
					}},
				}
			}),
			kubectl: false, kstatus: kstatus.InProgressStatus,
			msg: `0/1 ready, 1/1 updated, Progressing: ReplicaSet "litellm-abc" is progressing.`,
		},
		{
			name: "deployment rolling update, old replica still running",
			obj: deployment(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{
					ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 1, ReadyReplicas: 1, AvailableReplicas: 1,
				}
			}),
			kubectl: false, kstatus: kstatus.InProgressStatus,
			msg: "1/1 ready, 1 old replicas pending termination",
		},
		{
			name: "deployment progress deadline exceeded",
			obj: deployment(func(d *appsv1.Deployment) {
				d.Status = appsv1.DeploymentStatus{
					ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1,
					Conditions: []appsv1.DeploymentCondition{{
						Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
						Message: `ReplicaSet "litellm-abc" has timed out progressing.`,
					}},
				}
			}),
			kubectl: false, kstatus: kstatus.FailedStatus,
			msg: `0/1 ready, 1/1 updated, progress deadline exceeded: ReplicaSet "litellm-abc" has timed out progressing.`,
		},
		{
			// kstatus needs the conditions; kubectl looks at the counts only. Followed: kubectl.
			name: "deployment counts complete, conditions missing",
			obj: deployment(func(d *appsv1.Deployment) {
				rolledOutDeployment(d)
				d.Status.Conditions = nil
			}),
			kubectl: true, kstatus: kstatus.InProgressStatus, done: true, msg: "1/1 ready",
		},
		{
			name: "paused deployment, counts complete",
			obj: deployment(func(d *appsv1.Deployment) {
				rolledOutDeployment(d)
				d.Spec.Paused = true
				d.Status.Conditions[1].Status, d.Status.Conditions[1].Reason = corev1.ConditionUnknown, "DeploymentPaused"
			}),
			kubectl: true, kstatus: kstatus.InProgressStatus, done: true, msg: "1/1 ready",
		},
		{
			name: "deployment counts complete, Available=False",
			obj: deployment(func(d *appsv1.Deployment) {
				rolledOutDeployment(d)
				d.Status.Conditions[0].Status = corev1.ConditionFalse
			}),
			kubectl: true, kstatus: kstatus.InProgressStatus, done: true, msg: "1/1 ready",
		},
		{
			name: "deployment being deleted",
			obj: deployment(func(d *appsv1.Deployment) {
				rolledOutDeployment(d)
				d.DeletionTimestamp = ptr.To(metav1.Now())
			}),
			kubectl: true, kstatus: kstatus.TerminatingStatus, msg: "being deleted",
		},
		{
			name:    "statefulset rolled out",
			obj:     statefulSet(rolledOutStatefulSet),
			kubectl: true, kstatus: kstatus.CurrentStatus, done: true, msg: "1/1 ready",
		},
		{
			// kstatus skips the generation check without status.observedGeneration.
			name:    "statefulset with 0 replicas, never seen by its controller",
			obj:     statefulSet(func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptr.To[int32](0) }),
			kubectl: false, kstatus: kstatus.CurrentStatus,
			msg: "waiting for rollout: generation 1 not observed yet",
		},
		{
			name: "statefulset rolling to a new revision",
			obj: statefulSet(func(s *appsv1.StatefulSet) {
				s.Spec.Replicas = ptr.To[int32](2)
				rolledOutStatefulSet(s)
				s.Status.UpdatedReplicas, s.Status.CurrentReplicas = 1, 1
				s.Status.UpdateRevision = "postgres-2"
			}),
			kubectl: false, kstatus: kstatus.InProgressStatus,
			msg: "2/2 ready, 1/2 updated, updating revision postgres-1 to postgres-2",
		},
		{
			name: "statefulset pod not ready",
			obj: statefulSet(func(s *appsv1.StatefulSet) {
				rolledOutStatefulSet(s)
				s.Status.ReadyReplicas, s.Status.AvailableReplicas = 0, 0
			}),
			kubectl: false, kstatus: kstatus.InProgressStatus, msg: "0/1 ready, 1/1 updated",
		},
		{
			name: "statefulset partitioned rollout done",
			obj: statefulSet(func(s *appsv1.StatefulSet) {
				s.Spec.Replicas = ptr.To[int32](3)
				s.Spec.UpdateStrategy.RollingUpdate.Partition = ptr.To[int32](2)
				rolledOutStatefulSet(s)
				s.Status.UpdatedReplicas, s.Status.CurrentReplicas = 1, 2
				s.Status.UpdateRevision = "postgres-2"
			}),
			kubectl: true, kstatus: kstatus.CurrentStatus, done: true,
			msg: "3/3 ready, 1/3 updated, updating revision postgres-1 to postgres-2, partition 2",
		},
		{
			name: "statefulset OnDelete",
			obj: statefulSet(func(s *appsv1.StatefulSet) {
				s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
				s.Status.ObservedGeneration = 1
			}),
			// kubectl exits with "rollout status is only available for RollingUpdate strategy type".
			kubectl: true, kstatus: kstatus.CurrentStatus, done: true, msg: "0/1 ready",
		},
		{
			name: "daemonset rolled out",
			obj: &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: 1},
				Status: appsv1.DaemonSetStatus{
					ObservedGeneration: 1, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
					UpdatedNumberScheduled: 2, NumberReady: 2, NumberAvailable: 2,
				},
			},
			kubectl: true, kstatus: kstatus.CurrentStatus, done: true, msg: "2/2 ready",
		},
		{
			name: "daemonset updating",
			obj: &appsv1.DaemonSet{
				ObjectMeta: metav1.ObjectMeta{Name: "agent", Generation: 1},
				Status: appsv1.DaemonSetStatus{
					ObservedGeneration: 1, DesiredNumberScheduled: 2, CurrentNumberScheduled: 2,
					UpdatedNumberScheduled: 1, NumberReady: 2, NumberAvailable: 2,
				},
			},
			kubectl: false, kstatus: kstatus.InProgressStatus, msg: "2/2 ready, 1/2 updated",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.kstatus, rawKstatus(t, tc.obj), "raw kstatus verdict")

			// The object as the dynamic client delivers it.
			done, msg, err := describe(asUnstructured(t, tc.obj))
			require.NoError(t, err)
			assert.Equal(t, tc.msg, msg)
			assert.Equal(t, tc.done, done)
			// The one deliberate departure from kubectl (which looks only at the counts): an object
			// being deleted is not called rolled out.
			if tc.name != "deployment being deleted" {
				assert.Equal(t, tc.kubectl, done, "differs from kubectl rollout status")
			}
		})
	}
}

// asUnstructured converts a k8s.io/api workload to the object the dynamic client delivers.
func asUnstructured(t *testing.T, obj runtime.Object) *unstructured.Unstructured {
	t.Helper()
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	require.NoError(t, err)
	u := &unstructured.Unstructured{Object: content}
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind(strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.")))
	return u
}

func TestDescribeUnsupportedKind(t *testing.T) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	u.SetName("x")
	_, _, err := describe(u)
	require.ErrorContains(t, err, "unsupported object apps/v1, Kind=ReplicaSet x")
}

func TestStateLine(t *testing.T) {
	tests := []struct {
		name string
		st   state
		want string
	}{
		{name: "before the first list", st: state{}, want: "not observed yet"},
		{name: "missing", st: state{observed: true}, want: "not found"},
		{name: "found", st: state{observed: true, found: true, msg: "0/1 ready"}, want: "0/1 ready"},
		{
			name: "error before any list",
			st:   state{err: errors.New(`deployments.apps "x" is forbidden`)},
			want: `not observed yet; last list/watch error: deployments.apps "x" is forbidden`,
		},
		{
			name: "error after a state was seen",
			st:   state{observed: true, found: true, msg: "0/1 ready", err: errors.New("connection refused")},
			want: "0/1 ready; last list/watch error: connection refused",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tc.st.line())
		})
	}
}

// TestWaiterValidation covers the checks Wait makes before it touches the API; the fake client is
// never called.
func TestWaiterValidation(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme())
	tests := []struct {
		name    string
		w       *Waiter
		wantErr string
	}{
		{name: "no workloads", w: &Waiter{Client: client, Namespace: "ns"}},
		{name: "no client", w: &Waiter{Namespace: "ns"}, wantErr: "Client is nil"},
		{name: "no namespace", w: &Waiter{Client: client}, wantErr: "Namespace is empty"},
		{
			name:    "bad kind",
			w:       &Waiter{Client: client, Namespace: "ns", Workloads: []Workload{{Kind: "job", Name: "x"}}},
			wantErr: `workload "job/x": unknown kind "job"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.w.Wait(t.Context())
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
		})
	}
	assert.Empty(t, client.Actions())
}

func TestPendingBeforeWait(t *testing.T) {
	w := &Waiter{Workloads: []Workload{{Kind: "Deploy", Name: "litellm"}}}
	assert.Equal(t, []string{"deployment/litellm: not observed yet"}, w.Pending())
}
