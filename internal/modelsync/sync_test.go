package modelsync

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

func deployment() litellm.Deployment {
	return litellm.Deployment{
		ModelName: "granite",
		LiteLLMParams: map[string]any{
			"model": "openai/ibm/granite-8b", "api_base": "http://granite:8080/v1", "tpm": float64(1000), "rpm": float64(0),
			"input_cost_per_token": 0.5,
		},
		ModelInfo: map[string]any{
			"id": "abc", "max_tokens": float64(16384), "supports_function_calling": true,
			"supports_vision": true, "input_cost_per_token": 0.000002,
		},
	}
}

func TestFromDeployment(t *testing.T) {
	r := FromDeployment(deployment())
	assert.Equal(t, "granite", r.ID)
	assert.Equal(t, "granite", r.Name)
	assert.Equal(t, "openai", r.Provider, "the prefix of litellm_params.model")
	assert.Equal(t, "ibm/granite-8b", *r.BackendModelName, "everything after the first /")
	assert.Equal(t, SyncCategory, *r.Category)
	assert.EqualValues(t, 16384, *r.ContextLength)
	assert.EqualValues(t, 16384, *r.MaxTokens)
	assert.EqualValues(t, 1000, *r.TPM)
	assert.Nil(t, r.RPM, "a 0 rpm counts as absent")
	assert.InDelta(t, 0.000002, *r.InputCostPerToken, 1e-15, "model_info's cost wins over litellm_params'")
	assert.Zero(t, *r.OutputCostPerToken, "no cost anywhere is 0")
	assert.Equal(t, []string{"function_calling", "vision", "chat"}, r.Features)
	assert.Equal(t, "available", r.Availability)
	assert.Equal(t, SyncVersion, *r.Version)
	assert.True(t, r.SupportsStreaming)
	assert.Equal(t, "abc", *r.LiteLLMModelID)
	assert.JSONEq(t, `{"litellm_model_info":{"id":"abc","max_tokens":16384,"supports_function_calling":true,"supports_vision":true,"input_cost_per_token":0.000002},
		"litellm_params":{"model":"openai/ibm/granite-8b","api_base":"http://granite:8080/v1","tpm":1000,"rpm":0,"input_cost_per_token":0.5}}`, string(r.Metadata))
}

func TestProviderFromCustomLLMProvider(t *testing.T) {
	d := deployment()
	d.LiteLLMParams["custom_llm_provider"] = "hosted_vllm"
	assert.Equal(t, "hosted_vllm", FromDeployment(d).Provider)
}

func TestMetadataNeverHoldsTheAPIKey(t *testing.T) {
	d := deployment()
	d.LiteLLMParams["api_key"] = "secret-key"
	assert.NotContains(t, string(Metadata(d)), "secret-key")
}

func TestFeaturesOrder(t *testing.T) {
	tests := []struct {
		info map[string]any
		want []string
	}{
		{map[string]any{}, []string{"chat"}},
		{map[string]any{"supports_vision": true, "supports_function_calling": true, "supports_tool_choice": true, "supports_parallel_function_calling": true},
			[]string{"function_calling", "parallel_function_calling", "tool_choice", "vision", "chat"}},
		{map[string]any{"supports_embeddings": true, "supports_convert": true}, []string{"embeddings"}},
		{map[string]any{"supports_convert": true, "supports_tokenize": true}, []string{"convert", "tokenize"}},
		{map[string]any{"supports_vision": float64(1)}, []string{"chat"}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, Features(tt.info), "%v", tt.info)
	}
}

func TestDrift(t *testing.T) {
	d := deployment()
	fixed := FromDeployment(d)
	// Display columns are the catalog's: the sync never compares them.
	fixed.Name, fixed.Provider, fixed.Category = "Granite 8B", "vLLM", ptr("agent")
	require.Empty(t, Drift(fixed, d))

	tests := []struct {
		name   string
		change func(*Row, *litellm.Deployment)
		want   []string
	}{
		{"unavailable row", func(r *Row, _ *litellm.Deployment) { r.Availability = "unavailable" }, []string{"availability"}},
		{"no streaming", func(r *Row, _ *litellm.Deployment) { r.SupportsStreaming = false }, []string{"supports_streaming"}},
		{"features in insert order", func(r *Row, _ *litellm.Deployment) { r.Features = []string{"chat", "function_calling", "vision"} }, []string{"features"}},
		{"capability as a number", func(_ *Row, d *litellm.Deployment) { d.ModelInfo["supports_vision"] = float64(1) },
			[]string{"supports_vision", "features"}},
		{"cost within 1e-10", func(r *Row, _ *litellm.Deployment) { *r.InputCostPerToken += 1e-11 }, nil},
		{"cost beyond 1e-10", func(r *Row, _ *litellm.Deployment) { *r.InputCostPerToken += 1e-9 }, []string{"input_cost_per_token"}},
		{"NULL cost", func(r *Row, _ *litellm.Deployment) { r.OutputCostPerToken = nil }, []string{"output_cost_per_token"}},
		{"tpm 0 in LiteLLM is absent", func(r *Row, d *litellm.Deployment) { d.LiteLLMParams["tpm"] = float64(0); r.TPM = nil }, nil},
		{"max tokens changed", func(_ *Row, d *litellm.Deployment) { d.ModelInfo["max_tokens"] = float64(8192) }, []string{"context_length", "max_tokens"}},
		{"api base changed", func(_ *Row, d *litellm.Deployment) { d.LiteLLMParams["api_base"] = "http://other/v1" }, []string{"api_base"}},
		{"other deployment id", func(_ *Row, d *litellm.Deployment) { d.ModelInfo["id"] = "def" }, []string{"litellm_model_id"}},
		{"version", func(r *Row, _ *litellm.Deployment) { r.Version = nil }, []string{"version"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deployment()
			r := FromDeployment(d)
			tt.change(&r, &d)
			assert.Equal(t, tt.want, Drift(r, d))
		})
	}
}

func TestStartupDrift(t *testing.T) {
	r := FromDeployment(deployment())
	assert.Empty(t, StartupDrift(r))
	r.LiteLLMModelID = nil
	assert.Equal(t, []string{"litellm_model_id"}, StartupDrift(r))
}
