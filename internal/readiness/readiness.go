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
	wctx, cancel := context.WithCancelCause(tctx)
	defer cancel(nil)

	var mu sync.Mutex
	var permanent *fault.Permanent
	last := make([]string, len(w.Probes))
	done := make([]bool, len(w.Probes))
	var wg sync.WaitGroup
	var kubeErr error
	kubeDone := w.Workloads == nil
	if w.Workloads != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := w.Workloads.Wait(wctx)
			mu.Lock()
			kubeErr, kubeDone = err, err == nil
			mu.Unlock()
			if err == nil {
				log.Info("workloads rolled out")
			}
		}()
	}
	for i, p := range w.Probes {
		mu.Lock()
		last[i] = "not checked yet"
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev string
			for {
				err := p.Check(wctx)
				if err == nil {
					mu.Lock()
					done[i] = true
					mu.Unlock()
					log.Info("ready", "component", p.Name)
					return
				}
				if wctx.Err() != nil {
					return
				}
				if perm := fault.Classify(fault.Component(p.Name), err); perm != nil {
					mu.Lock()
					if permanent == nil {
						permanent = perm
					}
					mu.Unlock()
					log.Error("not ready and waiting cannot help", "component", p.Name, "error", err)
					cancel(perm)
					return
				}
				msg := err.Error()
				mu.Lock()
				last[i] = msg
				mu.Unlock()
				if msg != prev {
					log.Info("waiting", "component", p.Name, "state", msg)
					prev = msg
				}
				t := time.NewTimer(interval)
				select {
				case <-wctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	ready := kubeDone
	for _, d := range done {
		ready = ready && d
	}
	if ready {
		return nil
	}
	if permanent != nil {
		return permanent
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var pending []string
	if !kubeDone {
		pending = append(pending, w.Workloads.Pending()...)
		if kubeErr != nil && !errors.Is(kubeErr, context.DeadlineExceeded) && len(pending) == 0 {
			pending = append(pending, "kubernetes: "+kubeErr.Error())
		}
	}
	for i, p := range w.Probes {
		if !done[i] {
			pending = append(pending, p.Name+": "+last[i])
		}
	}
	return &TimeoutError{Timeout: timeout, Pending: pending}
}
