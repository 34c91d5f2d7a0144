package reconcile_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/reconcile"
	"github.com/litemaas-gitops/litemaas-gitops/internal/store"
)

// With LiteLLM failing every write, the run ends at RETRY_TIMEOUT (not once per batch of models),
// and the result names every failed model and the state it was left in.
func TestFailingLiteLLMEndsAtTheRunsDeadline(t *testing.T) {
	s := newStack(t)
	s.proxy.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 503, Times: 1 << 30})
	o := s.options(loadCatalog(t, ""))
	o.RetryTimeout = 2 * time.Second
	o.Concurrency = 1 // one model at a time: a per-operation bound would take 5 x 2 s
	start := time.Now()
	res, err := reconcile.Run(context.Background(), o)
	took := time.Since(start)
	require.Error(t, err)
	assert.Less(t, took, o.RetryTimeout+time.Second, "the deadline holds for the whole run")
	assert.Contains(t, err.Error(), "RETRY_TIMEOUT (2s) reached")
	assert.Contains(t, err.Error(), "5 LiteLLM change(s) failed", "the error names the models, not the database step the deadline cut short")
	assert.True(t, res.Failed)
	assert.True(t, strings.HasPrefix(res.Summary(), "failed: litellm created=0"), res.Summary())
	require.Len(t, res.Models, 5)
	for i, m := range res.Models {
		assert.Equal(t, "not written", m.Database, m.ID)
		assert.Equal(t, -1, m.LiteLLMDeployments, m.ID)
		assert.Contains(t, m.Error, "RETRY_TIMEOUT (2s) reached", m.ID)
		if i == 0 {
			assert.Contains(t, m.Error, "503", "the last answer of LiteLLM")
		}
	}
	assert.Empty(t, s.query(`SELECT id FROM models`))
}

// An attempt the deadline cuts short answered nothing: the error still gives LiteLLM's last answer.
// Here the first write answers 503 and the next one is still running when the deadline ends it.
func TestDeadlineKeepsLiteLLMsLastAnswer(t *testing.T) {
	s := newStack(t, func(o *litellmtest.Options) { o.WriteDelay = 3 * time.Second })
	s.proxy.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 503, Times: 1})
	o := s.options(loadCatalog(t, ""))
	o.RetryTimeout = 2 * time.Second
	o.Concurrency = 1
	_, err := reconcile.Run(context.Background(), o)
	require.Error(t, err)
	require.Equal(t, 2, s.proxy.Count("POST", "/model/new"), "a 503, then a write the deadline cut")
	assert.Contains(t, err.Error(), "status 503", "LiteLLM's last answer, not the cut attempt's")
	assert.Contains(t, err.Error(), "RETRY_TIMEOUT (2s) reached")
}

// failOnce fails the first Apply as a PostgreSQL restart does.
type failOnce struct {
	*store.Store
	failed atomic.Bool
}

func (f *failOnce) Apply(ctx context.Context, upserts []modelsync.Row, unavailable []string) (store.Applied, error) {
	if f.failed.CompareAndSwap(false, true) {
		return store.Applied{}, &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"}
	}
	return f.Store.Apply(ctx, upserts, unavailable)
}

// A pass that fails after its LiteLLM changes is repeated; the result still counts what the first
// pass did.
func TestRetriedPassKeepsTheFirstPassesChanges(t *testing.T) {
	s := newStack(t)
	o := s.options(loadCatalog(t, ""))
	o.Store = &failOnce{Store: s.db}
	res, err := reconcile.Run(context.Background(), o)
	require.NoError(t, err)
	assert.Equal(t, 2, res.Passes)
	assert.Equal(t, reconcile.Counts{Created: 5}, res.LiteLLM, "created by the first pass, unchanged in the second")
	assert.Equal(t, reconcile.Counts{Created: 5}, res.Database)
	assert.Contains(t, res.Summary(), "done: litellm created=5 updated=0 unchanged=0 deleted=0; database created=5")
	s.assertFixedPoint()
}
