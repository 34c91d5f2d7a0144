package verify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/guardtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// verify's advisory probe against the stand-in of the 0.4.0 backend: OPEN when it is reached directly,
// closed behind the backend guard's nginx with the configuration overlay example renders.
func TestAdvisoryProbeThroughGuard(t *testing.T) {
	backend := &guardtest.Backend{JWTSecret: "s3cret-for-the-probe-test"}
	direct := httptest.NewServer(backend)
	defer direct.Close()
	g := guardtest.Start(t, guardtest.RenderedConfig(t, "gitops/overlays/example"), strings.TrimPrefix(direct.URL, "http://"))

	open := probeAdvisory(context.Background(), http.DefaultClient, direct.URL, false)
	assert.Equal(t, report.StatusFail, open.Status, open.Detail)
	assert.Contains(t, open.Detail, "OPEN")

	closed := probeAdvisory(context.Background(), http.DefaultClient, g.URL, false)
	assert.Equal(t, report.StatusOK, closed.Status, closed.Detail)
	assert.Contains(t, closed.Detail, "closed")
}

// The LiteLLM version verify reads from the live proxy: the double answers /health/readiness as LiteLLM
// 1.74.7 does (with litellm_version) and as the 1.81 fork does (without); then none is reported and
// verify falls back to the running image's tag.
func TestLiveLiteLLMVersion(t *testing.T) {
	old := httptest.NewServer(litellmtest.New(litellmtest.Options{}))
	defer old.Close()
	v, err := liveLiteLLMVersion(context.Background(), http.DefaultClient, old.URL)
	require.NoError(t, err)
	assert.Equal(t, "1.74.7", v)

	modern := httptest.NewServer(litellmtest.New(litellmtest.Options{Version: litellmtest.Version181}))
	defer modern.Close()
	v, err = liveLiteLLMVersion(context.Background(), http.DefaultClient, modern.URL)
	require.NoError(t, err)
	assert.Empty(t, v)

	header := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-litellm-version", "1.84.2")
		_, _ = w.Write([]byte(`{"status":"healthy","db":"connected"}`))
	}))
	defer header.Close()
	v, err = liveLiteLLMVersion(context.Background(), http.DefaultClient, header.URL)
	require.NoError(t, err)
	assert.Equal(t, "1.84.2", v)
}
