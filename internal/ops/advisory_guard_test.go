package ops

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/litemaas-gitops/litemaas-gitops/internal/guardtest"
)

// verify's advisory probe against the stand-in of the 0.4.0 backend: OPEN when it is reached directly,
// closed behind the backend guard's nginx with the configuration overlay example renders.
func TestAdvisoryProbeThroughGuard(t *testing.T) {
	backend := &guardtest.Backend{JWTSecret: "s3cret-for-the-probe-test"}
	direct := httptest.NewServer(backend)
	defer direct.Close()
	g := guardtest.Start(t, guardtest.RenderedConfig(t, "gitops/overlays/example"), strings.TrimPrefix(direct.URL, "http://"))

	open := probeAdvisory(context.Background(), http.DefaultClient, direct.URL, false)
	assert.Equal(t, statusFail, open.Status, open.Detail)
	assert.Contains(t, open.Detail, "OPEN")

	closed := probeAdvisory(context.Background(), http.DefaultClient, g.URL, false)
	assert.Equal(t, statusOK, closed.Status, closed.Detail)
	assert.Contains(t, closed.Detail, "closed")
}
