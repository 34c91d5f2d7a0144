package litellmtest_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
)

func served(name, model, apiBase string, key any) litellm.Deployment {
	params := map[string]any{"model": model, "api_base": apiBase}
	if key != nil {
		params["api_key"] = key
	}
	return litellm.Deployment{ModelName: name, LiteLLMParams: params, ModelInfo: map[string]any{"db_model": true}}
}

func chatBody(model string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"Say hello"}],"max_tokens":8}`
}

func TestChatCompletions(t *testing.T) {
	vllm, up := litellmtest.NewVLLMServer(t, "granite-8b-agent")
	tests := []struct {
		name       string
		deployment litellm.Deployment
		openAIKey  string
		path       string
		model      string
		status     int
		message    string
		upstream   string // the Authorization header the model server saw
	}{
		{"key none, prefix stripped", served("granite", "openai/granite-8b-agent", up.URL+"/v1", "none"), "", "/v1/chat/completions", "granite", 200, "", "Bearer none"},
		{"route without /v1", served("granite", "openai/granite-8b-agent", up.URL+"/v1", "none"), "", "/chat/completions", "granite", 200, "", "Bearer none"},
		{"empty key fails like LiteLLM", served("granite", "openai/granite-8b-agent", up.URL+"/v1", ""), "", "/v1/chat/completions", "granite", 401,
			"The api_key client option must be set either by passing api_key to the client or by setting the OPENAI_API_KEY environment variable", ""},
		{"missing key fails like LiteLLM", served("granite", "openai/granite-8b-agent", up.URL+"/v1", nil), "", "/v1/chat/completions", "granite", 401,
			"The api_key client option must be set", ""},
		{"missing key falls back to OPENAI_API_KEY", served("granite", "openai/granite-8b-agent", up.URL+"/v1", nil), "sk-env", "/v1/chat/completions", "granite", 200, "", "Bearer sk-env"},
		{"served name unknown to the model server", served("granite", "openai/granite-7b", up.URL+"/v1", "none"), "", "/v1/chat/completions", "granite", 404,
			"The model `granite-7b` does not exist.", "Bearer none"},
		{"model name unknown to LiteLLM", served("granite", "openai/granite-8b-agent", up.URL+"/v1", "none"), "", "/v1/chat/completions", "other", 400,
			"Invalid model name passed in model=other", ""},
		{"model server unreachable", served("granite", "openai/granite-8b-agent", "http://127.0.0.1:1/v1", "none"), "", "/v1/chat/completions", "granite", 500,
			"APIConnectionError", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, base := setup(t, litellmtest.Options{OpenAIAPIKey: tc.openAIKey})
			p.Seed(tc.deployment)
			before := len(vllm.Authorizations())
			status, body, _ := call(t, base, "POST", tc.path, bearer(), chatBody(tc.model))
			require.Equal(t, tc.status, status, "%v", body)
			if tc.message != "" {
				assert.Contains(t, errorText(body), tc.message)
			} else {
				choices := body.(map[string]any)["choices"].([]any)
				assert.Equal(t, "Hello from granite-8b-agent.", choices[0].(map[string]any)["message"].(map[string]any)["content"])
			}
			seen := vllm.Authorizations()[before:]
			if tc.upstream == "" {
				assert.Empty(t, seen, "LiteLLM must not call the model server")
			} else {
				assert.Equal(t, []string{tc.upstream}, seen)
			}
		})
	}
}

func TestVirtualKeys(t *testing.T) {
	_, up := litellmtest.NewVLLMServer(t, "granite-8b-agent", "mistral")
	p, _, base := setup(t, litellmtest.Options{})
	p.Seed(served("granite", "openai/granite-8b-agent", up.URL+"/v1", "none"), served("mistral", "openai/mistral", up.URL+"/v1", "none"))

	status, body, _ := call(t, base, "POST", "/key/generate", bearer(), `{"models":["granite"],"key_alias":"verify","duration":"10m"}`)
	require.Equal(t, 200, status, "%v", body)
	vk := body.(map[string]any)["key"].(string)
	require.Equal(t, []string{vk}, p.Keys())
	with := map[string]string{"Authorization": "Bearer " + vk}

	status, body, _ = call(t, base, "POST", "/v1/chat/completions", with, chatBody("granite"))
	assert.Equal(t, 200, status, "%v", body)
	status, body, _ = call(t, base, "POST", "/v1/chat/completions", with, chatBody("mistral"))
	assert.Equal(t, 401, status)
	assert.Contains(t, errorText(body), "key not allowed to access model")
	status, _, _ = call(t, base, "POST", "/key/generate", with, `{}`)
	assert.Equal(t, 401, status, "a virtual key is no admin key")
	status, _, _ = call(t, base, "GET", "/model/info", with, "")
	assert.Equal(t, 401, status, "a virtual key is no admin key")

	status, body, _ = call(t, base, "POST", "/key/delete", bearer(), `{"keys":["`+vk+`"]}`)
	require.Equal(t, 200, status, "%v", body)
	assert.Empty(t, p.Keys())
	status, _, _ = call(t, base, "POST", "/v1/chat/completions", with, chatBody("granite"))
	assert.Equal(t, 401, status, "a deleted key no longer works")
	status, _, _ = call(t, base, "POST", "/key/delete", bearer(), `{"keys":["`+vk+`"]}`)
	assert.Equal(t, 400, status)
	status, _, _ = call(t, base, "POST", "/v1/chat/completions", nil, chatBody("granite"))
	assert.Equal(t, 401, status, "no key")
}
