package job

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
	"unicode/utf8"

	"github.com/sethvargo/go-envconfig"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// eventController names the job as the reporter of its Events.
const eventController = "litemaas-gitops.io/litemaas-sync"

// maxEventNote is the API server's limit on an Event's note.
const maxEventNote = 1024

// recordOutcome records the one-line outcome as an Event on the hook's Job. For a failed hook Argo CD
// shows only the Job controller's condition text ("Container litemaas-sync for pod ... failed with
// exit code 2 matching FailJob rule at index 0"), never the program's termination message; the
// console does list a resource's Events, so the reason is readable there without `oc logs`.
//
// The Job comes from JOB_NAME and JOB_UID, which the manifests set from the pod's
// batch.kubernetes.io/job-name and batch.kubernetes.io/controller-uid labels. Without them (a run
// outside a Job) nothing is recorded. Recording is best effort: a failure is logged and never changes
// the run's outcome or exit code.
func recordOutcome(ctx context.Context, env envconfig.Lookuper, dc dynamic.Interface, namespace, action, msg string, failed bool, log *slog.Logger) {
	reason := ReasonSucceeded
	if failed {
		reason = ReasonFailed
	}
	recordEvent(ctx, env, dc, namespace, action, msg, reason, failed, log)
}

// recordEvent is recordOutcome with the Event's reason given: the classified cause of the run's end
// (InvalidCatalog, NotReady, DatabaseAuthenticationFailed, Stopped, ...).
func recordEvent(ctx context.Context, env envconfig.Lookuper, dc dynamic.Interface, namespace, action, msg, reason string, failed bool, log *slog.Logger) {
	if env == nil {
		return
	}
	name, _ := env.Lookup("JOB_NAME")
	uid, _ := env.Lookup("JOB_UID")
	if name == "" || uid == "" {
		return
	}
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	if namespace == "" {
		namespace, _ = env.Lookup("NAMESPACE")
	}
	if namespace == "" {
		namespace = kube.DefaultNamespace()
	}
	if dc == nil {
		var err error
		if dc, _, err = kubeClient(nil); err != nil {
			log.Warn("could not record the outcome as an Event on the Job", "job", name, "error", err)
			return
		}
	}
	// Still record after SIGTERM: the Event then says why the run stopped.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := kube.Events(dc, namespace).Create(ctx, outcomeEvent(namespace, name, uid, action, msg, reason, failed), metav1.CreateOptions{}); err != nil {
		log.Warn("could not record the outcome as an Event on the Job", "job", name, "error", err)
	}
}

func outcomeEvent(namespace, job, uid, action, msg, reason string, failed bool) *kube.Event {
	typ := kube.EventTypeNormal
	if failed {
		typ = kube.EventTypeWarning
	}
	instance, _ := os.Hostname() // the pod's name in a pod
	if instance == "" {
		instance = job
	}
	if len(instance) > 128 {
		instance = instance[:128]
	}
	return &kube.Event{
		ObjectMeta:          metav1.ObjectMeta{GenerateName: job + "-", Namespace: namespace},
		EventTime:           metav1.NewMicroTime(time.Now()),
		ReportingController: eventController,
		ReportingInstance:   instance,
		Action:              action,
		Reason:              reason,
		Type:                typ,
		Regarding:           kube.ObjectReference{APIVersion: "batch/v1", Kind: "Job", Namespace: namespace, Name: job, UID: types.UID(uid)},
		Note:                truncate(msg, maxEventNote),
	}
}

// truncate cuts s to at most n bytes without splitting a character, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = " …"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s%s", s[:cut], mark)
}
