package litellmtest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// VLLM is a small OpenAI-compatible model server, standing for vLLM: it serves the model names it
// was given and answers others with vLLM's 404. With an APIKey (vLLM's --api-key) it requires that
// bearer token; without one it accepts any, as vLLM does.
type VLLM struct {
	APIKey string

	mu     sync.Mutex
	models []string
	calls  map[string]int
	auth   []string
}

// NewVLLM serves the given model names.
func NewVLLM(models ...string) *VLLM {
	return &VLLM{models: slices.Clone(models), calls: map[string]int{}}
}

// NewVLLMServer starts v on an httptest server closed at the end of the test; its URL plus "/v1" is
// an api_base.
func NewVLLMServer(t testing.TB, models ...string) (*VLLM, *httptest.Server) {
	t.Helper()
	v := NewVLLM(models...)
	srv := httptest.NewServer(v)
	t.Cleanup(srv.Close)
	return v, srv
}

// Calls is how many completions model answered.
func (v *VLLM) Calls(model string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.calls[model]
}

// Authorizations lists the Authorization headers received, in order.
func (v *VLLM) Authorizations() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.auth)
}

func (v *VLLM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.auth = append(v.auth, r.Header.Get("Authorization"))
	models := slices.Clone(v.models)
	v.mu.Unlock()
	if v.APIKey != "" && r.Header.Get("Authorization") != "Bearer "+v.APIKey {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Unauthorized"})
		return
	}
	switch {
	case r.URL.Path == "/v1/models" && r.Method == http.MethodGet:
		data := []any{}
		for _, m := range models {
			data = append(data, map[string]any{"id": m, "object": "model", "owned_by": "vllm"})
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
	case r.URL.Path == "/v1/chat/completions" && r.Method == http.MethodPost:
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Content any `json:"content"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, vllmError(http.StatusBadRequest, "BadRequestError", err.Error()))
			return
		}
		if !slices.Contains(models, req.Model) {
			writeJSON(w, http.StatusNotFound, vllmError(http.StatusNotFound, "NotFoundError", fmt.Sprintf("The model `%s` does not exist.", req.Model)))
			return
		}
		v.mu.Lock()
		v.calls[req.Model]++
		v.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"id": "chatcmpl-" + strings.ReplaceAll(newUUID(), "-", ""), "object": "chat.completion",
			"created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{
				"index": 0, "finish_reason": "stop",
				"message": map[string]any{"role": "assistant", "content": "Hello from " + req.Model + "."},
			}},
			"usage": map[string]any{"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
		})
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"detail": "Not Found"})
	}
}

// vllmError is vLLM's OpenAI-style error body.
func vllmError(code int, typ, msg string) map[string]any {
	return map[string]any{"object": "error", "message": msg, "type": typ, "param": nil, "code": code}
}

// Resolver returns an HTTP client for Options.Upstream that connects every request to addr
// (host:port) whatever host its URL names, as cluster DNS would send the catalog's in-cluster
// api_base addresses to the model server. The URL, and so the Host header, stay as they are.
func Resolver(addr string) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}
