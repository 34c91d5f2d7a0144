package verify

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
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
	assert.Equal(t, report.StatusOK, rows[0].Status)
	assert.Equal(t, report.StatusFail, rows[1].Status)
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

// verify --chat goes through the Route litellm with the master key of Secret litellm-secret, adds one
// row per served catalog model and fails, naming the model, when one does not answer.
func TestVerifyChat(t *testing.T) {
	setupCluster(t)
	const master = "sk-verify-chat-master"
	_, up := litellmtest.NewVLLMServer(t, "mistral-3-int4") // granite-8b-agent is not served: a 404 at chat time
	proxy := litellmtest.New(litellmtest.Options{MasterKey: master, Upstream: litellmtest.Resolver(strings.TrimPrefix(up.URL, "http://"))})
	for _, id := range []string{"mistral-3-int4", "granite-8b-agent"} {
		proxy.Seed(litellm.Deployment{ModelName: id, LiteLLMParams: map[string]any{
			"model": "openai/" + id, "api_base": "http://" + id + "-predictor.private-ai.svc.cluster.local:8080/v1", "api_key": "none",
		}, ModelInfo: map[string]any{"db_model": true}})
	}
	// The router: the litellm Route's host reaches the proxy, the others a plain page.
	router := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Host, "litellm-") {
			proxy.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == advisoryProbePath {
			bypassStandIn(false).ServeHTTP(w, r) // a backend with the fix for litemaas#137
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(router.Close)
	addr := router.Listener.Addr().String()
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test router's own certificate
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}

	ns := srv.CreateNamespace(t, "verify-chat")
	populateNamespace(t, ns, testDomain)
	writeJobStatus(t, ns, "succeeded", goodModels)
	_, err := srv.Clientset().CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "litellm-secret"}, Data: map[string][]byte{"LITELLM_MASTER_KEY": []byte(master)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	var out syncBuffer
	err = Verify(context.Background(), newCluster(t, srv.Config), Options{
		Namespace: ns, Catalog: "testdata/models.yaml", HTTPClient: client, Chat: true, Out: &out,
	})
	t.Logf("verify --chat:\n%s", out.String())
	var pe *report.ProblemsError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, 1, pe.Count, "only granite-8b-agent fails")
	table := squeeze(out.String())
	assert.Contains(t, table, "chat mistral-3-int4 OK HTTP 200")
	assert.Contains(t, table, "chat granite-8b-agent FAIL HTTP 404")
	assert.Contains(t, table, "The model `granite-8b-agent` does not exist.")
	assert.NotContains(t, table, "chat gpt-oss-20b", "unavailable models are not tried")
	assert.NotContains(t, out.String(), master)
	assert.Empty(t, proxy.Keys(), "the virtual key is deleted")
	assert.Equal(t, 1, proxy.Count("POST", "/key/delete"))
}
