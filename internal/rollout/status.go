package rollout

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// kstatus reasons that come only from a Deployment's conditions, after every replica count has
// already passed. kubectl does not look at these conditions (see describe).
var deploymentConditionReasons = map[string]bool{
	"ReplicaSetNotAvailable": true, // Progressing is not True/NewReplicaSetAvailable
	"DeploymentNotAvailable": true, // Available is not True
}

// appsV1 is the API group of the workloads; k8s.io/api/apps/v1 is not linked (its types would add
// megabytes to the job's binary for a few status fields).
var appsV1 = schema.GroupVersion{Group: "apps", Version: "v1"}

// describe decides whether obj, as the dynamic client delivers it, is rolled out and renders its
// state for Pending and the log.
//
// The verdict is kstatus's (Current means rolled out; see kstatus.go) with two corrections towards
// kubectl's rule:
//
//   - kstatus skips the generation check when status.observedGeneration is absent, i.e. before the
//     controller has written any status; kubectl treats that as "spec update not observed yet". Without
//     this, a new StatefulSet with replicas: 0 counts as rolled out before its controller saw it.
//   - For Deployments with a progress deadline (the API default), kstatus additionally requires the
//     conditions Progressing=True/NewReplicaSetAvailable and Available=True; kubectl decides on the
//     replica counts alone. The deployment controller writes both in the same status update, so they
//     differ only for a paused Deployment (Progressing reason DeploymentPaused), which kstatus would
//     never call Current; kubectl's rule is followed there.
//
// kstatus is stricter than kubectl in two transient cases, which are kept: it waits while surplus
// replicas of a scale-down are still counted, and it reports a Deployment whose progress deadline was
// exceeded as Failed where kubectl exits with an error; this package keeps waiting in both cases (the
// controller may still finish) and shows the reason in the state.
func describe(obj runtime.Object) (done bool, msg string, err error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return false, "", fmt.Errorf("unsupported object type %T", obj)
	}
	var (
		progress []string // replica counts
		reason   string   // why not rolled out, beyond the counts
		complete bool     // the replica counts satisfy kubectl's rule
	)
	w, err := decode(u)
	if err != nil {
		return false, "", err
	}
	kind := u.GetKind()
	switch kind {
	case "Deployment":
		progress, complete, reason = deploymentProgress(w)
	case "StatefulSet":
		progress, complete = statefulSetProgress(w)
	case "DaemonSet":
		progress, complete = daemonSetProgress(w)
	}
	if w.DeletionTimestamp != nil {
		return false, "being deleted", nil
	}
	switch observed, generation := w.Status.ObservedGeneration, w.Generation; {
	case observed == 0:
		return false, fmt.Sprintf("waiting for rollout: generation %d not observed yet", generation), nil
	case observed < generation:
		return false, fmt.Sprintf("waiting for rollout: observed generation %d < generation %d", observed, generation), nil
	}

	res, err := compute(u)
	if err != nil {
		return false, "", fmt.Errorf("computing status of %s: %w", kind, err)
	}
	done = res.status == current
	if !done && kind == "Deployment" && complete && res.status == inProgress && deploymentConditionReasons[res.reason] {
		done = true
	}

	parts := progress
	switch {
	case done:
	case reason != "":
		parts = append(parts, reason)
	case complete:
		// The counts look fine, so they do not explain the wait; kstatus's message does.
		parts = append(parts, res.message)
	}
	return done, strings.Join(parts, ", "), nil
}

// workload is what the replica-count rules read of a Deployment, StatefulSet or DaemonSet; the
// fields and their JSON names are k8s.io/api/apps/v1's.
type workload struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		Replicas       *int32 `json:"replicas,omitempty"`
		UpdateStrategy struct {
			Type          string `json:"type,omitempty"`
			RollingUpdate *struct {
				Partition *int32 `json:"partition,omitempty"`
			} `json:"rollingUpdate,omitempty"`
		} `json:"updateStrategy,omitempty"`
	} `json:"spec,omitempty"`
	Status struct {
		ObservedGeneration int64 `json:"observedGeneration,omitempty"`
		// Deployment and StatefulSet.
		Replicas          int32 `json:"replicas,omitempty"`
		UpdatedReplicas   int32 `json:"updatedReplicas,omitempty"`
		ReadyReplicas     int32 `json:"readyReplicas,omitempty"`
		AvailableReplicas int32 `json:"availableReplicas,omitempty"`
		// StatefulSet.
		CurrentRevision string `json:"currentRevision,omitempty"`
		UpdateRevision  string `json:"updateRevision,omitempty"`
		// DaemonSet.
		DesiredNumberScheduled int32       `json:"desiredNumberScheduled,omitempty"`
		UpdatedNumberScheduled int32       `json:"updatedNumberScheduled,omitempty"`
		NumberReady            int32       `json:"numberReady,omitempty"`
		NumberAvailable        int32       `json:"numberAvailable,omitempty"`
		Conditions             []condition `json:"conditions,omitempty"`
	} `json:"status,omitempty"`
}

// condition is a status condition (metav1.Condition's fields that the verdict reads).
type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// decode reads u, which must be an apps/v1 Deployment, StatefulSet or DaemonSet.
func decode(u *unstructured.Unstructured) (*workload, error) {
	switch gvk := u.GroupVersionKind(); gvk {
	case appsV1.WithKind("Deployment"), appsV1.WithKind("StatefulSet"), appsV1.WithKind("DaemonSet"):
	default:
		return nil, fmt.Errorf("unsupported object %s %s", gvk, u.GetName())
	}
	w := &workload{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), w); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return w, nil
}

func replicasOrDefault(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// deploymentProgress renders the counts and, when relevant, the Progressing condition.
func deploymentProgress(d *workload) (progress []string, complete bool, reason string) {
	want, st := replicasOrDefault(d.Spec.Replicas), d.Status
	progress = []string{fmt.Sprintf("%d/%d ready", st.ReadyReplicas, want)}
	if st.UpdatedReplicas != st.ReadyReplicas {
		progress = append(progress, fmt.Sprintf("%d/%d updated", st.UpdatedReplicas, want))
	}
	if st.AvailableReplicas != st.ReadyReplicas {
		progress = append(progress, fmt.Sprintf("%d/%d available", st.AvailableReplicas, want))
	}
	if old := st.Replicas - st.UpdatedReplicas; old > 0 && st.UpdatedReplicas > 0 {
		progress = append(progress, fmt.Sprintf("%d old replicas pending termination", old))
	}
	// kubectl's rule, after the generation check.
	complete = st.UpdatedReplicas >= want && st.Replicas <= st.UpdatedReplicas && st.AvailableReplicas >= st.UpdatedReplicas

	for _, c := range st.Conditions {
		if c.Type != "Progressing" {
			continue
		}
		switch {
		case c.Reason == "ProgressDeadlineExceeded":
			reason = "progress deadline exceeded: " + c.Message
		case !complete && c.Message != "":
			reason = "Progressing: " + c.Message
		}
	}
	return progress, complete, reason
}

func statefulSetProgress(s *workload) (progress []string, complete bool) {
	want, st := replicasOrDefault(s.Spec.Replicas), s.Status
	progress = []string{fmt.Sprintf("%d/%d ready", st.ReadyReplicas, want)}
	if st.UpdatedReplicas != st.ReadyReplicas {
		progress = append(progress, fmt.Sprintf("%d/%d updated", st.UpdatedReplicas, want))
	}
	if st.CurrentRevision != st.UpdateRevision && st.CurrentRevision != "" && st.UpdateRevision != "" {
		progress = append(progress, fmt.Sprintf("updating revision %s to %s", st.CurrentRevision, st.UpdateRevision))
	}
	// kubectl's rule, after the generation check; OnDelete has no rollout to wait for.
	complete = true
	if s.Spec.UpdateStrategy.Type != "OnDelete" {
		complete = st.ReadyReplicas >= want
		ru := s.Spec.UpdateStrategy.RollingUpdate
		if ru != nil {
			var partition int32
			if ru.Partition != nil {
				partition = *ru.Partition
			}
			if partition > 0 {
				progress = append(progress, fmt.Sprintf("partition %d", partition))
			}
			complete = complete && st.UpdatedReplicas >= want-partition
		} else {
			complete = complete && st.CurrentRevision == st.UpdateRevision
		}
	}
	return progress, complete
}

func daemonSetProgress(d *workload) (progress []string, complete bool) {
	st := d.Status
	want := st.DesiredNumberScheduled
	progress = []string{fmt.Sprintf("%d/%d ready", st.NumberReady, want)}
	if st.UpdatedNumberScheduled != st.NumberReady {
		progress = append(progress, fmt.Sprintf("%d/%d updated", st.UpdatedNumberScheduled, want))
	}
	if st.NumberAvailable != st.NumberReady {
		progress = append(progress, fmt.Sprintf("%d/%d available", st.NumberAvailable, want))
	}
	complete = st.UpdatedNumberScheduled >= want && st.NumberAvailable >= want
	return progress, complete
}
