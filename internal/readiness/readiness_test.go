package readiness

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/fault"
)

type fakeWorkloads struct {
	readyAfter time.Duration
	pending    []string
}

func (f *fakeWorkloads) Wait(ctx context.Context) error {
	if f.readyAfter < 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	select {
	case <-time.After(f.readyAfter):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeWorkloads) Pending() []string { return f.pending }

func TestWaitAllReady(t *testing.T) {
	var calls atomic.Int32
	w := &Waiter{
		Workloads: &fakeWorkloads{readyAfter: 50 * time.Millisecond},
		Probes: []Probe{{Name: "postgres", Check: func(context.Context) error {
			if calls.Add(1) < 3 {
				return errors.New("connection refused")
			}
			return nil
		}}},
		Interval: 10 * time.Millisecond,
	}
	require.NoError(t, w.Wait(context.Background(), 5*time.Second))
	assert.EqualValues(t, 3, calls.Load())
}

func TestWaitTimeoutReportsEveryComponent(t *testing.T) {
	w := &Waiter{
		Workloads: &fakeWorkloads{readyAfter: -1, pending: []string{"deployment/litellm: 0/1 ready"}},
		Probes: []Probe{
			{Name: "postgres", Check: func(context.Context) error { return nil }},
			{Name: "litellm", Check: func(context.Context) error { return errors.New("database not connected") }},
		},
		Interval: 10 * time.Millisecond,
	}
	err := w.Wait(context.Background(), 100*time.Millisecond)
	var te *TimeoutError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, []string{"deployment/litellm: 0/1 ready", "litellm: database not connected"}, te.Pending)
	assert.Contains(t, err.Error(), "timed out after 100ms")
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Waiter{Probes: []Probe{{Name: "x", Check: func(context.Context) error { return errors.New("no") }}}}
	time.AfterFunc(20*time.Millisecond, cancel)
	err := w.Wait(ctx, time.Minute)
	require.ErrorIs(t, err, context.Canceled)
}

func TestWaitNoKubernetes(t *testing.T) {
	w := &Waiter{Probes: []Probe{{Name: "x", Check: func(context.Context) error { return nil }}}}
	require.NoError(t, w.Wait(context.Background(), time.Second))
}

// A probe answering an error no wait can fix ends the wait at once with it, workloads still pending.
func TestPermanentProbeErrorEndsTheWait(t *testing.T) {
	refused := &pgconn.PgError{Code: "28P01", Message: "password authentication failed"}
	w := &Waiter{
		Workloads: &fakeWorkloads{readyAfter: -1, pending: []string{"deployment/litellm: 0/1 ready"}},
		Probes: []Probe{
			{Name: "postgres", Check: func(context.Context) error { return fmt.Errorf("cannot query: %w", refused) }},
			{Name: "litellm", Check: func(context.Context) error { return errors.New("connection refused") }},
		},
		Interval: 10 * time.Millisecond,
	}
	start := time.Now()
	err := w.Wait(context.Background(), time.Minute)
	assert.Less(t, time.Since(start), 5*time.Second)
	var p *fault.Permanent
	require.ErrorAs(t, err, &p)
	assert.Equal(t, fault.DatabaseAuth, p.Reason)
	assert.ErrorIs(t, err, refused)
	assert.Contains(t, err.Error(), "fix DATABASE_URL user or password")
}

// A signal during the wait is the wait's error, not a bare "context canceled".
func TestWaitReportsTheCauseOfItsCancellation(t *testing.T) {
	stopped := errors.New("stopped by terminated")
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &Waiter{Workloads: &fakeWorkloads{readyAfter: -1}, Interval: 10 * time.Millisecond,
		Probes: []Probe{{Name: "litellm", Check: func(context.Context) error { return errors.New("not yet") }}}}
	time.AfterFunc(50*time.Millisecond, func() { cancel(stopped) })
	err := w.Wait(ctx, time.Minute)
	assert.ErrorIs(t, err, stopped)
}
