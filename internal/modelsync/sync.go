package modelsync

import (
	"encoding/json"
	"math"
	"slices"
	"strings"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
)

// Values the backend writes for every model it syncs from LiteLLM.
const (
	SyncCategory = "Language Model"
	SyncVersion  = "1.0"
)

// CostTolerance is the one tolerance for comparing costs, the job's and its model of the backend's:
// half a unit of the decimal(15,10) column's last place. The backend compares with 1e-10, so costs
// equal at this tolerance are equal for it too; and since the catalog allows at most 10 decimal
// places, the column stores exactly the catalog's value and a change of one unit in the last place
// is still seen.
const CostTolerance = 5e-11

// FromDeployment computes the row the backend's sync writes for LiteLLM deployment d, with the
// capability features in the order its comparison expects (its insert path puts 'chat' first, which
// its own comparison then rejects; the job writes the compared order so the row stays put).
func FromDeployment(d litellm.Deployment) Row {
	p, info := d.LiteLLMParams, d.ModelInfo
	maxTokens := intField(info, "max_tokens")
	r := Row{
		ID:                              d.ModelName,
		Name:                            d.ModelName,
		Provider:                        provider(p),
		Category:                        ptr(SyncCategory),
		ContextLength:                   maxTokens,
		MaxTokens:                       maxTokens,
		TPM:                             limitField(p, "tpm"),
		RPM:                             limitField(p, "rpm"),
		InputCostPerToken:               ptr(cost(info, p, "input_cost_per_token")),
		OutputCostPerToken:              ptr(cost(info, p, "output_cost_per_token")),
		SupportsVision:                  boolField(info, "supports_vision"),
		SupportsFunctionCalling:         boolField(info, "supports_function_calling"),
		SupportsToolChoice:              boolField(info, "supports_tool_choice"),
		SupportsParallelFunctionCalling: boolField(info, "supports_parallel_function_calling"),
		SupportsStreaming:               true,
		Features:                        Features(info),
		Availability:                    "available",
		Version:                         ptr(SyncVersion),
		APIBase:                         stringField(p, "api_base"),
		BackendModelName:                backendModelName(p),
		LiteLLMModelID:                  stringField(info, "id"),
		Metadata:                        Metadata(d),
	}
	return r
}

// Metadata is the metadata column the backend writes: the deployment's model_info and
// litellm_params. Credentials are dropped: LiteLLM never returns them, and the job must not store them.
func Metadata(d litellm.Deployment) []byte {
	params := map[string]any{}
	for k, v := range d.LiteLLMParams {
		if k == "api_key" {
			continue
		}
		params[k] = v
	}
	info := d.ModelInfo
	if info == nil {
		info = map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"litellm_model_info": info, "litellm_params": params})
	if err != nil {
		// Values come from JSON or from the catalog: always encodable.
		panic(err)
	}
	return b
}

// Features is the features array in the exact order the backend's comparison expects.
func Features(info map[string]any) []string {
	var f []string
	for _, c := range []struct{ flag, feature string }{
		{"supports_function_calling", "function_calling"},
		{"supports_parallel_function_calling", "parallel_function_calling"},
		{"supports_tool_choice", "tool_choice"},
		{"supports_vision", "vision"},
	} {
		if boolField(info, c.flag) {
			f = append(f, c.feature)
		}
	}
	switch {
	case boolField(info, "supports_embeddings"):
		f = append(f, "embeddings")
	case boolField(info, "supports_convert"):
		f = append(f, "convert")
	default:
		f = append(f, "chat")
	}
	if boolField(info, "supports_tokenize") {
		f = append(f, "tokenize")
	}
	return f
}

// Drift lists the columns of row r that the backend's sync would rewrite for LiteLLM deployment d
// (its modelsEqual check). An empty result means r is a fixed point: a backend restart leaves it alone.
func Drift(r Row, d litellm.Deployment) []string {
	want := FromDeployment(d)
	var diff []string
	add := func(ok bool, col string) {
		if !ok {
			diff = append(diff, col)
		}
	}
	add(r.Availability == "available", "availability")
	add(eqStr(r.Version, want.Version), "version")
	add(r.SupportsStreaming, "supports_streaming")
	add(eqInt(r.ContextLength, want.ContextLength), "context_length")
	add(eqInt(r.MaxTokens, want.MaxTokens), "max_tokens")
	add(eqCost(r.InputCostPerToken, *want.InputCostPerToken), "input_cost_per_token")
	add(eqCost(r.OutputCostPerToken, *want.OutputCostPerToken), "output_cost_per_token")
	add(r.SupportsVision == want.SupportsVision, "supports_vision")
	add(r.SupportsFunctionCalling == want.SupportsFunctionCalling, "supports_function_calling")
	add(r.SupportsToolChoice == want.SupportsToolChoice, "supports_tool_choice")
	add(r.SupportsParallelFunctionCalling == want.SupportsParallelFunctionCalling, "supports_parallel_function_calling")
	add(slices.Equal(r.Features, want.Features), "features")
	add(eqStr(r.APIBase, want.APIBase), "api_base")
	add(eqStr(r.BackendModelName, want.BackendModelName), "backend_model_name")
	add(eqInt(r.TPM, want.TPM), "tpm")
	add(eqInt(r.RPM, want.RPM), "rpm")
	add(eqStr(r.LiteLLMModelID, want.LiteLLMModelID), "litellm_model_id")
	return diff
}

// StartupDrift lists what the backend's two start-up updates would change: it fills
// litellm_model_id and restricted_access where they are NULL. The job writes both non-NULL.
func StartupDrift(r Row) []string {
	if r.LiteLLMModelID == nil {
		return []string{"litellm_model_id"}
	}
	return nil
}

func provider(p map[string]any) string {
	if s := stringField(p, "custom_llm_provider"); s != nil && *s != "" {
		return *s
	}
	if m := stringField(p, "model"); m != nil {
		before, _, _ := strings.Cut(*m, "/")
		return before
	}
	return ""
}

func backendModelName(p map[string]any) *string {
	m := stringField(p, "model")
	if m == nil {
		return nil
	}
	if _, after, ok := strings.Cut(*m, "/"); ok {
		return &after
	}
	return m
}

// cost follows the backend: model_info's value, else litellm_params', else 0.
func cost(info, p map[string]any, key string) float64 {
	if v, ok := number(info[key]); ok {
		return v
	}
	if v, ok := number(p[key]); ok {
		return v
	}
	return 0
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	}
	return 0, false
}

func intField(m map[string]any, key string) *int32 {
	v, ok := number(m[key])
	if !ok {
		return nil
	}
	i := int32(v)
	return &i
}

// limitField reads tpm/rpm, where the backend treats 0 as absent.
func limitField(m map[string]any, key string) *int32 {
	i := intField(m, key)
	if i == nil || *i == 0 {
		return nil
	}
	return i
}

// boolField is strict as the backend is: only a JSON true counts (a 1 does not).
func boolField(m map[string]any, key string) bool {
	b, ok := m[key].(bool)
	return ok && b
}

func stringField(m map[string]any, key string) *string {
	s, ok := m[key].(string)
	if !ok {
		return nil
	}
	return &s
}

func eqStr(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func eqInt(a, b *int32) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func eqCost(a *float64, b float64) bool {
	return a != nil && math.Abs(*a-b) < CostTolerance
}

func ptr[T any](v T) *T { return &v }
