package verify

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

func TestProbeAdvisory(t *testing.T) {
	tests := []struct {
		name        string
		handler     http.Handler
		allowlisted bool
		status      string
		want        string
	}{
		{"a backend that grants the bypass", bypassStandIn(true), false, report.StatusFail, "OPEN: an unauthenticated GET"},
		{"a fixed backend", bypassStandIn(false), false, report.StatusOK, "closed: unauthenticated GET"},
		{"the router's allowlist refuses us", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Forbidden", http.StatusForbidden)
		}), true, report.StatusWarn, "IP allowlist refuses this address"},
		{"no backend behind the Route", http.NotFoundHandler(), false, report.StatusWarn, "cannot tell"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			r := probeAdvisory(context.Background(), srv.Client(), srv.URL, tt.allowlisted)
			t.Logf("%+v", r)
			assert.Equal(t, tt.status, r.Status)
			assert.Contains(t, r.Detail, tt.want)
			assert.Contains(t, r.Check, "litemaas#137")
			if tt.status == report.StatusFail {
				assert.Contains(t, r.Detail, tree.AdvisoryURL)
				assert.Contains(t, r.Detail, "ADMIN")
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(bypassStandIn(true))
		url := srv.URL
		srv.Close()
		r := probeAdvisory(context.Background(), http.DefaultClient, url, false)
		assert.Equal(t, report.StatusWarn, r.Status)
		assert.Contains(t, r.Detail, "not probed")
	})
}
