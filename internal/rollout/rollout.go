// Package rollout waits until workloads are rolled out in the sense of `kubectl rollout status`: the
// controller has observed the latest generation and every desired replica is updated, ready and
// available (for a StatefulSet: the update revision is rolled out).
//
// It watches each workload (one list+watch per workload, restricted to its name by a field selector,
// so a Role limited by resourceNames suffices) and reacts to the status change itself; nothing polls.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	"k8s.io/klog/v2"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// Normalized workload kinds.
const (
	KindDeployment  = "deployment"
	KindStatefulSet = "statefulset"
	KindDaemonSet   = "daemonset"
)

var kindAliases = map[string]string{
	"deployment": KindDeployment, "deployments": KindDeployment, "deploy": KindDeployment,
	"deployment.apps": KindDeployment, "deployments.apps": KindDeployment,
	"statefulset": KindStatefulSet, "statefulsets": KindStatefulSet, "sts": KindStatefulSet,
	"statefulset.apps": KindStatefulSet, "statefulsets.apps": KindStatefulSet,
	"daemonset": KindDaemonSet, "daemonsets": KindDaemonSet, "ds": KindDaemonSet,
	"daemonset.apps": KindDaemonSet, "daemonsets.apps": KindDaemonSet,
}

// Workload names one workload in the Waiter's namespace.
type Workload struct {
	Kind string // "deployment", "statefulset" or "daemonset"
	Name string
}

// Resource is the API resource of w's (normalized) kind.
func (w Workload) Resource() schema.GroupVersionResource {
	switch w.Kind {
	case KindStatefulSet:
		return appsV1.WithResource("statefulsets")
	case KindDaemonSet:
		return appsV1.WithResource("daemonsets")
	default:
		return appsV1.WithResource("deployments")
	}
}

// String returns "kind/name", the form ParseWorkloads accepts.
func (w Workload) String() string { return w.Kind + "/" + w.Name }

// normalize returns w with its kind in canonical form, or an error naming w.
func (w Workload) normalize() (Workload, error) {
	kind, ok := kindAliases[strings.ToLower(strings.TrimSpace(w.Kind))]
	if !ok {
		return w, fmt.Errorf("workload %q: unknown kind %q (want deployment, statefulset or daemonset)", w.String(), w.Kind)
	}
	if errs := validation.IsDNS1123Subdomain(w.Name); len(errs) > 0 {
		return w, fmt.Errorf("workload %q: invalid name %q: %s", w.String(), w.Name, strings.Join(errs, "; "))
	}
	return Workload{Kind: kind, Name: w.Name}, nil
}

// ParseWorkloads parses a comma-separated list such as "statefulset/postgres,deployment/litellm".
// Kinds are case-insensitive and may be plural or short (deploy, sts, ds). Spaces around entries are
// ignored, as are empty entries (a trailing comma); duplicates are dropped. "" gives nil.
func ParseWorkloads(s string) ([]Workload, error) {
	var out []Workload
	seen := map[Workload]bool{}
	for _, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		kind, name, ok := strings.Cut(entry, "/")
		kind, name = strings.TrimSpace(kind), strings.TrimSpace(name)
		if !ok || kind == "" || name == "" {
			return nil, fmt.Errorf("workload %q: want KIND/NAME, e.g. deployment/litellm", entry)
		}
		w, err := Workload{Kind: kind, Name: name}.normalize()
		if err != nil {
			return nil, err
		}
		if !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	return out, nil
}

// Waiter waits for Workloads in Namespace to be rolled out.
type Waiter struct {
	Client    dynamic.Interface
	Namespace string
	Workloads []Workload
	Logger    *slog.Logger // nil means slog.Default()

	mu     sync.Mutex
	order  []Workload // normalized Workloads, duplicates removed
	states map[Workload]*state
}

// state is what is known about one workload; guarded by Waiter.mu.
type state struct {
	observed bool   // a list (or an event) has been seen, so found/msg are meaningful
	found    bool   // the object exists
	done     bool   // rolled out
	msg      string // the object's state, see describe
	err      error  // last list/watch error, cleared by the next successful call
	logged   string // last line logged, to log once per change
}

// line renders s the way Pending reports it (without the workload prefix).
func (s *state) line() string {
	var b string
	switch {
	case !s.observed:
		b = "not observed yet"
	case !s.found:
		b = "not found"
	default:
		b = s.msg
	}
	if s.err != nil {
		b += "; last list/watch error: " + s.err.Error()
	}
	return b
}

// Wait blocks until every workload is rolled out (returns nil) or ctx is done (returns an error that
// wraps ctx.Err() and names the workloads still pending; Pending has the details). A workload that
// does not exist yet is waited for. Progress is logged once per state change.
func (w *Waiter) Wait(ctx context.Context) error {
	workloads, err := w.init()
	if err != nil {
		return err
	}
	if len(workloads) == 0 {
		return nil
	}
	log := w.logger()
	log.Info("waiting for rollout", "namespace", w.Namespace, "workloads", joinWorkloads(workloads))

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// client-go logs through the context's logger; keep its messages in the job's log.
	ctx = klog.NewContext(ctx, logr.FromSlogHandler(log.Handler()))

	errs := make(chan error, len(workloads))
	for _, wl := range workloads {
		go func() { errs <- w.waitOne(ctx, wl) }()
	}
	var first error
	for range workloads {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel() // one failure decides the outcome; stop the other watches
		}
	}
	if first == nil {
		log.Info("all workloads rolled out", "namespace", w.Namespace)
		return nil
	}
	if err := parent.Err(); err != nil {
		return fmt.Errorf("waiting for rollout in namespace %s: still pending: %s: %w",
			w.Namespace, joinWorkloads(w.pendingWorkloads()), err)
	}
	return first
}

// Pending returns one line per workload not rolled out yet, "kind/name: state", in the order of
// Workloads. Safe to call while Wait runs, e.g. to report after a timeout.
func (w *Waiter) Pending() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	order := w.order
	if order == nil { // Wait has not started
		for _, wl := range w.Workloads {
			if n, err := wl.normalize(); err == nil {
				wl = n
			}
			order = append(order, wl)
		}
	}
	var lines []string
	for _, wl := range order {
		st := w.states[wl]
		if st == nil {
			st = &state{}
		}
		if !st.done {
			lines = append(lines, wl.String()+": "+st.line())
		}
	}
	return lines
}

func (w *Waiter) pendingWorkloads() []Workload {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Workload
	for _, wl := range w.order {
		if !w.states[wl].done {
			out = append(out, wl)
		}
	}
	return out
}

func (w *Waiter) init() ([]Workload, error) {
	if w.Client == nil {
		return nil, errors.New("rollout.Waiter: Client is nil")
	}
	if w.Namespace == "" {
		return nil, errors.New("rollout.Waiter: Namespace is empty")
	}
	var out []Workload
	seen := map[Workload]bool{}
	for _, wl := range w.Workloads {
		n, err := wl.normalize()
		if err != nil {
			return nil, err
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.order = out
	w.states = make(map[Workload]*state, len(out))
	for _, wl := range out {
		st := &state{}
		st.logged = st.line() // the initial "not observed yet" is not worth a log line
		w.states[wl] = st
	}
	return out, nil
}

func (w *Waiter) logger() *slog.Logger {
	if w.Logger != nil {
		return w.Logger
	}
	return slog.Default()
}

// waitOne watches one workload until it is rolled out or ctx is done.
func (w *Waiter) waitOne(ctx context.Context, wl Workload) error {
	ri := w.Client.Resource(wl.Resource()).Namespace(w.Namespace)
	observe := func(u *unstructured.Unstructured) bool {
		if u == nil {
			return w.observe(wl, nil) // not found: a nil *Unstructured must not reach observe as an object
		}
		return w.observe(wl, u)
	}
	err := kube.WatchNamed(ctx, ri, wl.Name, observe, func(err error) { w.recordErr(ctx, wl, err) })
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("watching %s in namespace %s: %w", wl, w.Namespace, err)
	}
	return nil
}

// recordErr keeps the last list/watch error for Pending; kube.WatchNamed itself retries with backoff.
func (w *Waiter) recordErr(ctx context.Context, wl Workload, err error) {
	if err != nil && ctx.Err() != nil {
		return // shutting down; not a property of the workload
	}
	w.update(wl, func(st *state) { st.err = err })
}

// observe records obj (nil: not found) as wl's latest state and reports whether wl is rolled out.
func (w *Waiter) observe(wl Workload, obj runtime.Object) bool {
	var (
		done bool
		msg  string
		err  error
	)
	if obj != nil {
		done, msg, err = describe(obj)
	}
	var result bool
	w.update(wl, func(st *state) {
		st.observed = true
		st.found = obj != nil
		st.done = done
		st.msg = msg
		if err != nil {
			st.err = err
		}
		result = st.done
	})
	return result
}

// update applies f to wl's state and logs the state if its rendering changed.
func (w *Waiter) update(wl Workload, f func(*state)) {
	w.mu.Lock()
	st := w.states[wl]
	if st == nil {
		w.mu.Unlock()
		return
	}
	f(st)
	line := st.line()
	if st.done {
		line = "rolled out: " + st.msg
	}
	changed := line != st.logged
	st.logged = line
	hasErr, done := st.err != nil, st.done
	w.mu.Unlock()

	if !changed {
		return
	}
	log := w.logger().With("namespace", w.Namespace, "workload", wl.String())
	switch {
	case done:
		log.Info("rolled out", "state", strings.TrimPrefix(line, "rolled out: "))
	case hasErr:
		log.Warn("cannot watch workload", "state", line)
	default:
		log.Info("not rolled out yet", "state", line)
	}
}

func joinWorkloads(ws []Workload) string {
	s := make([]string, len(ws))
	for i, w := range ws {
		s[i] = w.String()
	}
	return strings.Join(s, ", ")
}
