package litellmtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
)

func TestServerDownAndBackOnTheSameAddress(t *testing.T) {
	p := litellmtest.New(litellmtest.Options{MasterKey: key})
	s := litellmtest.NewServer(p)
	require.NoError(t, s.Start(""))
	t.Cleanup(func() { _ = s.Stop() })
	addr := s.Addr()
	c := litellm.New(s.URL(), key)
	ctx := context.Background()

	require.NoError(t, c.CreateModel(ctx, granite("a")))
	require.Error(t, s.Start(""), "already started")

	require.NoError(t, s.Stop())
	require.NoError(t, s.Stop(), "stopping twice is harmless")
	_, err := c.ListModels(ctx)
	require.Error(t, err)
	assert.True(t, litellm.IsTransient(err), "connection refused: %v", err)

	require.NoError(t, s.Start(""))
	assert.Equal(t, addr, s.Addr())
	list, err := c.ListModels(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1, "state survives the restart")
	assert.Equal(t, "a", list[0].ID())
	assert.Same(t, p, s.Proxy())
}

// TestServerComesUpLater is the "LiteLLM down when the job starts" scenario: a caller retrying on
// transient errors succeeds once the proxy listens again.
func TestServerComesUpLater(t *testing.T) {
	p := litellmtest.New(litellmtest.Options{MasterKey: key})
	s := litellmtest.NewServer(p)
	require.NoError(t, s.Start("127.0.0.1:0"))
	t.Cleanup(func() { _ = s.Stop() })
	require.NoError(t, s.Stop())
	c := litellm.New(s.URL(), key)

	time.AfterFunc(100*time.Millisecond, func() { _ = s.Start("") })
	var permanent error
	require.Eventually(t, func() bool {
		r, err := c.Readiness(context.Background())
		if err != nil {
			if !litellm.IsTransient(err) {
				permanent = err
				return true
			}
			return false
		}
		return r.DBConnected()
	}, 2*time.Second, 20*time.Millisecond)
	require.NoError(t, permanent)
}
