package reconcile_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/reconcile"
)

var catalogModels = []string{"mistral-3-int4", "granite-8b-agent", "mistral-3-bf16", "devstral-2", "gpt-oss-20b"}

// chat sends one completion for model through the proxy at base and returns the status and body.
func chat(t *testing.T, base, model string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"Say hello"}],"max_tokens":8}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+masterKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	b, _ := json.Marshal(body)
	return resp.StatusCode, string(b)
}

// Every served catalog model answers a chat through LiteLLM once the job has run, on every replica,
// and an edit of contextLength and of a capability reaches the replica that was not written to: the
// rows are then a fixed point of what that replica serves.
func TestEveryModelAnswersOnEveryReplica(t *testing.T) {
	vllm, up := litellmtest.NewVLLMServer(t, catalogModels...)
	ps := litellmtest.NewReplicas(litellmtest.Options{
		MasterKey: masterKey, Upstream: litellmtest.Resolver(strings.TrimPrefix(up.URL, "http://")),
	}, 2)
	var urls []string
	for _, p := range ps {
		srv := httptest.NewServer(p)
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	s := newStack(t)
	s.proxy, s.llm, s.llmURL = ps[0], litellm.New(urls[0], masterKey), urls[0]

	s.run(loadCatalog(t, ""))
	ps[1].Poll()
	for _, base := range urls {
		for _, id := range catalogModels {
			status, body := chat(t, base, id)
			assert.Equal(t, http.StatusOK, status, "%s via %s: %s", id, base, body)
		}
	}
	for _, id := range catalogModels {
		assert.Equal(t, 2, vllm.Calls(id), id)
	}

	edited := strings.Replace(readCatalog(t), "contextLength: 131072", "contextLength: 65536", 1)
	edited = strings.Replace(edited, "    supportsParallelFunctionCalling: true\n", "    supportsParallelFunctionCalling: true\n    supportsVision: true\n", 1)
	res := s.run(loadCatalog(t, edited))
	assert.Equal(t, reconcile.Counts{Updated: 1, Unchanged: 4}, res.LiteLLM)
	// Before its poll the second replica still routes to the old deployment: no gap in service.
	status, body := chat(t, urls[1], "devstral-2")
	assert.Equal(t, http.StatusOK, status, body)
	ps[1].Poll()

	second := litellm.New(urls[1], masterKey)
	ds, err := second.ListModels(context.Background())
	require.NoError(t, err)
	byName := map[string][]litellm.Deployment{}
	for _, d := range ds {
		byName[d.ModelName] = append(byName[d.ModelName], d)
	}
	require.Len(t, byName["devstral-2"], 1, "the old version is gone from the second replica too")
	dev := byName["devstral-2"][0]
	assert.EqualValues(t, 65536, dev.ModelInfo["max_tokens"])
	assert.Equal(t, true, dev.ModelInfo["supports_vision"])
	rows := s.rows(catalogModels...)
	for _, id := range catalogModels {
		require.Len(t, byName[id], 1, id)
		assert.Empty(t, modelsync.Drift(rows[id], byName[id][0]), "the backend reading through the second replica would rewrite %s", id)
		status, body := chat(t, urls[1], id)
		assert.Equal(t, http.StatusOK, status, "%s: %s", id, body)
	}
}
