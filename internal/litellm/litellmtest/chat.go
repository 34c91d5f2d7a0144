package litellmtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// virtualKey is one row of LiteLLM_VerificationTokenTable: a key that may call the data path, for
// the models it lists (every model when empty).
type virtualKey struct {
	alias  string
	models []string
}

// Keys returns the virtual keys that exist, for tests that check a caller cleaned up after itself.
func (p *Proxy) Keys() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.shared.keys))
	for k := range p.shared.keys {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// keyGenerate is POST /key/generate (master key only): a new virtual key, stored in the database and
// so valid on every replica at once.
func (p *Proxy) keyGenerate(r *http.Request) (int, any) {
	var b struct {
		Models   []string `json:"models"`
		KeyAlias string   `json:"key_alias"`
		Duration *string  `json:"duration"`
	}
	if status, body := decodeBody(r, &b); status != 0 {
		return status, body
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db != DBConnected {
		return http.StatusInternalServerError, errorBody(500, "auth_error", noDBMsg)
	}
	key := "sk-" + strings.ReplaceAll(newUUID(), "-", "")[:22]
	p.shared.keys[key] = virtualKey{alias: b.KeyAlias, models: b.Models}
	models := b.Models
	if models == nil {
		models = []string{}
	}
	return http.StatusOK, map[string]any{
		"key": key, "key_name": abbreviate(key), "key_alias": nilIfEmpty(b.KeyAlias), "models": models,
		"expires": nil, "token": newUUID(), "duration": b.Duration,
	}
}

// keyDelete is POST /key/delete {"keys":[...]} (master key only).
func (p *Proxy) keyDelete(r *http.Request) (int, any) {
	var b struct {
		Keys []string `json:"keys"`
	}
	if status, body := decodeBody(r, &b); status != 0 {
		return status, body
	}
	if len(b.Keys) == 0 {
		return missing("keys")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var deleted []string
	for _, k := range b.Keys {
		if _, ok := p.shared.keys[k]; ok {
			delete(p.shared.keys, k)
			deleted = append(deleted, k)
		}
	}
	if len(deleted) != len(b.Keys) {
		return http.StatusBadRequest, errorBody(400, "bad_request_error",
			fmt.Sprintf("Failed to delete all keys. Tried to delete %d keys, deleted %d", len(b.Keys), len(deleted)))
	}
	return http.StatusOK, map[string]any{"deleted_keys": deleted}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// chatKey checks the caller's key for the data path: the master key, or a virtual key allowed to use
// model. It returns a non-zero status when the request must be rejected; p.mu held.
func (p *Proxy) chatKey(r *http.Request, model string) (int, any) {
	key := r.Header.Get("x-litellm-api-key")
	if key == "" {
		key, _ = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if key != "" && key == p.masterKey {
		return 0, nil
	}
	vk, ok := p.shared.keys[key]
	if !ok {
		return p.authenticate(r)
	}
	if len(vk.models) > 0 && !slices.Contains(vk.models, model) {
		return http.StatusUnauthorized, errorBody(401, "key_model_access_denied", fmt.Sprintf(
			"key not allowed to access model. This key can only access models=%v. Tried to access %s", vk.models, model))
	}
	return 0, nil
}

// chat is POST /v1/chat/completions: the answering replica picks a deployment of the requested
// model_name from its own memory, strips the provider prefix of litellm_params.model and calls
// <api_base>/chat/completions with its OpenAI client, as LiteLLM does.
func (p *Proxy) chat(r *http.Request) (int, any) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return http.StatusBadRequest, errorBody(400, "invalid_request_error", err.Error())
	}
	var req map[string]any
	if err := json.Unmarshal(raw, &req); err != nil {
		return http.StatusBadRequest, errorBody(400, "invalid_request_error", "Invalid JSON payload: "+err.Error())
	}
	model, _ := req["model"].(string)

	p.mu.Lock()
	if status, body := p.chatKey(r, model); status != 0 {
		p.mu.Unlock()
		return status, body
	}
	var group []row
	for _, rw := range p.current() {
		if rw.name == model && model != "" {
			group = append(group, rw)
		}
	}
	var d row
	if len(group) > 0 {
		d = group[p.chats%len(group)]
		p.chats++
	}
	openAIKey := p.openAIKey
	p.mu.Unlock()
	if len(group) == 0 {
		return http.StatusBadRequest, errorBody(400, "invalid_request_error", fmt.Sprintf(
			"Invalid model name passed in model=%s. Call `/v1/models` to view available models for your key.", model))
	}

	served, _ := d.params["model"].(string)
	if _, rest, ok := strings.Cut(served, "/"); ok {
		served = rest
	}
	apiBase, _ := d.params["api_base"].(string)
	apiKey, _ := d.params["api_key"].(string)
	if apiKey == "" {
		apiKey = openAIKey
	}
	if apiKey == "" {
		return http.StatusUnauthorized, errorBody(401, "auth_error", "litellm.AuthenticationError: AuthenticationError: OpenAIException - "+
			"The api_key client option must be set either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable. "+
			"Received Model Group="+model+"\nAvailable Model Group Fallbacks=None")
	}
	req["model"] = served
	body, _ := json.Marshal(req)
	up, err := http.NewRequestWithContext(r.Context(), http.MethodPost, strings.TrimRight(apiBase, "/")+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return http.StatusInternalServerError, errorBody(500, "None", "litellm.APIConnectionError: APIConnectionError: OpenAIException - "+err.Error())
	}
	up.Header.Set("Content-Type", "application/json")
	up.Header.Set("Authorization", "Bearer "+apiKey)
	resp, err := p.upstream.Do(up)
	if err != nil {
		return http.StatusInternalServerError, errorBody(500, "None",
			"litellm.APIConnectionError: APIConnectionError: OpenAIException - Connection error. Received Model Group="+model)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300 && json.Valid(out):
		return http.StatusOK, json.RawMessage(out)
	case resp.StatusCode == http.StatusNotFound:
		return http.StatusNotFound, errorBody(404, "None", "litellm.NotFoundError: NotFoundError: OpenAIException - "+string(out)+" Received Model Group="+model)
	case resp.StatusCode == http.StatusUnauthorized:
		return http.StatusUnauthorized, errorBody(401, "auth_error", "litellm.AuthenticationError: AuthenticationError: OpenAIException - "+string(out))
	}
	status := resp.StatusCode
	if status < 400 {
		status = http.StatusInternalServerError
	}
	return status, errorBody(status, "None", "litellm.APIError: APIError: OpenAIException - "+string(out))
}
