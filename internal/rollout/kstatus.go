package rollout

import (
	"fmt"
	"math"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
)

// This file computes kstatus's verdict (sigs.k8s.io/cli-utils/pkg/kstatus/status, Compute: generic.go
// and the Deployment, StatefulSet and DaemonSet rules of core.go) on the unstructured object, rule for
// rule and message for message. kstatus itself imports k8s.io/api/core/v1 for its condition-status
// constants, which links every core type into the job (3 MiB of its binary); TestComputeMatchesKstatus
// holds this copy to kstatus's answers.

// kstatus's status values that the verdict tells apart.
const (
	inProgress  = "InProgress"
	failed      = "Failed"
	current     = "Current"
	terminating = "Terminating"
)

// verdict is kstatus's Result: the status, the reason of its Reconciling or Stalled condition (none
// when Current or Terminating) and its message.
type verdict struct {
	status, reason, message string
}

func progressing(reason, message string) verdict { return verdict{inProgress, reason, message} }

// compute is kstatus.Compute for an apps/v1 Deployment, StatefulSet or DaemonSet.
func compute(u *unstructured.Unstructured) (verdict, error) {
	if v, ok, err := genericVerdict(u); ok || err != nil {
		return v, err
	}
	switch u.GetKind() {
	case "Deployment":
		return deploymentVerdict(u.Object)
	case "StatefulSet":
		return statefulSetVerdict(u.Object), nil
	case "DaemonSet":
		return daemonSetVerdict(u)
	}
	return verdict{}, fmt.Errorf("no status rules for kind %q", u.GetKind())
}

// genericVerdict is kstatus's checkGenericProperties: deletion, an unobserved generation (only when
// status.observedGeneration is present), then the Reconciling and Stalled conditions.
func genericVerdict(u *unstructured.Unstructured) (verdict, bool, error) {
	obj := u.Object
	ts, found, err := unstructured.NestedString(obj, "metadata", "deletionTimestamp")
	if err != nil {
		return verdict{}, false, fmt.Errorf("looking up metadata.deletionTimestamp from resource: %w", err)
	}
	if found && ts != "" {
		return verdict{terminating, "", "Resource scheduled for deletion"}, true, nil
	}
	generation, found, err := unstructured.NestedInt64(obj, "metadata", "generation")
	if err != nil {
		return verdict{}, false, fmt.Errorf("looking up metadata.generation from resource: %w", err)
	}
	if found {
		observed, found, err := unstructured.NestedInt64(obj, "status", "observedGeneration")
		if err != nil {
			return verdict{}, false, fmt.Errorf("looking up status.observedGeneration from resource: %w", err)
		}
		if found && observed != generation {
			msg := fmt.Sprintf("%s generation is %d, but latest observed generation is %d", u.GetKind(), generation, observed)
			return progressing("LatestGenerationNotObserved", msg), true, nil
		}
	}
	conds, err := conditions(obj)
	if err != nil {
		return verdict{}, false, err
	}
	for _, c := range conds {
		if c.Type == "Reconciling" && c.Status == "True" {
			return progressing(c.Reason, c.Message), true, nil
		}
		if c.Type == "Stalled" && c.Status == "True" {
			return verdict{failed, c.Reason, c.Message}, true, nil
		}
	}
	return verdict{}, false, nil
}

// conditions decodes status.conditions as kstatus's GetObjectWithConditions does.
func conditions(obj map[string]any) ([]condition, error) {
	var w struct {
		Status struct {
			Conditions []condition `json:"conditions"`
		} `json:"status"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &w); err != nil {
		return nil, err
	}
	return w.Status.Conditions, nil
}

// deploymentVerdict is kstatus's deploymentConditions.
func deploymentVerdict(obj map[string]any) (verdict, error) {
	// Without a progress deadline the controller sets no Progressing condition.
	progressingOK := intField(obj, math.MaxInt32, "spec", "progressDeadlineSeconds") == math.MaxInt32
	available := false
	conds, err := conditions(obj)
	if err != nil {
		return verdict{}, err
	}
	for _, c := range conds {
		switch c.Type {
		case "Progressing":
			if c.Reason == "ProgressDeadlineExceeded" {
				return verdict{failed, c.Reason, "Progress deadline exceeded"}, nil
			}
			if c.Status == "True" && c.Reason == "NewReplicaSetAvailable" {
				progressingOK = true
			}
		case "Available":
			if c.Status == "True" {
				available = true
			}
		}
	}
	spec := intField(obj, 1, "spec", "replicas")
	replicas := intField(obj, 0, "status", "replicas")
	updated := intField(obj, 0, "status", "updatedReplicas")
	ready := intField(obj, 0, "status", "readyReplicas")
	avail := intField(obj, 0, "status", "availableReplicas")
	switch {
	case spec > replicas:
		return progressing("LessReplicas", fmt.Sprintf("Replicas: %d/%d", replicas, spec)), nil
	case spec > updated:
		return progressing("LessUpdated", fmt.Sprintf("Updated: %d/%d", updated, spec)), nil
	case replicas > spec:
		return progressing("ExtraPods", fmt.Sprintf("Pending termination: %d", replicas-spec)), nil
	case updated > avail:
		return progressing("LessAvailable", fmt.Sprintf("Available: %d/%d", avail, updated)), nil
	case spec > ready:
		return progressing("LessReady", fmt.Sprintf("Ready: %d/%d", ready, spec)), nil
	case !progressingOK:
		return progressing("ReplicaSetNotAvailable", "ReplicaSet not Available"), nil
	case !available:
		return progressing("DeploymentNotAvailable", "Deployment not Available"), nil
	}
	return verdict{current, "", fmt.Sprintf("Deployment is available. Replicas: %d", replicas)}, nil
}

// statefulSetVerdict is kstatus's stsConditions.
func statefulSetVerdict(obj map[string]any) verdict {
	if stringField(obj, "spec", "updateStrategy", "type") == "OnDelete" {
		return verdict{current, "", "StatefulSet is using the ondelete update strategy"}
	}
	spec := intField(obj, 1, "spec", "replicas")
	ready := intField(obj, 0, "status", "readyReplicas")
	currentReplicas := intField(obj, 0, "status", "currentReplicas")
	updated := intField(obj, 0, "status", "updatedReplicas")
	replicas := intField(obj, 0, "status", "replicas")
	partition := intField(obj, -1, "spec", "updateStrategy", "rollingUpdate", "partition")
	switch {
	case spec > replicas:
		return progressing("LessReplicas", fmt.Sprintf("Replicas: %d/%d", replicas, spec))
	case spec > ready:
		return progressing("LessReady", fmt.Sprintf("Ready: %d/%d", ready, spec))
	case replicas > spec:
		return progressing("ExtraPods", fmt.Sprintf("Pending termination: %d", replicas-spec))
	case partition != -1 && updated < spec-partition:
		return progressing("PartitionRollout", fmt.Sprintf("updated: %d/%d", updated, spec-partition))
	case partition != -1:
		return verdict{current, "", fmt.Sprintf("Partition rollout complete. updated: %d", updated)}
	case spec > currentReplicas:
		return progressing("LessCurrent", fmt.Sprintf("current: %d/%d", currentReplicas, spec))
	case stringField(obj, "status", "currentRevision") != stringField(obj, "status", "updateRevision"):
		return progressing("RevisionMismatch", "Waiting for updated revision to match current")
	}
	return verdict{current, "", fmt.Sprintf("All replicas scheduled as expected. Replicas: %d", replicas)}
}

// daemonSetVerdict is kstatus's daemonsetConditions, with its checkGenerationSet.
func daemonSetVerdict(u *unstructured.Unstructured) (verdict, error) {
	obj := u.Object
	for _, f := range []struct {
		path         []string
		reason, what string
	}{
		{[]string{"metadata", "generation"}, "NoGeneration", "metadata.generation"},
		{[]string{"status", "observedGeneration"}, "NoObservedGeneration", "status.observedGeneration"},
	} {
		_, found, err := unstructured.NestedInt64(obj, f.path...)
		if err != nil {
			return verdict{}, fmt.Errorf("looking up %s from resource: %w", f.what, err)
		}
		if !found {
			return progressing(f.reason, fmt.Sprintf("%s %s not found", u.GetKind(), f.what)), nil
		}
	}
	desired := intField(obj, -1, "status", "desiredNumberScheduled")
	currentNumber := intField(obj, 0, "status", "currentNumberScheduled")
	updated := intField(obj, 0, "status", "updatedNumberScheduled")
	avail := intField(obj, 0, "status", "numberAvailable")
	ready := intField(obj, 0, "status", "numberReady")
	switch {
	case desired == -1:
		return progressing("NoDesiredNumber", "Missing .status.desiredNumberScheduled"), nil
	case desired > currentNumber:
		return progressing("LessCurrent", fmt.Sprintf("Current: %d/%d", currentNumber, desired)), nil
	case desired > updated:
		return progressing("LessUpdated", fmt.Sprintf("Updated: %d/%d", updated, desired)), nil
	case desired > avail:
		return progressing("LessAvailable", fmt.Sprintf("Available: %d/%d", avail, desired)), nil
	case desired > ready:
		return progressing("LessReady", fmt.Sprintf("Ready: %d/%d", ready, desired)), nil
	}
	return verdict{current, "", fmt.Sprintf("All replicas scheduled as expected. Replicas: %d", desired)}, nil
}

// intField is kstatus's GetIntField: the integer at path, or def when it is absent or not an integer.
func intField(obj map[string]any, def int, path ...string) int {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || err != nil {
		return def
	}
	switch n := v.(type) {
	case int:
		return n
	case int32:
		return int(n)
	case int64:
		return int(n)
	}
	return def
}

// stringField is kstatus's GetStringField with an empty default.
func stringField(obj map[string]any, path ...string) string {
	v, found, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !found || err != nil {
		return ""
	}
	s, _ := v.(string)
	return s
}
