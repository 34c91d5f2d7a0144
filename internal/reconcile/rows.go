package reconcile

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"

	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
)

// RowDiff lists the columns where got differs from want, over every column the job writes.
func RowDiff(want, got modelsync.Row) []string {
	var diff []string
	add := func(same bool, col string) {
		if !same {
			diff = append(diff, col)
		}
	}
	add(want.Name == got.Name, "name")
	add(want.Provider == got.Provider, "provider")
	add(eqPtr(want.Description, got.Description), "description")
	add(eqPtr(want.Category, got.Category), "category")
	add(eqPtr(want.ContextLength, got.ContextLength), "context_length")
	add(eqPtr(want.MaxTokens, got.MaxTokens), "max_tokens")
	add(eqPtr(want.TPM, got.TPM), "tpm")
	add(eqPtr(want.RPM, got.RPM), "rpm")
	add(eqCost(want.InputCostPerToken, got.InputCostPerToken), "input_cost_per_token")
	add(eqCost(want.OutputCostPerToken, got.OutputCostPerToken), "output_cost_per_token")
	add(want.SupportsVision == got.SupportsVision, "supports_vision")
	add(want.SupportsFunctionCalling == got.SupportsFunctionCalling, "supports_function_calling")
	add(want.SupportsToolChoice == got.SupportsToolChoice, "supports_tool_choice")
	add(want.SupportsParallelFunctionCalling == got.SupportsParallelFunctionCalling, "supports_parallel_function_calling")
	add(want.SupportsStreaming == got.SupportsStreaming, "supports_streaming")
	add(slices.Equal(want.Features, got.Features), "features")
	add(want.Availability == got.Availability, "availability")
	add(eqPtr(want.Version, got.Version), "version")
	add(eqPtr(want.APIBase, got.APIBase), "api_base")
	add(eqPtr(want.LiteLLMModelID, got.LiteLLMModelID), "litellm_model_id")
	add(eqPtr(want.BackendModelName, got.BackendModelName), "backend_model_name")
	add(want.RestrictedAccess == got.RestrictedAccess, "restricted_access")
	add(sameJSON(want.Metadata, got.Metadata), "metadata")
	// A stored NULL read as the wanted default still needs writing.
	for _, col := range got.NullColumns {
		if !slices.Contains(diff, col) {
			diff = append(diff, col)
		}
	}
	return diff
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

// eqCost compares at the precision of the decimal(15,10) column.
func eqCost(a, b *float64) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return math.Abs(*a-*b) < modelsync.CostTolerance
}

func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
