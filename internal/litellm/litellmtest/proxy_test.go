package litellmtest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
)

const key = "sk-test-master"

func setup(t *testing.T, opts litellmtest.Options) (*litellmtest.Proxy, *litellm.Client, string) {
	t.Helper()
	if opts.MasterKey == "" {
		opts.MasterKey = key
	}
	p, srv := litellmtest.NewTestServer(t, opts)
	return p, litellm.New(srv.URL, key), srv.URL
}

// call sends a raw request and returns the status and the decoded JSON body.
func call(t *testing.T, base, method, path string, headers map[string]string, body string) (int, any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var v any
	require.NoError(t, json.Unmarshal(raw, &v), "body %q", raw)
	return resp.StatusCode, v, resp.Header
}

func bearer() map[string]string { return map[string]string{"Authorization": "Bearer " + key} }

func granite(id string) litellm.Deployment {
	info := map[string]any{"db_model": true, "max_tokens": 8192.0, "supports_vision": false}
	if id != "" {
		info["id"] = id
	}
	return litellm.Deployment{
		ModelName: "granite-3-8b",
		LiteLLMParams: map[string]any{
			"model": "openai/granite", "api_base": "http://vllm:8000/v1", "api_key": "vllm-secret",
			"custom_llm_provider": "openai", "tpm": 100000.0, "rpm": 60.0,
		},
		ModelInfo: info,
	}
}

func TestAuth(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		message string
	}{
		{"bearer", map[string]string{"Authorization": "Bearer " + key}, 200, ""},
		{"x-litellm-api-key", map[string]string{"x-litellm-api-key": key}, 200, ""},
		{"x-litellm-api-key wins over a wrong bearer", map[string]string{"x-litellm-api-key": key, "Authorization": "Bearer nope"}, 200, ""},
		{"x-litellm-api-key wins over a right bearer", map[string]string{"x-litellm-api-key": "nope", "Authorization": "Bearer " + key}, 401, "Invalid proxy server token"},
		{"missing", nil, 401, "No api key passed in"},
		{"wrong", map[string]string{"Authorization": "Bearer sk-wrong"}, 401, "Invalid proxy server token"},
		{"no Bearer prefix", map[string]string{"Authorization": key}, 401, "Malformed API Key"},
	}
	_, _, base := setup(t, litellmtest.Options{Version: litellmtest.Version181})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := call(t, base, "GET", "/model/info", tt.headers, "")
			assert.Equal(t, tt.status, status)
			if tt.message != "" {
				e := body.(map[string]any)["error"].(map[string]any)
				assert.Contains(t, e["message"], tt.message)
				assert.Equal(t, "auth_error", e["type"])
				assert.Equal(t, "None", e["param"])
				assert.Equal(t, "401", e["code"])
			}
		})
	}
}

func TestMalformedKeyIsEchoedAndRedactedByTheClient(t *testing.T) {
	_, _, base := setup(t, litellmtest.Options{})
	_, body, _ := call(t, base, "GET", "/model/info", map[string]string{"Authorization": key}, "")
	assert.Contains(t, fmt.Sprint(body), key, "LiteLLM echoes a malformed key")
}

func TestHealth(t *testing.T) {
	tests := []struct {
		name    string
		opts    litellmtest.Options
		path    string
		status  int
		want    map[string]any // subset of the body
		wantStr string
	}{
		{name: "liveliness", path: "/health/liveliness", status: 200, wantStr: "I'm alive!"},
		{name: "liveness", path: "/health/liveness", status: 200, wantStr: "I'm alive!"},
		{name: "readiness v1.74.7", path: "/health/readiness", status: 200, want: map[string]any{"status": "connected", "db": "connected", "litellm_version": "1.74.7"}},
		{name: "readiness v1.81", opts: litellmtest.Options{Version: "1.81"}, path: "/health/readiness", status: 200, want: map[string]any{"status": "healthy", "db": "connected"}},
		{name: "readiness no db", opts: litellmtest.Options{DB: litellmtest.DBNone}, path: "/health/readiness", status: 200, want: map[string]any{"status": "healthy", "db": "Not connected"}},
		{name: "readiness db failing", opts: litellmtest.Options{DB: litellmtest.DBFailing}, path: "/health/readiness", status: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, base := setup(t, tt.opts)
			status, body, _ := call(t, base, "GET", tt.path, nil, "")
			assert.Equal(t, tt.status, status)
			if tt.wantStr != "" {
				assert.Equal(t, tt.wantStr, body)
			}
			for k, v := range tt.want {
				assert.Equal(t, v, body.(map[string]any)[k], k)
			}
		})
	}
}

func TestReadinessThroughClient(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{})
	r, err := c.Readiness(context.Background())
	require.NoError(t, err)
	assert.True(t, r.DBConnected())

	p.SetDB(litellmtest.DBNone)
	r, err = c.Readiness(context.Background())
	require.NoError(t, err)
	assert.False(t, r.DBConnected())

	p.SetDB(litellmtest.DBFailing)
	_, err = c.Readiness(context.Background())
	require.Error(t, err)
	assert.True(t, litellm.IsTransient(err))
}

func TestCreate(t *testing.T) {
	p, c, base := setup(t, litellmtest.Options{})
	ctx := context.Background()

	// Client-chosen id; the answer is the stored row with encrypted strings.
	status, body, _ := call(t, base, "POST", "/model/new", bearer(), mustJSON(t, granite("gitops-granite")))
	require.Equal(t, 200, status)
	row := body.(map[string]any)
	assert.Equal(t, "gitops-granite", row["model_id"])
	assert.Equal(t, "gitops-granite", row["model_info"].(map[string]any)["id"])
	params := row["litellm_params"].(map[string]any)
	for _, k := range []string{"model", "api_base", "api_key"} {
		assert.NotEqual(t, granite("").LiteLLMParams[k], params[k], "%s must look encrypted", k)
		assert.NotContains(t, params[k], "vllm", k)
	}
	assert.Equal(t, 60.0, params["rpm"], "non-strings are stored as they are")
	for _, k := range []string{"created_at", "updated_at", "created_by", "updated_by"} {
		assert.Contains(t, row, k)
	}

	// The same id again: the key conflict looks like any failure.
	status, body, _ = call(t, base, "POST", "/model/new", bearer(), mustJSON(t, granite("gitops-granite")))
	assert.Equal(t, 500, status)
	assert.Equal(t, map[string]any{"error": map[string]any{
		"message": "Failed to add model to db. Check your server logs for more details.", "type": "None", "param": "None", "code": "500",
	}}, body)
	err := c.CreateModel(ctx, granite("gitops-granite"))
	require.Error(t, err)
	assert.True(t, litellm.IsTransient(err), "a conflict is indistinguishable from a transient 500")

	// Without an id the proxy generates one, and model_name is not unique.
	require.NoError(t, c.CreateModel(ctx, granite("")))
	require.NoError(t, c.CreateModel(ctx, granite("")))
	rows := p.Deployments()
	require.Len(t, rows, 3)
	ids := map[string]bool{}
	for _, d := range rows {
		assert.Equal(t, "granite-3-8b", d.ModelName)
		assert.Equal(t, "vllm-secret", d.LiteLLMParams["api_key"], "stored in clear for inspection")
		ids[d.ID()] = true
	}
	assert.Len(t, ids, 3)
	for id := range ids {
		if id != "gitops-granite" {
			assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, id)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	tests := []struct {
		name, body string
	}{
		{"not json", `{`},
		{"no model_name", `{"litellm_params":{"model":"openai/x"}}`},
		{"no litellm_params.model", `{"model_name":"x","litellm_params":{}}`},
		{"numeric id", `{"model_name":"x","litellm_params":{"model":"openai/x"},"model_info":{"id":1}}`},
	}
	p, _, base := setup(t, litellmtest.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, _ := call(t, base, "POST", "/model/new", bearer(), tt.body)
			assert.Equal(t, 422, status)
		})
	}
	assert.Empty(t, p.Deployments())
}

func TestModelInfo(t *testing.T) {
	p, c, base := setup(t, litellmtest.Options{})
	ctx := context.Background()
	p.Seed(granite("a"))

	for _, path := range []string{"/model/info", "/v1/model/info"} {
		t.Run(path, func(t *testing.T) {
			status, body, _ := call(t, base, "GET", path, bearer(), "")
			require.Equal(t, 200, status)
			data := body.(map[string]any)["data"].([]any)
			require.Len(t, data, 1)
		})
	}

	got, err := c.GetModel(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "granite-3-8b", got.ModelName)
	assert.NotContains(t, got.LiteLLMParams, "api_key", "credentials are removed on reads")
	assert.Equal(t, "http://vllm:8000/v1", got.LiteLLMParams["api_base"], "api_base is returned in clear")
	assert.Equal(t, "openai/granite", got.LiteLLMParams["model"])
	assert.Equal(t, false, got.LiteLLMParams["use_in_pass_through"], "proxy defaults are added")
	assert.Equal(t, "openai", got.ModelInfo["litellm_provider"])
	assert.Equal(t, "chat", got.ModelInfo["mode"])
	assert.Equal(t, true, got.ModelInfo["db_model"])
	assert.Equal(t, 8192.0, got.ModelInfo["max_tokens"])
	assert.Equal(t, false, got.ModelInfo["supports_vision"])

	list, err := c.ListModels(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, got, list[0])

	status, body, _ := call(t, base, "GET", "/model/info?litellm_model_id=zzz", bearer(), "")
	assert.Equal(t, 400, status)
	assert.Equal(t, map[string]any{"detail": map[string]any{"error": "Model id = zzz not found on litellm proxy"}}, body)
	_, err = c.GetModel(ctx, "zzz")
	require.ErrorIs(t, err, litellm.ErrNotFound)
}

func TestEmptyProxy(t *testing.T) {
	tests := []struct {
		version    string
		listStatus int
	}{
		{litellmtest.Version1747, 500},
		{litellmtest.Version181, 200},
		{"1.81.3", 200},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			_, c, base := setup(t, litellmtest.Options{Version: tt.version})
			status, body, _ := call(t, base, "GET", "/model/info", bearer(), "")
			assert.Equal(t, tt.listStatus, status)
			if status == 500 {
				assert.Contains(t, body.(map[string]any)["detail"].(map[string]any)["error"], "LLM Model List not loaded")
			}
			list, err := c.ListModels(context.Background())
			require.NoError(t, err)
			assert.NotNil(t, list)
			assert.Empty(t, list)
			_, err = c.GetModel(context.Background(), "x")
			require.ErrorIs(t, err, litellm.ErrNotFound)
		})
	}
}

func TestModelInfoV2(t *testing.T) {
	seed := func(p *litellmtest.Proxy, n int) {
		for i := range n {
			d := granite(fmt.Sprintf("m-%03d", i))
			p.Seed(d)
		}
	}
	tests := []struct {
		name, version, query string
		seed                 int
		status               int
		wantLen              int
		want                 map[string]any
	}{
		{name: "default page", version: "1.81", seed: 120, status: 200, wantLen: 50,
			want: map[string]any{"total_count": 120.0, "current_page": 1.0, "total_pages": 3.0, "size": 50.0}},
		{name: "last page", version: "1.81", query: "?page=3", seed: 120, status: 200, wantLen: 20,
			want: map[string]any{"current_page": 3.0}},
		{name: "beyond", version: "1.81", query: "?page=4", seed: 120, status: 200, wantLen: 0},
		{name: "size", version: "1.81", query: "?page=2&size=7", seed: 10, status: 200, wantLen: 3,
			want: map[string]any{"total_pages": 2.0, "size": 7.0}},
		{name: "empty", version: "1.81", status: 200, wantLen: 0, want: map[string]any{"total_count": 0.0, "total_pages": 0.0}},
		{name: "bad page", version: "1.81", query: "?page=0", status: 422},
		{name: "v1.74.7 not paginated", version: "1.74.7", query: "?page=2", seed: 60, status: 200, wantLen: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, base := setup(t, litellmtest.Options{Version: tt.version})
			seed(p, tt.seed)
			status, body, _ := call(t, base, "GET", "/v2/model/info"+tt.query, bearer(), "")
			require.Equal(t, tt.status, status)
			if status != 200 {
				return
			}
			m := body.(map[string]any)
			assert.Len(t, m["data"], tt.wantLen)
			for k, v := range tt.want {
				assert.Equal(t, v, m[k], k)
			}
			if tt.version == "1.74.7" {
				assert.NotContains(t, m, "total_pages")
			}
		})
	}
}

func TestPatch(t *testing.T) {
	p, c, base := setup(t, litellmtest.Options{})
	ctx := context.Background()
	p.Seed(granite("a"))

	require.NoError(t, c.UpdateModel(ctx, "a", litellm.Deployment{
		ModelName:     "granite-renamed",
		LiteLLMParams: map[string]any{"rpm": 120.0},
		ModelInfo:     map[string]any{"supports_vision": true, "id": "ignored"},
	}))
	d := p.Deployments()[0]
	assert.Equal(t, "granite-renamed", d.ModelName)
	assert.Equal(t, 120.0, d.LiteLLMParams["rpm"])
	assert.Equal(t, "vllm-secret", d.LiteLLMParams["api_key"], "keys not in the patch stay")
	assert.Equal(t, 100000.0, d.LiteLLMParams["tpm"])
	assert.Equal(t, true, d.ModelInfo["supports_vision"])
	assert.Equal(t, 8192.0, d.ModelInfo["max_tokens"])
	assert.Equal(t, "a", d.ID(), "the id never changes")

	// A null leaves the key as it was; an empty name keeps the name.
	status, _, _ := call(t, base, "PATCH", "/model/a/update", bearer(), `{"model_name":"","litellm_params":{"rpm":null}}`)
	require.Equal(t, 200, status)
	d = p.Deployments()[0]
	assert.Equal(t, "granite-renamed", d.ModelName)
	assert.Equal(t, 120.0, d.LiteLLMParams["rpm"])

	status, body, _ := call(t, base, "PATCH", "/model/nope/update", bearer(), `{"model_name":"x"}`)
	assert.Equal(t, 404, status)
	assert.Equal(t, "not_found_error", body.(map[string]any)["error"].(map[string]any)["type"])
	require.ErrorIs(t, c.UpdateModel(ctx, "nope", litellm.Deployment{ModelName: "x"}), litellm.ErrNotFound)

	status, _, _ = call(t, base, "POST", "/model/a/update", bearer(), `{}`)
	assert.Equal(t, 405, status)
}

func TestPostModelUpdate(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		status  int
		message string
	}{
		{"merges only litellm_params", `{"model_name":"ignored","litellm_params":{"rpm":1},"model_info":{"id":"a","supports_vision":true}}`, 200, ""},
		{"needs model_info.id", `{"litellm_params":{"rpm":1}}`, 400, "model_info.id is required"},
		{"unknown id", `{"litellm_params":{"rpm":1},"model_info":{"id":"zzz"}}`, 400, "Authentication Error, model not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, base := setup(t, litellmtest.Options{})
			p.Seed(granite("a"))
			status, body, _ := call(t, base, "POST", "/model/update", bearer(), tt.body)
			require.Equal(t, tt.status, status)
			d := p.Deployments()[0]
			if tt.status == 200 {
				assert.Equal(t, 1.0, d.LiteLLMParams["rpm"])
				assert.Equal(t, "granite-3-8b", d.ModelName)
				assert.Equal(t, false, d.ModelInfo["supports_vision"])
				return
			}
			assert.Contains(t, body.(map[string]any)["error"].(map[string]any)["message"], tt.message)
			assert.Equal(t, 60.0, d.LiteLLMParams["rpm"])
		})
	}
}

func TestDelete(t *testing.T) {
	p, c, base := setup(t, litellmtest.Options{})
	p.Seed(granite("a"), granite("b"))

	status, body, _ := call(t, base, "POST", "/model/delete", bearer(), `{"id":"a"}`)
	require.Equal(t, 200, status)
	assert.Equal(t, map[string]any{"message": "Model: a deleted successfully"}, body)

	status, body, _ = call(t, base, "POST", "/model/delete", bearer(), `{"id":"a"}`)
	assert.Equal(t, 400, status, "LiteLLM answers 400, not 404")
	assert.Equal(t, "Model with id=a not found in db", body.(map[string]any)["error"].(map[string]any)["message"])

	require.ErrorIs(t, c.DeleteModel(context.Background(), "a"), litellm.ErrNotFound)
	require.NoError(t, c.DeleteModel(context.Background(), "b"))
	assert.Empty(t, p.Deployments())
}

func TestDatabaseModes(t *testing.T) {
	type check struct {
		method, path, body string
		status             int
		message            string // in error.message or detail.error
	}
	create := `{"model_name":"x","litellm_params":{"model":"openai/x"},"model_info":{"id":"new"}}`
	tests := []struct {
		name   string
		opts   litellmtest.Options
		checks []check
	}{
		{name: "no database", opts: litellmtest.Options{DB: litellmtest.DBNone}, checks: []check{
			{"POST", "/model/new", create, 500, "No DB Connected. Here's how to do it"},
			{"PATCH", "/model/a/update", `{"model_name":"y"}`, 500, "DB not connected. See"},
			{"POST", "/model/update", `{"litellm_params":{"rpm":1},"model_info":{"id":"a"}}`, 500, "No DB Connected"},
			{"POST", "/model/delete", `{"id":"a"}`, 500, "No DB Connected"},
			{"GET", "/model/info", "", 200, ""},
		}},
		{name: "STORE_MODEL_IN_DB off", opts: litellmtest.Options{DisableStoreModelInDB: true}, checks: []check{
			{"POST", "/model/new", create, 500, "Set `'STORE_MODEL_IN_DB='True'` in your env to enable this feature."},
			{"PATCH", "/model/a/update", `{"model_name":"y"}`, 500, "STORE_MODEL_IN_DB"},
			{"POST", "/model/delete", `{"id":"a"}`, 500, "STORE_MODEL_IN_DB"},
		}},
		{name: "database failing", opts: litellmtest.Options{DB: litellmtest.DBFailing}, checks: []check{
			{"POST", "/model/new", create, 500, "Failed to add model to db"},
			{"PATCH", "/model/a/update", `{"model_name":"y"}`, 500, "reach database"},
			{"POST", "/model/delete", `{"id":"a"}`, 500, "reach database"},
			{"GET", "/model/info", "", 200, ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, base := setup(t, tt.opts)
			p.Seed(granite("a"))
			for _, ch := range tt.checks {
				status, body, _ := call(t, base, ch.method, ch.path, bearer(), ch.body)
				assert.Equal(t, ch.status, status, "%s %s", ch.method, ch.path)
				if ch.message != "" {
					assert.Contains(t, errorText(body), ch.message, "%s %s", ch.method, ch.path)
				}
			}
			assert.Len(t, p.Deployments(), 1, "nothing was written")
		})
	}
}

func TestSetStoreModelInDB(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{})
	p.SetStoreModelInDB(false)
	require.Error(t, c.CreateModel(context.Background(), granite("a")))
	p.SetStoreModelInDB(true)
	require.NoError(t, c.CreateModel(context.Background(), granite("a")))
}

func TestSaveOnCreateFailure(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{})
	ctx := context.Background()
	p.SaveOnCreateFailure(1)

	err := c.CreateModel(ctx, granite("a"))
	var apiErr *litellm.APIError
	require.ErrorAs(t, err, &apiErr)
	assert.Equal(t, 500, apiErr.StatusCode)
	_, err = c.GetModel(ctx, "a")
	require.NoError(t, err, "the row was saved despite the 500")

	require.NoError(t, c.CreateModel(ctx, granite("b")), "only the next N creates are affected")
	assert.Len(t, p.Deployments(), 2)
}

func TestReadLagByReads(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{Version: "1.81", ReadLagReads: 2})
	ctx := context.Background()
	p.Seed(granite("old"))

	require.NoError(t, c.CreateModel(ctx, granite("new")))
	for i := range 2 {
		_, err := c.GetModel(ctx, "new")
		require.ErrorIs(t, err, litellm.ErrNotFound, "read %d is served by a lagging replica", i)
	}
	_, err := c.GetModel(ctx, "new")
	require.NoError(t, err)

	// Writes during the window keep the old view: the replica has not polled since.
	require.NoError(t, c.DeleteModel(ctx, "old"))
	require.NoError(t, c.UpdateModel(ctx, "new", litellm.Deployment{LiteLLMParams: map[string]any{"rpm": 1.0}}))
	list, err := c.ListModels(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2, "still sees the deleted model")
	list, err = c.ListModels(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	list, err = c.ListModels(ctx)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, 1.0, list[0].LiteLLMParams["rpm"])
}

func TestReadLagByTime(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{})
	ctx := context.Background()
	p.SetReadLag(50*time.Millisecond, 0)

	require.NoError(t, c.CreateModel(ctx, granite("a")))
	list, err := c.ListModels(ctx)
	require.NoError(t, err)
	assert.Empty(t, list, "v1.74.7's empty-proxy 500, still an empty list")
	assert.Len(t, p.Deployments(), 1, "the write itself is done")

	require.Eventually(t, func() bool {
		_, err := c.GetModel(ctx, "a")
		return err == nil
	}, time.Second, 10*time.Millisecond)
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name       string
		fault      litellmtest.Fault
		method     string
		path       string
		wantStatus []int // statuses of successive identical requests
		retryAfter string
	}{
		{name: "next two requests", fault: litellmtest.Fault{Status: 503, Times: 2}, method: "GET", path: "/model/info", wantStatus: []int{503, 503, 200}},
		{name: "429 with Retry-After", fault: litellmtest.Fault{Status: 429}, method: "GET", path: "/model/info", wantStatus: []int{429, 200}, retryAfter: "1"},
		{name: "explicit Retry-After", fault: litellmtest.Fault{Status: 429, RetryAfter: 2500 * time.Millisecond}, method: "GET", path: "/model/info", wantStatus: []int{429}, retryAfter: "3"},
		{name: "matching method and path", fault: litellmtest.Fault{Method: "POST", Path: "/model/delete", Status: 500}, method: "GET", path: "/model/info", wantStatus: []int{200, 200}},
		{name: "health too", fault: litellmtest.Fault{Status: 502}, method: "GET", path: "/health/readiness", wantStatus: []int{502, 200}},
		{name: "default status", fault: litellmtest.Fault{}, method: "GET", path: "/model/info", wantStatus: []int{500, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, base := setup(t, litellmtest.Options{Version: "1.81"})
			p.InjectFault(tt.fault)
			for i, want := range tt.wantStatus {
				status, _, h := call(t, base, tt.method, tt.path, bearer(), "")
				assert.Equal(t, want, status, "request %d", i)
				if i == 0 && tt.retryAfter != "" {
					assert.Equal(t, tt.retryAfter, h.Get("Retry-After"))
				}
			}
		})
	}
}

func TestFaultThroughClientAndCustomBody(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{})
	ctx := context.Background()
	p.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 502, Body: `{"upstream":"gone"}`})
	p.FailNext(1, 503)

	_, err := c.Readiness(ctx)
	require.Error(t, err)
	assert.True(t, litellm.IsTransient(err))

	err = c.CreateModel(ctx, granite("a"))
	require.EqualError(t, err, `POST /model/new: status 502: {"upstream":"gone"}`)
	assert.True(t, litellm.IsTransient(err))
	assert.Empty(t, p.Deployments(), "a fault answers before the proxy acts")
	require.NoError(t, c.CreateModel(ctx, granite("a")))

	p.FailNext(5, 500)
	p.ClearFaults()
	require.NoError(t, c.DeleteModel(ctx, "a"))
}

func TestDelays(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{WriteDelay: 60 * time.Millisecond})
	ctx := context.Background()

	start := time.Now()
	require.NoError(t, c.CreateModel(ctx, granite("a")))
	assert.GreaterOrEqual(t, time.Since(start), 60*time.Millisecond, "writes are slow")

	p.SetWriteDelay(0)
	p.SetDelay(40 * time.Millisecond)
	start = time.Now()
	_, err := c.Readiness(ctx)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), 40*time.Millisecond)

	// A caller that gives up during the delay gets its own deadline, not a transient error.
	p.SetDelay(time.Second)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	_, err = c.ListModels(short)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, litellm.IsTransient(err))
}

func TestWriteCompletesAfterCallerGaveUp(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{WriteDelay: 80 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	require.Error(t, c.CreateModel(ctx, granite("a")))
	require.Eventually(t, func() bool { return len(p.Deployments()) == 1 }, time.Second, 10*time.Millisecond)
}

func TestCounters(t *testing.T) {
	p, c, base := setup(t, litellmtest.Options{})
	ctx := context.Background()

	require.NoError(t, c.CreateModel(ctx, granite("a")))
	_, _ = c.ListModels(ctx)
	_, _ = c.GetModel(ctx, "a")
	require.NoError(t, c.UpdateModel(ctx, "a", litellm.Deployment{ModelName: "b"}))
	_, _, _ = call(t, base, "POST", "/model/update", bearer(), `{"litellm_params":{"rpm":1},"model_info":{"id":"a"}}`)
	require.NoError(t, c.DeleteModel(ctx, "a"))
	require.ErrorIs(t, c.DeleteModel(ctx, "a"), litellm.ErrNotFound)
	_, _ = c.Readiness(ctx)
	_, _, _ = call(t, base, "GET", "/model/info", nil, "") // unauthorized still counts

	assert.Equal(t, 9, p.Requests())
	assert.Equal(t, 5, p.Writes(), "failed writes count too")
	assert.Equal(t, 3, p.Count("GET", "/model/info"), "queries are not part of the key")
	assert.Equal(t, 1, p.Count("PATCH", "/model/a/update"))
	assert.Equal(t, 2, p.Count("POST", "/model/delete"))
	assert.Equal(t, 1, p.Counts()["GET /health/readiness"])

	p.Reset()
	assert.Zero(t, p.Requests())
	assert.Zero(t, p.Writes())
	assert.Zero(t, p.Count("GET", "/model/info"))
}

func TestSeedRunbookLoopTwice(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{})
	d := granite("")
	p.Seed(d, d)
	list, err := c.ListModels(context.Background())
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, list[0].ModelName, list[1].ModelName)
	assert.NotEqual(t, list[0].ID(), list[1].ID())
	assert.Equal(t, 1, p.Requests(), "seeding is not a request")
}

func TestSeedNormalizesTypes(t *testing.T) {
	p, _, _ := setup(t, litellmtest.Options{})
	p.Seed(litellm.Deployment{ModelName: "m", LiteLLMParams: map[string]any{"model": "openai/m", "rpm": 5}, ModelInfo: map[string]any{"id": "m"}})
	assert.Equal(t, 5.0, p.Deployments()[0].LiteLLMParams["rpm"])
}

func TestPatchHidesConfigModelsInV1747(t *testing.T) {
	config := litellm.Deployment{ModelName: "from-config", LiteLLMParams: map[string]any{"model": "openai/c"}, ModelInfo: map[string]any{"id": "cfg", "db_model": false}}
	tests := []struct {
		version string
		want    int
	}{
		{litellmtest.Version1747, 1},
		{litellmtest.Version181, 2},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			p, c, _ := setup(t, litellmtest.Options{Version: tt.version})
			ctx := context.Background()
			p.Seed(config, granite("a"))

			require.ErrorIs(t, c.DeleteModel(ctx, "cfg"), litellm.ErrNotFound, "config models are not in the database")
			require.ErrorIs(t, c.UpdateModel(ctx, "cfg", litellm.Deployment{ModelName: "x"}), litellm.ErrNotFound)

			require.NoError(t, c.UpdateModel(ctx, "a", litellm.Deployment{ModelName: "renamed"}))
			list, err := c.ListModels(ctx)
			require.NoError(t, err)
			assert.Len(t, list, tt.want)

			p.Restart()
			list, err = c.ListModels(ctx)
			require.NoError(t, err)
			assert.Len(t, list, 2)
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	p, c, _ := setup(t, litellmtest.Options{Version: "1.81", ReadLagReads: 1})
	ctx := context.Background()
	p.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 503, Times: 5})

	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for i := range 20 {
		wg.Go(func() {
			err := c.CreateModel(ctx, granite(fmt.Sprintf("m-%d", i)))
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
			_, _ = c.ListModels(ctx)
			_ = p.Deployments()
			_ = p.Count("GET", "/model/info")
		})
	}
	wg.Wait()
	assert.Equal(t, 5, failed)
	assert.Len(t, p.Deployments(), 15)
	assert.Equal(t, 40, p.Requests())
	assert.Equal(t, 20, p.Writes())
}

func TestUnknownRoute(t *testing.T) {
	_, _, base := setup(t, litellmtest.Options{})
	status, _, _ := call(t, base, "GET", "/nope", bearer(), "")
	assert.Equal(t, 404, status)
	status, _, _ = call(t, base, "DELETE", "/model/new", bearer(), "")
	assert.Equal(t, 405, status)
}

func TestUnknownVersionPanics(t *testing.T) {
	assert.Panics(t, func() { litellmtest.New(litellmtest.Options{Version: "2.0"}) })
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// errorText returns the message of either LiteLLM error shape.
func errorText(body any) string {
	m, _ := body.(map[string]any)
	if e, ok := m["error"].(map[string]any); ok {
		return fmt.Sprint(e["message"])
	}
	if d, ok := m["detail"].(map[string]any); ok {
		return fmt.Sprint(d["error"])
	}
	return fmt.Sprint(body)
}
