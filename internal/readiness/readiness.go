// Package readiness waits for the whole LiteMaaS stack under one deadline: the workloads through the
// Kubernetes API, and the things Kubernetes cannot see (the backend's tables exist, LiteLLM has its
// database). On timeout it says, per component, what it last saw.
package readiness

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/fault"
)

// Workloads waits for Kubernetes workloads to be rolled out.
type Workloads interface {
	Wait(ctx context.Context) error
	Pending() []string
}

// Probe is an application check, polled until it answers nil or an error no wait can fix.
type Probe struct {
	// Name is the component ("postgres", "litellm"); it also tells fault.Classify where an error came from.
	Name  string
	Check func(ctx context.Context) error
}

// Waiter runs the workload wait and the probes at the same time, so the job is done waiting as soon
// as the last of them is ready, not one probe interval after the workloads are.
type Waiter struct {
	Workloads Workloads // nil: no Kubernetes wait
	Probes    []Probe
	// Interval between two attempts of a probe (default 250ms).
	Interval time.Duration
	Logger   *slog.Logger
}

// TimeoutError lists what was still not ready when the deadline passed.
type TimeoutError struct {
	Timeout time.Duration
	Pending []string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("timed out after %s waiting for the stack; still not ready:\n  %s", e.Timeout, strings.Join(e.Pending, "\n  "))
}

// Wait blocks until everything is ready (nil), the timeout passes (*TimeoutError), a probe answers
// an error no wait can fix (a *fault.Permanent, at once: a wrong password stays wrong) or ctx is
// cancelled (ctx's cause, e.g. the signal that stopped the job).
func (w *Waiter) Wait(ctx context.Context, timeout time.Duration) error {
	interval := w.Interval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	log := w.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()
	// A permanent fault cancels the others with itself as the cause.
	wctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)

	st := &waitState{last: make([]string, len(w.Probes)), done: make([]bool, len(w.Probes)), kubeDone: w.Workloads == nil}
	var wg sync.WaitGroup
	if w.Workloads != nil {
		wg.Go(func() { w.waitWorkloads(wctx, st, log) })
	}
	for i, p := range w.Probes {
		st.mu.Lock()
		st.last[i] = "not checked yet"
		st.mu.Unlock()
		wg.Go(func() { poll(wctx, cancel, st, i, p, interval, log) })
	}
	wg.Wait()
	return w.verdict(ctx, st, timeout)
}

// waitState is what the workload wait and the probes, each in its own goroutine, last saw.
type waitState struct {
	mu        sync.Mutex
	permanent *fault.Permanent // the first fault no wait can fix
	last      []string         // per probe: its last answer
	done      []bool           // per probe: it answered nil
	kubeErr   error
	kubeDone  bool
}

// waitWorkloads runs the Kubernetes wait and records its outcome.
func (w *Waiter) waitWorkloads(ctx context.Context, st *waitState, log *slog.Logger) {
	err := w.Workloads.Wait(ctx)
	st.mu.Lock()
	st.kubeErr, st.kubeDone = err, err == nil
	st.mu.Unlock()
	if err == nil {
		log.Info("workloads rolled out")
	}
}

// poll checks probe i until it answers nil, ctx ends, or it answers a permanent fault, which cancels
// the whole wait with that fault. A changed answer is logged once, not on every attempt.
func poll(ctx context.Context, cancel context.CancelCauseFunc, st *waitState, i int, p Probe, interval time.Duration, log *slog.Logger) {
	var prev string
	for {
		err := p.Check(ctx)
		if err == nil {
			st.mu.Lock()
			st.done[i] = true
			st.mu.Unlock()
			log.Info("ready", "component", p.Name)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if perm := fault.Classify(fault.Component(p.Name), err); perm != nil {
			st.mu.Lock()
			if st.permanent == nil {
				st.permanent = perm
			}
			st.mu.Unlock()
			log.Error("not ready and waiting cannot help", "component", p.Name, "error", err)
			cancel(perm)
			return
		}
		msg := err.Error()
		st.mu.Lock()
		st.last[i] = msg
		st.mu.Unlock()
		if msg != prev {
			log.Info("waiting", "component", p.Name, "state", msg)
			prev = msg
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// verdict turns what the wait saw into Wait's answer: nil when all is ready, else the permanent
// fault, the caller's cancellation, or the list of what is still pending.
func (w *Waiter) verdict(ctx context.Context, st *waitState, timeout time.Duration) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	ready := st.kubeDone
	for _, d := range st.done {
		ready = ready && d
	}
	if ready {
		return nil
	}
	if st.permanent != nil {
		return st.permanent
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var pending []string
	if !st.kubeDone {
		pending = append(pending, w.Workloads.Pending()...)
		if st.kubeErr != nil && !errors.Is(st.kubeErr, context.DeadlineExceeded) && len(pending) == 0 {
			pending = append(pending, "kubernetes: "+st.kubeErr.Error())
		}
	}
	for i, p := range w.Probes {
		if !st.done[i] {
			pending = append(pending, p.Name+": "+st.last[i])
		}
	}
	return &TimeoutError{Timeout: timeout, Pending: pending}
}
