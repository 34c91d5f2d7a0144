package rollout

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

// kstatus reasons that come only from a Deployment's conditions, after every replica count has
// already passed. kubectl does not look at these conditions (see describe).
var deploymentConditionReasons = map[string]bool{
	"ReplicaSetNotAvailable": true, // Progressing is not True/NewReplicaSetAvailable
	"DeploymentNotAvailable": true, // Available is not True
}

// describe decides whether obj is rolled out and renders its state for Pending and the log.
//
// The verdict is kstatus's (Current means rolled out) with two corrections towards kubectl's rule:
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
	var (
		gvk      schema.GroupVersionKind
		observed int64
		progress []string // replica counts
		reason   string   // why not rolled out, beyond the counts
		complete bool     // the replica counts satisfy kubectl's rule
	)
	if u, ok := obj.(*unstructured.Unstructured); ok {
		if obj, err = typed(u); err != nil {
			return false, "", err
		}
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		gvk, observed = appsv1.SchemeGroupVersion.WithKind("Deployment"), o.Status.ObservedGeneration
		progress, complete, reason = deploymentProgress(o)
	case *appsv1.StatefulSet:
		gvk, observed = appsv1.SchemeGroupVersion.WithKind("StatefulSet"), o.Status.ObservedGeneration
		progress, complete = statefulSetProgress(o)
	case *appsv1.DaemonSet:
		gvk, observed = appsv1.SchemeGroupVersion.WithKind("DaemonSet"), o.Status.ObservedGeneration
		progress, complete = daemonSetProgress(o)
	default:
		return false, "", fmt.Errorf("unsupported object type %T", obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return false, "", err
	}
	if m.GetDeletionTimestamp() != nil {
		return false, "being deleted", nil
	}
	switch generation := m.GetGeneration(); {
	case observed == 0:
		return false, fmt.Sprintf("waiting for rollout: generation %d not observed yet", generation), nil
	case observed < generation:
		return false, fmt.Sprintf("waiting for rollout: observed generation %d < generation %d", observed, generation), nil
	}

	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return false, "", fmt.Errorf("converting %s: %w", gvk.Kind, err)
	}
	u := &unstructured.Unstructured{Object: content}
	// The typed object carries no apiVersion/kind, and kstatus picks its rules by kind.
	u.SetGroupVersionKind(gvk)
	res, err := kstatus.Compute(u)
	if err != nil {
		return false, "", fmt.Errorf("computing status of %s: %w", gvk.Kind, err)
	}
	done = res.Status == kstatus.CurrentStatus
	if !done && gvk.Kind == "Deployment" && complete && res.Status == kstatus.InProgressStatus &&
		len(res.Conditions) > 0 && deploymentConditionReasons[res.Conditions[0].Reason] {
		done = true
	}

	parts := progress
	switch {
	case done:
	case reason != "":
		parts = append(parts, reason)
	case complete:
		// The counts look fine, so they do not explain the wait; kstatus's message does.
		parts = append(parts, res.Message)
	}
	return done, strings.Join(parts, ", "), nil
}

// typed converts a workload read through the dynamic client into its k8s.io/api struct, which the
// replica-count rules read.
func typed(u *unstructured.Unstructured) (runtime.Object, error) {
	var obj runtime.Object
	switch u.GroupVersionKind() {
	case appsv1.SchemeGroupVersion.WithKind("Deployment"):
		obj = &appsv1.Deployment{}
	case appsv1.SchemeGroupVersion.WithKind("StatefulSet"):
		obj = &appsv1.StatefulSet{}
	case appsv1.SchemeGroupVersion.WithKind("DaemonSet"):
		obj = &appsv1.DaemonSet{}
	default:
		return nil, fmt.Errorf("unsupported object %s %s", u.GroupVersionKind(), u.GetName())
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.UnstructuredContent(), obj); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return obj, nil
}

func replicasOrDefault(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

// deploymentProgress renders the counts and, when relevant, the Progressing condition.
func deploymentProgress(d *appsv1.Deployment) (progress []string, complete bool, reason string) {
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
		if c.Type != appsv1.DeploymentProgressing {
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

func statefulSetProgress(s *appsv1.StatefulSet) (progress []string, complete bool) {
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
	if s.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType {
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

func daemonSetProgress(d *appsv1.DaemonSet) (progress []string, complete bool) {
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
