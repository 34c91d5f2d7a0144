package ops

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
)

func TestChatCheck(t *testing.T) {
	const master = "sk-chat-master"
	_, up := litellmtest.NewVLLMServer(t, "granite-8b-agent", "mistral-3-int4")
	p, srv := litellmtest.NewTestServer(t, litellmtest.Options{MasterKey: master})
	deployment := func(name, model string, key any) litellm.Deployment {
		params := map[string]any{"model": model, "api_base": up.URL + "/v1"}
		if key != nil {
			params["api_key"] = key
		}
		return litellm.Deployment{ModelName: name, LiteLLMParams: params, ModelInfo: map[string]any{"db_model": true}}
	}
	p.Seed(
		deployment("granite-8b-agent", "openai/granite-8b-agent", "none"),
		deployment("mistral-3-int4", "openai/mistral-3-int4", ""),
		deployment("devstral-2", "openai/devstral-2", "none"),
	)
	tests := []struct {
		model   string
		status  int
		message string
	}{
		{"granite-8b-agent", 200, "Hello from granite-8b-agent."},
		{"mistral-3-int4", 401, "The api_key client option must be set"},
		{"devstral-2", 404, "The model `devstral-2` does not exist."},
		{"gpt-oss-20b", 400, "Invalid model name passed in model=gpt-oss-20b"},
	}
	var models []string
	for _, tc := range tests {
		models = append(models, tc.model)
	}
	results, err := ChatCheck(context.Background(), ChatOptions{BaseURL: srv.URL, MasterKey: master, Models: models})
	require.NoError(t, err)
	require.Len(t, results, len(tests))
	for i, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			assert.Equal(t, tc.model, results[i].Model)
			assert.Equal(t, tc.status, results[i].Status)
			assert.Contains(t, results[i].Message, tc.message)
			assert.Positive(t, results[i].Latency)
		})
	}
	assert.Empty(t, p.Keys(), "the virtual key is deleted afterwards")
	assert.Equal(t, 1, p.Count("POST", "/key/generate"))
	assert.Equal(t, 1, p.Count("POST", "/key/delete"))

	var out bytes.Buffer
	err = PrintChatTable(&out, results)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "3 of 4 models failed")
	assert.Contains(t, err.Error(), "mistral-3-int4: litellm.AuthenticationError")
	assert.NotContains(t, err.Error(), "granite-8b-agent:")
	assert.Contains(t, out.String(), "MODEL")
	assert.Contains(t, out.String(), "FAIL 404")
	t.Logf("\n%s", out.String())

	rows := ChatRows(results)
	assert.Equal(t, statusOK, rows[0].Status)
	assert.Equal(t, statusFail, rows[1].Status)
}

func TestChatCheckWithoutAValidMasterKey(t *testing.T) {
	p, srv := litellmtest.NewTestServer(t, litellmtest.Options{MasterKey: "sk-real"})
	_, err := ChatCheck(context.Background(), ChatOptions{BaseURL: srv.URL, MasterKey: "sk-wrong", Models: []string{"x"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "creating a LiteLLM virtual key")
	assert.Contains(t, err.Error(), "status 401")
	assert.NotContains(t, err.Error(), "sk-wrong")
	assert.Zero(t, p.Count("POST", "/v1/chat/completions"))
}
