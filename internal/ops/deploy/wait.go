package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube/listwatch"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// appState is what deploy shows of an Argo CD Application's status.
type appState struct {
	// Refreshing: the refresh annotation deploy set is still there, so the status predates the apply.
	Refreshing bool
	Sync       string // status.sync.status: Synced, OutOfSync, Unknown
	Revision   string // status.sync.revision
	Health     string // status.health.status: Healthy, Progressing, Degraded, Missing, ...
	Phase      string // status.operationState.phase: Running, Succeeded, Failed, Error, Terminating
	OpMessage  string
	OpStarted  string
	RetryCount int64
	// Hooks are the PostSync hooks of the current operation ("Job litemaas-sync Running: ...").
	Hooks []string
	// Waiting are the resources that are not Healthy yet ("Deployment/backend Progressing").
	Waiting []string
	// Conditions are Argo CD's error and warning conditions ("ComparisonError: ...").
	Conditions []string
	// Compared* are the source Argo CD last compared against (status.sync.comparedTo.source).
	ComparedPath, ComparedRepo string
}

func readAppState(u *unstructured.Unstructured) appState {
	s := appState{}
	_, s.Refreshing = u.GetAnnotations()[refreshAnnotation]
	str := func(path ...string) string {
		v, _, _ := unstructured.NestedString(u.Object, path...)
		return v
	}
	s.Sync = str("status", "sync", "status")
	s.Revision = str("status", "sync", "revision")
	s.Health = str("status", "health", "status")
	s.Phase = str("status", "operationState", "phase")
	s.OpMessage = str("status", "operationState", "message")
	s.OpStarted = str("status", "operationState", "startedAt")
	s.RetryCount, _, _ = unstructured.NestedInt64(u.Object, "status", "operationState", "retryCount")
	s.ComparedPath = str("status", "sync", "comparedTo", "source", "path")
	s.ComparedRepo = str("status", "sync", "comparedTo", "source", "repoURL")

	results, _, _ := unstructured.NestedSlice(u.Object, "status", "operationState", "syncResult", "resources")
	for _, r := range results {
		m, _ := r.(map[string]any)
		if m == nil || m["hookType"] != "PostSync" {
			continue
		}
		phase, _ := m["hookPhase"].(string)
		h := fmt.Sprintf("%v %v %s", m["kind"], m["name"], report.OrDash(phase))
		if msg, _ := m["message"].(string); msg != "" {
			h += ": " + msg
		}
		s.Hooks = append(s.Hooks, h)
	}
	resources, _, _ := unstructured.NestedSlice(u.Object, "status", "resources")
	for _, r := range resources {
		m, _ := r.(map[string]any)
		if m == nil {
			continue
		}
		health, _ := m["health"].(map[string]any)
		hs, _ := health["status"].(string)
		if hs == "" || hs == "Healthy" {
			continue
		}
		s.Waiting = append(s.Waiting, fmt.Sprintf("%v/%v %s", m["kind"], m["name"], hs))
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m == nil {
			continue
		}
		s.Conditions = append(s.Conditions, fmt.Sprintf("%v: %v", m["type"], m["message"]))
	}
	return s
}

// line is the progress line: sync, health, the last sync operation and the PostSync job, then what Argo CD
// is waiting for or complains about.
func (s appState) line() string {
	if s.Refreshing && s.Sync == "" {
		return "waiting for Argo CD to pick up the Application"
	}
	op := report.OrDash(s.Phase)
	if s.OpMessage != "" {
		op += " (" + s.OpMessage + ")"
	}
	postSync := "-"
	if len(s.Hooks) > 0 {
		postSync = strings.Join(s.Hooks, "; ")
	}
	l := fmt.Sprintf("sync=%s health=%s operation=%s postsync=%s", report.OrDash(s.Sync), report.OrDash(s.Health), op, postSync)
	if len(s.Waiting) > 0 {
		l += " | not healthy: " + report.LimitList(s.Waiting, 4)
	}
	if len(s.Conditions) > 0 {
		l += " | " + strings.Join(s.Conditions, "; ")
	}
	return l
}

// done: Argo CD compared the Application as applied, everything is Synced and Healthy, and the last sync
// operation (which ran the PostSync job) Succeeded.
func (s appState) done(path, repo string) bool {
	return !s.Refreshing && s.Sync == "Synced" && s.Health == "Healthy" && s.Phase == "Succeeded" &&
		(s.ComparedPath == "" || s.ComparedPath == path) && (s.ComparedRepo == "" || s.ComparedRepo == repo)
}

// waitForApplication watches app until done, printing one line per change of state. It fails early when a
// sync operation that started during the wait failed and Argo CD will not retry it.
func waitForApplication(ctx context.Context, c *cluster.Cluster, app *unstructured.Unstructured, out io.Writer, timeout time.Duration) error {
	ri, _, err := c.ResourceFor(cluster.ApplicationGVK, app.GetNamespace())
	if err != nil {
		return err
	}
	path, _, _ := unstructured.NestedString(app.Object, "spec", "source", "path")
	repo, _, _ := unstructured.NestedString(app.Object, "spec", "source", "repoURL")
	retryLimit, hasRetry, _ := unstructured.NestedInt64(app.Object, "spec", "syncPolicy", "retry", "limit")
	name := app.GetNamespace() + "/" + app.GetName()
	fmt.Fprintf(out, "Waiting up to %s for Application %s (Synced, Healthy, last sync Succeeded)\n", report.ShortDuration(timeout), name)

	lw := listwatch.Named(ri, app.GetName())
	start := time.Now()
	var last appState
	lastLine, firstSeen := "", false
	initialOp := ""
	var failure error
	_, err = watchtools.UntilWithSync(ctx, lw, &unstructured.Unstructured{}, nil, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return false, fmt.Errorf("Application %s was deleted while deploy waited for it", name)
		}
		u, ok := ev.Object.(*unstructured.Unstructured)
		if !ok {
			return false, nil
		}
		st := readAppState(u)
		if !firstSeen {
			firstSeen, initialOp = true, st.OpStarted
		}
		last = st
		if l := st.line(); l != lastLine {
			lastLine = l
			fmt.Fprintf(out, "  [%6s] %s\n", report.ShortDuration(time.Since(start)), l)
		}
		if st.done(path, repo) {
			return true, nil
		}
		// A failed operation that was already there when the wait began is history: the refresh may start
		// a new one. A new failure is final once Argo CD has no retry left (limit < 0 means unlimited).
		if (st.Phase == "Failed" || st.Phase == "Error") && st.OpStarted != initialOp && !st.Refreshing {
			if !hasRetry || (retryLimit >= 0 && st.RetryCount >= retryLimit) {
				failure = fmt.Errorf("the sync of Application %s failed: %s%s\n%s", name, report.OrDash(st.OpMessage), hookNote(st), failureHints(st, app))
				return false, failure
			}
		}
		return false, nil
	})
	if err == nil {
		fmt.Fprintf(out, "Application %s is Synced and Healthy (revision %s), its last sync Succeeded, after %s\n", name, shortRevision(last.Revision), report.ShortDuration(time.Since(start)))
		return nil
	}
	if failure != nil {
		return failure
	}
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		state := "nothing: Argo CD never reported a status"
		if firstSeen {
			state = last.line()
		}
		return fmt.Errorf("timed out after %s waiting for Application %s to be Synced and Healthy with its last sync Succeeded.\nLast state: %s\n%s",
			report.ShortDuration(timeout), name, state, failureHints(last, app))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stopped waiting for Application %s: %w (the Application stays applied; run deploy again to keep waiting)", name, ctx.Err())
	}
	return fmt.Errorf("watching Application %s: %w", name, err)
}

func hookNote(s appState) string {
	if len(s.Hooks) == 0 {
		return ""
	}
	return "; PostSync: " + strings.Join(s.Hooks, "; ")
}

func shortRevision(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return report.OrDash(r)
}

// failureHints says where to look next, for the state the Application was last seen in.
func failureHints(s appState, app *unstructured.Unstructured) string {
	ns, _, _ := unstructured.NestedString(app.Object, "spec", "destination", "namespace")
	argo := app.GetNamespace()
	var hints []string
	switch {
	case s.Sync == "" && s.Health == "":
		hints = append(hints, fmt.Sprintf("Argo CD has not processed the Application: check that the application controller of %s runs (oc get pods -n %s) and that this instance manages Applications in namespace %s.", argo, argo, argo))
	case s.Refreshing:
		hints = append(hints, "Argo CD has not refreshed the Application since deploy applied it: is its application controller running and keeping up?")
	}
	if len(s.Conditions) > 0 {
		hints = append(hints, "Argo CD reports: "+strings.Join(s.Conditions, "; ")+". A repository or path error means the fork is not reachable or the overlay is not pushed.")
	}
	if s.Sync == "OutOfSync" && s.Phase == "" {
		hints = append(hints, "No sync has started: press Sync on the Application in the OpenShift GitOps console.")
	}
	if len(s.Waiting) > 0 {
		hints = append(hints, fmt.Sprintf("Not healthy yet: %s. Look at `oc get pods -n %s` and `oc get events -n %s --sort-by=.lastTimestamp`.", report.LimitList(s.Waiting, 6), ns, ns))
	}
	for _, h := range s.Hooks {
		if strings.Contains(h, "Running") || strings.Contains(h, "Failed") || strings.Contains(h, "Error") {
			hints = append(hints, fmt.Sprintf("The PostSync job has not succeeded: oc logs -n %s job/litemaas-sync", ns))
			break
		}
	}
	hints = append(hints, fmt.Sprintf("Details: oc describe application %s -n %s", app.GetName(), argo))
	return "Hints:\n  - " + strings.Join(hints, "\n  - ")
}
