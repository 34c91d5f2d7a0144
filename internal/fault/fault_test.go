package fault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

// untrusted is the error a real TLS handshake with a self-signed server gives.
func untrusted(t *testing.T) error {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	srv.StartTLS()
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err)
	return err
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name    string
		from    Component
		err     error
		reason  string // "" = not permanent
		setting string
	}{
		{"wrong password", Postgres, fmt.Errorf("cannot query: %w", &pgconn.PgError{Code: "28P01", Message: "password authentication failed for user \"x\""}), DatabaseAuth, "DATABASE_URL user or password"},
		{"unknown role or pg_hba", Postgres, &pgconn.PgError{Code: "28000", Message: "role \"x\" does not exist"}, DatabaseAuth, "DATABASE_URL user or password"},
		{"missing database", Postgres, &pgconn.PgError{Code: "3D000", Message: "database \"x\" does not exist"}, DatabaseMissing, "DATABASE_URL database"},
		{"LiteLLM 401", LiteLLM, fmt.Errorf("reading: %w", &litellm.APIError{Method: "GET", Path: "/model/info", StatusCode: 401}), LiteLLMUnauthorized, "LITELLM_MASTER_KEY"},
		{"LiteLLM 403", Unknown, &litellm.APIError{StatusCode: 403}, LiteLLMUnauthorized, "LITELLM_MASTER_KEY"},
		{"API server 403", Kubernetes, apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "litellm", errors.New("no")), KubernetesForbidden, "the job ServiceAccount's Role"},
		{"API server 401", Kubernetes, apierrors.NewUnauthorized("token expired"), KubernetesForbidden, "ServiceAccount token"},
		{"untrusted LiteLLM certificate", LiteLLM, untrusted(t), UntrustedCertificate, "LITELLM_URL"},
		{"untrusted PostgreSQL certificate", Postgres, fmt.Errorf("connect: %w", untrusted(t)), UntrustedCertificate, "DATABASE_URL (sslrootcert)"},
		{"untrusted API server certificate", Kubernetes, untrusted(t), UntrustedCertificate, "API server's CA"},
		{"already classified", Unknown, fmt.Errorf("wrapped: %w", &Permanent{Reason: "X", Setting: "Y", Err: errors.New("z")}), "X", "Y"},

		// Transient or not known: the caller's own rules apply.
		{"nil", Unknown, nil, "", ""},
		{"connection refused", Postgres, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "", ""},
		{"admin shutdown", Postgres, &pgconn.PgError{Code: "57P01"}, "", ""},
		{"connection failure", Postgres, &pgconn.PgError{Code: "08006"}, "", ""},
		{"LiteLLM 503", LiteLLM, &litellm.APIError{StatusCode: 503}, "", ""},
		{"LiteLLM 429", LiteLLM, &litellm.APIError{StatusCode: 429}, "", ""},
		{"LiteLLM 400", LiteLLM, &litellm.APIError{StatusCode: 400}, "", ""},
		{"API server 500", Kubernetes, apierrors.NewInternalError(errors.New("etcd")), "", ""},
		{"API server not found", Kubernetes, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, "x"), "", ""},
		{"cancelled", Unknown, context.Canceled, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Classify(tt.from, tt.err)
			if tt.reason == "" {
				assert.Nil(t, p)
				assert.False(t, IsPermanent(tt.from, tt.err))
				return
			}
			require.NotNil(t, p)
			assert.Equal(t, tt.reason, p.Reason)
			assert.Contains(t, p.Setting, tt.setting)
			assert.True(t, errors.Is(p, tt.err) || errors.Is(tt.err, p), "the chain is kept")
			assert.Contains(t, p.Error(), tt.setting, "the message names the setting")
		})
	}
}
