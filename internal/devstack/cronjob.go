package devstack

import (
	"context"
	"fmt"
	"os/exec"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// DriftCronJobName is the CronJob that runs the reconcile between syncs.
const DriftCronJobName = "litemaas-sync-drift"

// CronJobCommand is one run of the rendered CronJob name, as its controller would start it: the
// Job of its jobTemplate, run locally like Command runs the hook Job.
func (s *Stack) CronJobCommand(ctx context.Context, name, binary string, extraEnv ...string) (*exec.Cmd, error) {
	for _, obj := range s.Objects {
		if obj.GetKind() != "CronJob" || obj.GetName() != name {
			continue
		}
		cj := &batchv1.CronJob{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, cj); err != nil {
			return nil, fmt.Errorf("reading the rendered CronJob %s: %w", name, err)
		}
		job := &batchv1.Job{ObjectMeta: cj.Spec.JobTemplate.ObjectMeta, Spec: cj.Spec.JobTemplate.Spec}
		// The controller names each run after the CronJob; the container keeps its own name.
		job.Name = JobName
		return s.jobCommand(ctx, job, binary, extraEnv...)
	}
	return nil, fmt.Errorf("the overlay renders no CronJob %q", name)
}
