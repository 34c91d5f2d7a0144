// Package litellm is a small client for the LiteLLM proxy's model admin API: the endpoints the job
// needs to register, inspect and remove deployments, plus the unauthenticated readiness probe.
//
// The client makes exactly one attempt per call. Retrying is the caller's business, because only the
// caller knows which operations are safe to repeat (POST /model/new is not idempotent) and how long it
// may wait; IsTransient tells it which errors are worth another attempt.
//
// JSON numbers in litellm_params and model_info decode as float64 and booleans as bool (plain
// encoding/json, no UseNumber): integers such as tpm, rpm or max_tokens are exact up to 2^53, and
// callers can compare and re-encode the values without handling json.Number.
package litellm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/litemaas-gitops/litemaas-gitops/internal/redact"
)

// Deployment is one LiteLLM deployment as /model/info returns it and /model/new accepts it.
type Deployment struct {
	ModelName     string         `json:"model_name"`
	LiteLLMParams map[string]any `json:"litellm_params"`
	ModelInfo     map[string]any `json:"model_info"`
}

// ID returns model_info.id as a string, "" if absent.
func (d Deployment) ID() string {
	switch v := d.ModelInfo["id"].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Readiness is the body of GET /health/readiness. LiteLLM v1.74.7 reports status "connected" where
// newer versions say "healthy", so only DB is meaningful across versions.
type Readiness struct {
	Status string `json:"status"`
	DB     string `json:"db"`
}

// DBConnected reports whether the proxy has a working database; without one, models cannot be stored.
func (r Readiness) DBConnected() bool { return r.DB == "connected" }

// Client talks to one LiteLLM proxy with its master key.
type Client struct {
	baseURL   string
	masterKey string
	http      *http.Client
	// red removes the master key and the models' API keys from every error.
	red *redact.Redactor
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient replaces the default HTTP client (30 s timeout).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// WithRedacted names more values that must never appear in an error, such as the models' API keys,
// which a proxy's error body may echo from the request.
func WithRedacted(values ...string) Option {
	return func(c *Client) {
		c.red.Add(values...)
	}
}

// New returns a client for the proxy at baseURL (e.g. http://litellm:4000; a trailing slash is fine).
func New(baseURL, masterKey string, opts ...Option) *Client {
	c := &Client{
		baseURL:   strings.TrimRight(baseURL, "/"),
		masterKey: masterKey,
		http:      &http.Client{Timeout: 30 * time.Second},
		red:       redact.New(masterKey),
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// notLoaded is how LiteLLM before v1.80.11 says it has no model at all.
const notLoaded = "LLM Model List not loaded"

type modelInfoResponse struct {
	Data []Deployment `json:"data"`
}

// ListModels returns every deployment the answering proxy worker knows. An empty proxy yields an empty
// slice: older versions answer it with a 500 rather than an empty list.
func (c *Client) ListModels(ctx context.Context) ([]Deployment, error) {
	var resp modelInfoResponse
	err := c.do(ctx, http.MethodGet, "/model/info", nil, true, nil, &resp)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusInternalServerError &&
		strings.Contains(apiErr.Body, notLoaded) {
		return []Deployment{}, nil
	}
	if err != nil {
		return nil, err
	}
	if resp.Data == nil {
		resp.Data = []Deployment{}
	}
	return resp.Data, nil
}

// GetModel returns the deployment with model_info.id == id. An unknown id, including on an empty
// proxy, yields an error wrapping ErrNotFound. Right after a write another replica may not know the
// model yet, so callers verifying their own write should re-read on ErrNotFound for a bounded time.
func (c *Client) GetModel(ctx context.Context, id string) (Deployment, error) {
	var resp modelInfoResponse
	q := url.Values{"litellm_model_id": {id}}
	err := c.do(ctx, http.MethodGet, "/model/info", q, true, nil, &resp)
	if err != nil {
		return Deployment{}, wrapNotFound(id, err, func(e *APIError) bool {
			switch e.StatusCode {
			case http.StatusNotFound:
				return true
			case http.StatusBadRequest:
				return strings.Contains(e.Body, "not found")
			case http.StatusInternalServerError:
				return strings.Contains(e.Body, notLoaded)
			}
			return false
		})
	}
	for _, d := range resp.Data {
		if d.ID() == id {
			return d, nil
		}
	}
	return Deployment{}, fmt.Errorf("litellm model %q: %w", id, ErrNotFound)
}

// CreateModel registers a new deployment. It is not idempotent: LiteLLM stores one more row per call
// when model_info.id is absent, and answers a bare 500 when the id exists already. Since some versions
// also answer 500 after saving the row, callers should re-read before retrying a failed create.
func (c *Client) CreateModel(ctx context.Context, d Deployment) error {
	return c.do(ctx, http.MethodPost, "/model/new", nil, true, d, nil)
}

// UpdateModel merges d into the deployment id (PATCH): only the keys present in d.LiteLLMParams and
// d.ModelInfo change, and an empty d.ModelName keeps the current name.
func (c *Client) UpdateModel(ctx context.Context, id string, d Deployment) error {
	patch := map[string]any{}
	if d.ModelName != "" {
		patch["model_name"] = d.ModelName
	}
	if d.LiteLLMParams != nil {
		patch["litellm_params"] = d.LiteLLMParams
	}
	if d.ModelInfo != nil {
		patch["model_info"] = d.ModelInfo
	}
	err := c.do(ctx, http.MethodPatch, "/model/"+url.PathEscape(id)+"/update", nil, true, patch, nil)
	return wrapNotFound(id, err, func(e *APIError) bool { return e.StatusCode == http.StatusNotFound })
}

// DeleteModel removes the deployment id. LiteLLM answers an unknown id with a 400, mapped here to an
// error wrapping ErrNotFound so that deleting twice is easy to treat as done.
func (c *Client) DeleteModel(ctx context.Context, id string) error {
	err := c.do(ctx, http.MethodPost, "/model/delete", nil, true, map[string]string{"id": id}, nil)
	return wrapNotFound(id, err, func(e *APIError) bool {
		return e.StatusCode == http.StatusNotFound ||
			(e.StatusCode == http.StatusBadRequest && strings.Contains(e.Body, "not found"))
	})
}

// Readiness probes GET /health/readiness, which needs no key. A failing database makes the proxy
// answer 503, returned as an *APIError (transient).
func (c *Client) Readiness(ctx context.Context) (Readiness, error) {
	var r Readiness
	if err := c.do(ctx, http.MethodGet, "/health/readiness", nil, false, nil, &r); err != nil {
		return Readiness{}, err
	}
	return r, nil
}

func wrapNotFound(id string, err error, match func(*APIError) bool) error {
	var apiErr *APIError
	if errors.As(err, &apiErr) && match(apiErr) {
		return fmt.Errorf("litellm model %q: %w: %w", id, ErrNotFound, err)
	}
	return err
}

// do performs one request. in is encoded as the JSON body when non-nil; out receives the decoded
// 2xx body when non-nil.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, auth bool, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	u := c.baseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.Header.Set("Authorization", "Bearer "+c.masterKey)
	}

	resp, err := c.http.Do(req)
	if err != nil {
		return c.transportFailure(ctx, method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	if err != nil {
		return c.transportFailure(ctx, method, path, fmt.Errorf("read response: %w", err))
	}

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &APIError{Method: method, Path: path, StatusCode: resp.StatusCode, Body: c.errorBody(data)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// transportFailure reports the caller's own cancellation as such, so that IsTransient does not ask for
// a retry the caller no longer wants; anything else below HTTP is worth another attempt.
func (c *Client) transportFailure(ctx context.Context, method, path string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("%s %s: %w", method, path, ctxErr)
	}
	return &transportError{method: method, path: path, err: c.redact(err)}
}

// errorBody redacts the key before trimming, so that a key cut at the limit cannot leak in part.
func (c *Client) errorBody(data []byte) string {
	s := strings.TrimSpace(c.redactString(string(data)))
	if len(s) <= maxErrorBody {
		return s
	}
	cut := maxErrorBody
	// Back off to a rune boundary so the message stays valid UTF-8.
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "...(truncated)"
}

// redactString removes the master key and API keys, also JSON-escaped, since error bodies may echo
// them (LiteLLM's "Malformed API Key ... Passed in: <key>").
func (c *Client) redactString(s string) string { return c.red.String(s) }

// redact guards transport errors too: a base URL is not supposed to carry the key, but nothing that
// reaches a log may.
func (c *Client) redact(err error) error { return c.red.Error(err) }
