package rollout

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// randomWorkload builds a Deployment, StatefulSet or DaemonSet as the dynamic client delivers it
// (integers as int64), with each field absent or set to a small value, so that every rule and every
// order between the counts comes up.
func randomWorkload(t *testing.T, r *rand.Rand) *unstructured.Unstructured {
	t.Helper()
	kind := []string{"Deployment", "StatefulSet", "DaemonSet"}[r.IntN(3)]
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(appsV1.WithKind(kind))
	u.SetName("w")
	maybeInt := func(values ...int64) (int64, bool) {
		i := r.IntN(len(values) + 1)
		if i == len(values) {
			return 0, false
		}
		return values[i], true
	}
	set := func(v int64, ok bool, path ...string) {
		if ok {
			require.NoError(t, unstructured.SetNestedField(u.Object, v, path...))
		}
	}
	setInt := func(path []string, values ...int64) {
		v, ok := maybeInt(values...)
		set(v, ok, path...)
	}
	setInt([]string{"metadata", "generation"}, 1, 2)
	setInt([]string{"status", "observedGeneration"}, 0, 1, 2)
	setInt([]string{"spec", "replicas"}, 0, 1, 2, 3)
	for _, f := range []string{"replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "currentReplicas",
		"desiredNumberScheduled", "currentNumberScheduled", "updatedNumberScheduled", "numberAvailable", "numberReady"} {
		setInt([]string{"status", f}, 0, 1, 2, 3)
	}
	setInt([]string{"spec", "progressDeadlineSeconds"}, 600, math.MaxInt32)
	if r.IntN(8) == 0 {
		require.NoError(t, unstructured.SetNestedField(u.Object, "2026-01-01T00:00:00Z", "metadata", "deletionTimestamp"))
	}
	switch r.IntN(3) {
	case 0:
		require.NoError(t, unstructured.SetNestedField(u.Object, "OnDelete", "spec", "updateStrategy", "type"))
	case 1:
		require.NoError(t, unstructured.SetNestedField(u.Object, "RollingUpdate", "spec", "updateStrategy", "type"))
		setInt([]string{"spec", "updateStrategy", "rollingUpdate", "partition"}, 0, 1, 2)
	}
	revisions := []string{"w-1", "w-2"}
	for _, f := range []string{"currentRevision", "updateRevision"} {
		if i := r.IntN(3); i < 2 {
			require.NoError(t, unstructured.SetNestedField(u.Object, revisions[i], "status", f))
		}
	}
	candidates := []map[string]any{
		{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "done"},
		{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated", "message": "progressing"},
		{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "timed out"},
		{"type": "Progressing", "status": "Unknown", "reason": "DeploymentPaused", "message": "paused"},
		{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
		{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
		{"type": "Reconciling", "status": "True", "reason": "Working", "message": "reconciling"},
		{"type": "Stalled", "status": "True", "reason": "Stuck", "message": "stalled"},
		{"type": "Ready", "status": "False", "reason": "NotReady", "message": "not ready"},
	}
	var conds []any
	for _, c := range candidates {
		if r.IntN(4) == 0 {
			conds = append(conds, c)
		}
	}
	if len(conds) > 0 {
		require.NoError(t, unstructured.SetNestedSlice(u.Object, conds, "status", "conditions"))
	}
	return u
}

// TestComputeMatchesKstatus holds compute to kstatus.Compute, which it follows rule for rule: the
// same status, reason and message on every object.
func TestComputeMatchesKstatus(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	seen := map[string]bool{}
	for i := range 20000 {
		u := randomWorkload(t, r)
		want, err := kstatus.Compute(u.DeepCopy())
		require.NoError(t, err)
		got, err := compute(u)
		require.NoError(t, err)
		var reason string
		if len(want.Conditions) > 0 {
			reason = want.Conditions[0].Reason
		}
		if !assert.Equal(t, verdict{string(want.Status), reason, want.Message}, got, "object %d: %v", i, u.Object) {
			return
		}
		seen[u.GetKind()+" "+got.status+" "+got.reason] = true
	}
	// Every rule of every kind came up.
	for _, v := range []string{
		"Deployment Terminating ", "Deployment InProgress LatestGenerationNotObserved", "Deployment InProgress Working",
		"Deployment Failed Stuck", "Deployment Failed ProgressDeadlineExceeded", "Deployment InProgress LessReplicas",
		"Deployment InProgress LessUpdated", "Deployment InProgress ExtraPods", "Deployment InProgress LessAvailable",
		"Deployment InProgress LessReady", "Deployment InProgress ReplicaSetNotAvailable",
		"Deployment InProgress DeploymentNotAvailable", "Deployment Current ",
		"StatefulSet Current ", "StatefulSet InProgress LessReplicas", "StatefulSet InProgress LessReady",
		"StatefulSet InProgress ExtraPods", "StatefulSet InProgress PartitionRollout", "StatefulSet InProgress LessCurrent",
		"StatefulSet InProgress RevisionMismatch",
		"DaemonSet InProgress NoGeneration", "DaemonSet InProgress NoObservedGeneration", "DaemonSet InProgress NoDesiredNumber",
		"DaemonSet InProgress LessCurrent", "DaemonSet InProgress LessUpdated", "DaemonSet InProgress LessAvailable",
		"DaemonSet InProgress LessReady", "DaemonSet Current ",
	} {
		assert.True(t, seen[v], "no object came out as %q", v)
	}
}

func TestComputeUnknownKind(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(appsV1.WithKind("ReplicaSet"))
	_, err := compute(u)
	require.EqualError(t, err, fmt.Sprintf("no status rules for kind %q", "ReplicaSet"))
}
