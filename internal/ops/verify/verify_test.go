package verify

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// TestVerify runs verify against a namespace per case, filled with what a synced installation holds
// (Ready pods, Routes, the job's status ConfigMap), then broken in one way.
func TestVerify(t *testing.T) {
	setupCluster(t)
	rs := newRouteServer(t, testDomain)
	admin := newCluster(t, srv.Config)

	tests := []struct {
		name       string
		breakIt    func(t *testing.T, ns string)
		skipRoutes bool
		wantErr    bool
		want       []string // substrings of the table
	}{
		{
			name: "all green",
			want: []string{"mistral-3-int4    OK", "served: 1 LiteLLM deployment(s), database available", "not served: 0 LiteLLM deployment(s), database unavailable", "-> 200 OK", "-> 404 Not Found",
				"advisory litemaas#137 OK closed: unauthenticated GET"},
		},
		{
			name: "a model missing from what the job published",
			breakIt: func(t *testing.T, ns string) {
				writeJobStatus(t, ns, "succeeded", `[
 {"id":"mistral-3-int4","catalog":"available","litellmDeployments":1,"deploymentId":"4f0c1d2e","database":"available"},
 {"id":"gpt-oss-20b","catalog":"unavailable","litellmDeployments":0,"deploymentId":"","database":"unavailable"}]`)
			},
			wantErr: true,
			want:    []string{"granite-8b-agent  FAIL    in testdata/models.yaml but not published by the job"},
		},
		{
			name: "a served model without its LiteLLM deployment and database row",
			breakIt: func(t *testing.T, ns string) {
				writeJobStatus(t, ns, "succeeded", strings.Replace(goodModels,
					`"litellmDeployments":1,"deploymentId":"9a8b7c6d","database":"available"`,
					`"litellmDeployments":2,"deploymentId":"9a8b7c6d","database":"missing"`, 1))
			},
			wantErr: true,
			want:    []string{"granite-8b-agent  FAIL    2 LiteLLM deployments, want 1; database row missing, want available"},
		},
		{
			name:    "a pod that is not ready",
			breakIt: func(t *testing.T, ns string) { createPod(t, ns, "backend-7d9f8-abcde", "backend", false) },
			wantErr: true,
			want:    []string{"backend          pods ready        FAIL    0/1 ready; backend-7d9f8-abcde: container backend CrashLoopBackOff (back-off 5m0s restarting failed container), 5 restarts"},
		},
		{
			name:    "a failed job run",
			breakIt: func(t *testing.T, ns string) { writeJobStatus(t, ns, "failed", goodModels) },
			wantErr: true,
			want:    []string{"litemaas-sync    last run          FAIL    failed at 2026-05-04T10:00:00Z: LiteLLM not ready after 10m0s"},
		},
		{
			name: "a Route whose pods are gone",
			breakIt: func(t *testing.T, ns string) {
				populateRoute(t, ns, "broken-frontend", "broken-frontend-"+ns+"."+testDomain)
			},
			wantErr: true,
			want:    []string{"route broken-frontend  FAIL    https://broken-frontend-"},
		},
		{
			name: "a backend open to litemaas#137",
			breakIt: func(t *testing.T, ns string) {
				populateRoute(t, ns, "litemaas", "bypass-open-"+ns+"."+testDomain)
			},
			wantErr: true,
			want:    []string{"backend advisory litemaas#137 FAIL OPEN: an unauthenticated GET https://bypass-open-"},
		},
		{
			name: "routes skipped",
			breakIt: func(t *testing.T, ns string) {
				populateRoute(t, ns, "broken-frontend", "broken-frontend-"+ns+"."+testDomain)
			},
			skipRoutes: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ns := srv.CreateNamespace(t, "verify")
			populateNamespace(t, ns, testDomain)
			writeJobStatus(t, ns, "succeeded", goodModels)
			if tt.breakIt != nil {
				tt.breakIt(t, ns)
			}
			var out syncBuffer
			err := Verify(context.Background(), admin, Options{
				Namespace: ns, Catalog: "testdata/models.yaml", SkipRoutes: tt.skipRoutes, HTTPClient: rs.Client, Out: &out,
			})
			t.Logf("verify (%s):\n%s", tt.name, out.String())
			if tt.wantErr {
				var pe *report.ProblemsError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, 1, pe.Count, "exactly the broken thing fails")
			} else {
				require.NoError(t, err)
			}
			for _, w := range tt.want {
				assert.Contains(t, squeeze(out.String()), squeeze(w))
			}
		})
	}
}

// squeeze collapses runs of spaces, so that assertions do not depend on column widths.
func populateRoute(t *testing.T, ns, name, host string) {
	t.Helper()
	srv.Apply(t, opstest.RouteObject(ns, name, host))
}

func TestVerifyWithoutNamespace(t *testing.T) {
	setupCluster(t)
	var out syncBuffer
	err := Verify(context.Background(), newCluster(t, srv.Config), Options{Namespace: "does-not-exist", Catalog: "testdata/models.yaml", Out: &out})
	t.Logf("verify (no namespace):\n%s", out.String())
	var pe *report.ProblemsError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, out.String(), "not found: LiteMaaS is not deployed here (make deploy)")
}
