package litellmtest_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
)

// Two replicas of one database: B sees A's writes only through its poll, and the poll follows
// LiteLLM's rules.
func TestReplicasPollLikeLiteLLM(t *testing.T) {
	ctx := context.Background()
	ps := litellmtest.NewReplicas(litellmtest.Options{MasterKey: key}, 2)
	var clients []*litellm.Client
	for _, p := range ps {
		srv := httptest.NewServer(p)
		t.Cleanup(srv.Close)
		clients = append(clients, litellm.New(srv.URL, key))
	}
	a, b := clients[0], clients[1]
	get := func(c *litellm.Client, id string) (litellm.Deployment, error) { return c.GetModel(ctx, id) }

	require.NoError(t, a.CreateModel(ctx, granite("one")))
	require.NoError(t, a.CreateModel(ctx, granite("two")))
	_, err := get(b, "one")
	require.ErrorIs(t, err, litellm.ErrNotFound, "B has not polled yet")
	ps[1].Poll()
	_, err = get(b, "one")
	require.NoError(t, err, "a new id reaches B on its poll")

	steps := []struct {
		name  string
		write func() error
		check func(t *testing.T, d litellm.Deployment, err error)
	}{
		{"litellm_params refreshed", func() error {
			return a.UpdateModel(ctx, "one", litellm.Deployment{LiteLLMParams: map[string]any{"api_base": "http://new:8000/v1"}})
		}, func(t *testing.T, d litellm.Deployment, err error) {
			require.NoError(t, err)
			assert.Equal(t, "http://new:8000/v1", d.LiteLLMParams["api_base"])
		}},
		{"model_info kept as first loaded", func() error {
			return a.UpdateModel(ctx, "one", litellm.Deployment{ModelInfo: map[string]any{"max_tokens": 4096}})
		}, func(t *testing.T, d litellm.Deployment, err error) {
			require.NoError(t, err)
			assert.Equal(t, 8192.0, d.ModelInfo["max_tokens"])
		}},
		{"model_name kept as first loaded", func() error {
			return a.UpdateModel(ctx, "one", litellm.Deployment{ModelName: "renamed"})
		}, func(t *testing.T, d litellm.Deployment, err error) {
			require.NoError(t, err)
			assert.Equal(t, "granite-3-8b", d.ModelName)
		}},
		{"deleted id removed", func() error { return a.DeleteModel(ctx, "one") }, func(t *testing.T, _ litellm.Deployment, err error) {
			assert.ErrorIs(t, err, litellm.ErrNotFound)
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			require.NoError(t, s.write())
			ps[1].Poll()
			d, err := get(b, "one")
			s.check(t, d, err)
		})
	}
	// A restart loads everything afresh; the writer always saw its own writes.
	d, err := get(a, "two")
	require.NoError(t, err)
	assert.Equal(t, 8192.0, d.ModelInfo["max_tokens"])

	t.Run("deleting the last database model does not reach B", func(t *testing.T) {
		require.NoError(t, a.DeleteModel(ctx, "two"))
		ps[1].Poll()
		_, err := get(b, "two")
		assert.NoError(t, err, "B keeps serving it")
		ds, err := a.ListModels(ctx)
		require.NoError(t, err)
		assert.Empty(t, ds, "A answered the delete")
		ps[1].Restart()
		_, err = get(b, "two")
		assert.ErrorIs(t, err, litellm.ErrNotFound, "gone after a restart")
	})
}

func TestReplicasPollOnTheirInterval(t *testing.T) {
	ctx := context.Background()
	ps := litellmtest.NewReplicas(litellmtest.Options{MasterKey: key, PollInterval: 50 * time.Millisecond}, 2)
	srvA, srvB := httptest.NewServer(ps[0]), httptest.NewServer(ps[1])
	t.Cleanup(srvA.Close)
	t.Cleanup(srvB.Close)
	require.NoError(t, litellm.New(srvA.URL, key).CreateModel(ctx, granite("one")))
	b := litellm.New(srvB.URL, key)
	assert.Eventually(t, func() bool { _, err := b.GetModel(ctx, "one"); return err == nil }, 5*time.Second, 20*time.Millisecond)
}
