package litellm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

const key = "sk-master-0123456789"

// recorded is what the fake server saw of one request.
type recorded struct {
	method, path, rawQuery, authz, body string
}

// fakeProxy answers every request with status and body and records the request.
func fakeProxy(t *testing.T, status int, body string) (*litellm.Client, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		*rec = recorded{method: r.Method, path: r.URL.EscapedPath(), rawQuery: r.URL.RawQuery, authz: r.Header.Get("Authorization"), body: string(b)}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	// The trailing slash must be tolerated.
	return litellm.New(srv.URL+"/", key), rec
}

func TestDeploymentID(t *testing.T) {
	tests := []struct {
		name string
		info map[string]any
		want string
	}{
		{"absent map", nil, ""},
		{"absent id", map[string]any{"db_model": true}, ""},
		{"null id", map[string]any{"id": nil}, ""},
		{"string", map[string]any{"id": "abc"}, "abc"},
		{"number", map[string]any{"id": float64(42)}, "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, litellm.Deployment{ModelInfo: tt.info}.ID())
		})
	}
}

func TestListModels(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		wantLen   int
		wantErr   string
		transient bool
	}{
		{name: "list", status: 200, body: `{"data":[{"model_name":"a","litellm_params":{"model":"openai/a","rpm":10},"model_info":{"id":"1","supports_vision":true}},{"model_name":"a","litellm_params":{},"model_info":{"id":"2"}}]}`, wantLen: 2},
		{name: "empty list", status: 200, body: `{"data":[]}`, wantLen: 0},
		{name: "no data field", status: 200, body: `{}`, wantLen: 0},
		{name: "empty proxy before v1.80.11", status: 500, body: `{"detail":{"error":"LLM Model List not loaded in. Make sure you passed models in your config.yaml"}}`, wantLen: 0},
		{name: "other 500", status: 500, body: `{"error":{"message":"boom"}}`, wantErr: `GET /model/info: status 500: {"error":{"message":"boom"}}`, transient: true},
		{name: "unauthorized", status: 401, body: `{"error":{"message":"Authentication Error"}}`, wantErr: "GET /model/info: status 401:"},
		{name: "not json", status: 200, body: `<html>`, wantErr: "GET /model/info: decode response:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeProxy(t, tt.status, tt.body)
			got, err := c.ListModels(context.Background())
			assert.Equal(t, "GET", rec.method)
			assert.Equal(t, "/model/info", rec.path)
			assert.Equal(t, "Bearer "+key, rec.authz)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Equal(t, tt.transient, litellm.IsTransient(err))
				return
			}
			require.NoError(t, err)
			require.NotNil(t, got)
			assert.Len(t, got, tt.wantLen)
		})
	}
}

func TestListModelsDecodesPlainTypes(t *testing.T) {
	c, _ := fakeProxy(t, 200, `{"data":[{"model_name":"a","litellm_params":{"tpm":100000,"api_base":"http://v"},"model_info":{"id":"x","max_tokens":8192,"supports_vision":false}}]}`)
	got, err := c.ListModels(context.Background())
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, float64(100000), got[0].LiteLLMParams["tpm"])
	assert.Equal(t, float64(8192), got[0].ModelInfo["max_tokens"])
	assert.Equal(t, false, got[0].ModelInfo["supports_vision"])
	assert.Equal(t, "x", got[0].ID())
}

func TestGetModel(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         string
		wantNotFound bool
		wantErr      bool
		transient    bool
	}{
		{name: "found", status: 200, body: `{"data":[{"model_name":"m","litellm_params":{},"model_info":{"id":"id 1"}}]}`},
		{name: "unknown id", status: 400, body: `{"detail":{"error":"Model id = id 1 not found on litellm proxy"}}`, wantNotFound: true},
		{name: "empty proxy", status: 500, body: `{"detail":{"error":"LLM Model List not loaded in."}}`, wantNotFound: true},
		{name: "404", status: 404, body: `{"detail":"Not Found"}`, wantNotFound: true},
		{name: "empty data", status: 200, body: `{"data":[]}`, wantNotFound: true},
		{name: "other id only", status: 200, body: `{"data":[{"model_name":"m","model_info":{"id":"other"}}]}`, wantNotFound: true},
		{name: "other 400", status: 400, body: `{"detail":{"error":"bad request"}}`, wantErr: true},
		{name: "server error", status: 503, body: `oops`, wantErr: true, transient: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeProxy(t, tt.status, tt.body)
			d, err := c.GetModel(context.Background(), "id 1")
			assert.Equal(t, "/model/info", rec.path)
			assert.Equal(t, "litellm_model_id=id+1", rec.rawQuery)
			switch {
			case tt.wantNotFound:
				require.ErrorIs(t, err, litellm.ErrNotFound)
				assert.False(t, litellm.IsTransient(err))
			case tt.wantErr:
				require.Error(t, err)
				assert.NotErrorIs(t, err, litellm.ErrNotFound)
				assert.Equal(t, tt.transient, litellm.IsTransient(err))
			default:
				require.NoError(t, err)
				assert.Equal(t, "id 1", d.ID())
				assert.Equal(t, "m", d.ModelName)
			}
		})
	}
}

func TestCreateModel(t *testing.T) {
	d := litellm.Deployment{
		ModelName:     "granite",
		LiteLLMParams: map[string]any{"model": "openai/granite", "api_key": "vllm-secret", "rpm": 10},
		ModelInfo:     map[string]any{"id": "gitops-granite", "supports_vision": true},
	}
	t.Run("ok", func(t *testing.T) {
		c, rec := fakeProxy(t, 200, `{"model_id":"gitops-granite"}`)
		require.NoError(t, c.CreateModel(context.Background(), d))
		assert.Equal(t, "POST", rec.method)
		assert.Equal(t, "/model/new", rec.path)
		assert.JSONEq(t, `{"model_name":"granite","litellm_params":{"model":"openai/granite","api_key":"vllm-secret","rpm":10},"model_info":{"id":"gitops-granite","supports_vision":true}}`, rec.body)
	})
	t.Run("500", func(t *testing.T) {
		c, _ := fakeProxy(t, 500, `{"error":{"message":"Failed to add model to db. Check your server logs...","type":"None","param":"None","code":"500"}}`+"\n")
		err := c.CreateModel(context.Background(), d)
		require.Error(t, err)
		assert.Equal(t, `POST /model/new: status 500: {"error":{"message":"Failed to add model to db. Check your server logs...","type":"None","param":"None","code":"500"}}`, err.Error())
		var apiErr *litellm.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, 500, apiErr.StatusCode)
		assert.True(t, litellm.IsTransient(err))
	})
	t.Run("unencodable", func(t *testing.T) {
		c, _ := fakeProxy(t, 200, `{}`)
		err := c.CreateModel(context.Background(), litellm.Deployment{ModelName: "x", LiteLLMParams: map[string]any{"bad": make(chan int)}})
		require.ErrorContains(t, err, "encode request")
		assert.False(t, litellm.IsTransient(err))
	})
}

func TestUpdateModel(t *testing.T) {
	tests := []struct {
		name         string
		d            litellm.Deployment
		status       int
		wantBody     string
		wantNotFound bool
		wantErr      bool
	}{
		{name: "full", d: litellm.Deployment{ModelName: "n", LiteLLMParams: map[string]any{"rpm": 5}, ModelInfo: map[string]any{"max_tokens": 10}}, status: 200,
			wantBody: `{"model_name":"n","litellm_params":{"rpm":5},"model_info":{"max_tokens":10}}`},
		{name: "params only", d: litellm.Deployment{LiteLLMParams: map[string]any{"rpm": 5}}, status: 200, wantBody: `{"litellm_params":{"rpm":5}}`},
		{name: "unknown", d: litellm.Deployment{ModelName: "n"}, status: 404, wantBody: `{"model_name":"n"}`, wantNotFound: true},
		{name: "no db", d: litellm.Deployment{ModelName: "n"}, status: 500, wantBody: `{"model_name":"n"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeProxy(t, tt.status, `{}`)
			err := c.UpdateModel(context.Background(), "a/b c", tt.d)
			assert.Equal(t, "PATCH", rec.method)
			assert.Equal(t, "/model/a%2Fb%20c/update", rec.path)
			assert.JSONEq(t, tt.wantBody, rec.body)
			switch {
			case tt.wantNotFound:
				require.ErrorIs(t, err, litellm.ErrNotFound)
			case tt.wantErr:
				require.Error(t, err)
				assert.NotErrorIs(t, err, litellm.ErrNotFound)
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestDeleteModel(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		body         string
		wantNotFound bool
		wantErr      bool
	}{
		{name: "ok", status: 200, body: `{"message":"Model: x deleted successfully"}`},
		{name: "unknown is a 400", status: 400, body: `{"error":{"message":"Model with id=x not found in db","code":"400"}}`, wantNotFound: true},
		{name: "404", status: 404, body: `{}`, wantNotFound: true},
		{name: "other 400", status: 400, body: `{"error":{"message":"bad"}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeProxy(t, tt.status, tt.body)
			err := c.DeleteModel(context.Background(), "x")
			assert.Equal(t, "POST", rec.method)
			assert.Equal(t, "/model/delete", rec.path)
			assert.JSONEq(t, `{"id":"x"}`, rec.body)
			switch {
			case tt.wantNotFound:
				require.ErrorIs(t, err, litellm.ErrNotFound)
				assert.Contains(t, err.Error(), "POST /model/delete: status")
			case tt.wantErr:
				require.Error(t, err)
				assert.NotErrorIs(t, err, litellm.ErrNotFound)
			default:
				require.NoError(t, err)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		want      litellm.Readiness
		connected bool
		wantErr   bool
	}{
		{name: "v1.74.7", status: 200, body: `{"status":"connected","db":"connected","cache":null,"litellm_version":"1.74.7"}`, want: litellm.Readiness{Status: "connected", DB: "connected"}, connected: true},
		{name: "newer", status: 200, body: `{"status":"healthy","db":"connected"}`, want: litellm.Readiness{Status: "healthy", DB: "connected"}, connected: true},
		{name: "no db", status: 200, body: `{"status":"healthy","db":"Not connected"}`, want: litellm.Readiness{Status: "healthy", DB: "Not connected"}},
		{name: "db failing", status: 503, body: `{"detail":"Service Unhealthy"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeProxy(t, tt.status, tt.body)
			got, err := c.Readiness(context.Background())
			assert.Equal(t, "/health/readiness", rec.path)
			assert.Empty(t, rec.authz, "readiness needs no key and must not send it")
			if tt.wantErr {
				require.Error(t, err)
				assert.True(t, litellm.IsTransient(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.connected, got.DBConnected())
		})
	}
}

func TestErrorsNeverContainTheMasterKey(t *testing.T) {
	const oddKey = `sk-"quoted"/key`
	tests := []struct {
		name, key, body string
	}{
		{"echoed key", key, `{"error":{"message":"Malformed API Key passed in. Ensure Key has Bearer prefix. Passed in: ` + key + `"}}`},
		{"json-escaped key", oddKey, `{"error":{"message":"Passed in: sk-\"quoted\"/key"}}`},
		{"key at the trim limit", key, strings.Repeat("x", 505) + key + strings.Repeat("y", 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer srv.Close()
			err := litellm.New(srv.URL, tt.key).CreateModel(context.Background(), litellm.Deployment{ModelName: "m"})
			require.Error(t, err)
			assert.NotContains(t, err.Error(), tt.key)
			assert.NotContains(t, err.Error(), tt.key[:5], "not even a part of it")
			assert.NotContains(t, err.Error(), `sk-\"quoted`)
			var apiErr *litellm.APIError
			require.ErrorAs(t, err, &apiErr)
			assert.NotContains(t, apiErr.Body, tt.key)
			assert.LessOrEqual(t, len(apiErr.Body), 600)
		})
	}
	t.Run("redacted marker", func(t *testing.T) {
		c, _ := fakeProxy(t, 401, `{"error":{"message":"Passed in: `+key+`"}}`)
		err := c.CreateModel(context.Background(), litellm.Deployment{ModelName: "m"})
		assert.EqualError(t, err, `POST /model/new: status 401: {"error":{"message":"Passed in: [REDACTED]"}}`)
	})
}

// A proxy may echo the request, and with it a model's API key: those are redacted too.
func TestErrorsNeverContainModelAPIKeys(t *testing.T) {
	const modelKey = "vllm-token-123"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	c := litellm.New(srv.URL, key, litellm.WithRedacted(modelKey, ""))
	err := c.CreateModel(context.Background(), litellm.Deployment{ModelName: "m", LiteLLMParams: map[string]any{"api_key": modelKey}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), modelKey)
	assert.Contains(t, err.Error(), `"api_key":"[REDACTED]"`)
}

func TestLongErrorBodyIsTrimmed(t *testing.T) {
	c, _ := fakeProxy(t, 500, strings.Repeat("é", 1000))
	err := c.CreateModel(context.Background(), litellm.Deployment{ModelName: "m"})
	var apiErr *litellm.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.LessOrEqual(t, len(apiErr.Body), 512+len("...(truncated)"))
	assert.True(t, strings.HasSuffix(apiErr.Body, "...(truncated)"))
	assert.True(t, strings.HasPrefix(apiErr.Body, "éé"))
	assert.NotContains(t, apiErr.Body, "\uFFFD")
}

func TestIsTransient(t *testing.T) {
	apiErr := func(status int) error {
		return fmt.Errorf("wrapped: %w", &litellm.APIError{Method: "GET", Path: "/model/info", StatusCode: status})
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"500", apiErr(500), true},
		{"502", apiErr(502), true},
		{"503", apiErr(503), true},
		{"429", apiErr(429), true},
		{"400", apiErr(400), false},
		{"401", apiErr(401), false},
		{"404", apiErr(404), false},
		{"not found", fmt.Errorf("x: %w", litellm.ErrNotFound), false},
		{"not found wrapping a 500", fmt.Errorf("x: %w: %w", litellm.ErrNotFound, apiErr(500)), false},
		{"canceled", context.Canceled, false},
		{"deadline", fmt.Errorf("GET /model/info: %w", context.DeadlineExceeded), false},
		{"eof", io.EOF, true},
		{"unexpected eof", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"dns", &net.DNSError{Err: "no such host", Name: "litellm", IsTemporary: true}, true},
		{"plain", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, litellm.IsTransient(tt.err))
		})
	}
}

// TestTransportErrors checks the classification of errors the client really produces.
func TestTransportErrors(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}
	hangUp := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_, _ = io.WriteString(conn, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"data\":")
			_ = conn.Close()
		}
	}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		closed  bool
		timeout time.Duration // of the http.Client
		ctxTime time.Duration // of the caller's context
		cancel  bool
		want    bool
	}{
		{name: "connection refused", closed: true, want: true},
		{name: "client timeout", handler: slow, timeout: 50 * time.Millisecond, want: true},
		{name: "truncated body", handler: hangUp, want: true},
		{name: "caller deadline", handler: slow, ctxTime: 50 * time.Millisecond, want: false},
		{name: "caller cancel", handler: slow, cancel: true, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			if tt.closed {
				srv.Close()
			} else {
				defer srv.Close()
			}
			hc := &http.Client{Timeout: tt.timeout}
			c := litellm.New(srv.URL, key, litellm.WithHTTPClient(hc))
			ctx := context.Background()
			if tt.ctxTime > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTime)
				defer cancel()
			}
			if tt.cancel {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			_, err := c.ListModels(ctx)
			require.Error(t, err)
			assert.Equal(t, tt.want, litellm.IsTransient(err), "error: %v", err)
			assert.True(t, strings.HasPrefix(err.Error(), "GET /model/info: "), err.Error())
			assert.NotContains(t, err.Error(), key)
		})
	}
}
