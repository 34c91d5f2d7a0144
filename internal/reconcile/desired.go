package reconcile

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"sort"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
)

// ManagedBy marks, inside model_info, the deployments this job owns. Only those are ever pruned.
const ManagedBy = "litemaas-sync"

// Keys the job adds to model_info.
const (
	keyManagedBy = "managed_by"
	// keyAPIKeyDigest lets a re-run see that a model's API key changed although LiteLLM never
	// returns keys. It is an HMAC keyed with the master key, so it reveals nothing about the key.
	keyAPIKeyDigest = "litemaas_sync_api_key_hmac"
	keyCatalogID    = "litemaas_sync_model"
)

// noAPIKey is what LiteLLM's OpenAI client gets for servers without authentication, as the
// original runbook sends: without any key the client refuses to call.
const noAPIKey = "none"

// idNamespace seeds the name-based UUIDs of the deployments (RFC 9562 version 5).
var idNamespace = [16]byte{0x6c, 0x69, 0x74, 0x65, 0x6d, 0x61, 0x61, 0x73, 0x2d, 0x73, 0x79, 0x6e, 0x63, 0x2d, 0x69, 0x64}

// DeploymentIDs are the two LiteLLM deployment ids the job may use for a catalog id. They are
// deterministic, so a re-run finds its own deployments with no state store. The second one exists
// for replacements: LiteLLM's PATCH merges and cannot remove a field, so a deployment that must
// lose one (a tpm or rpm limit) is replaced by creating the other id first and then deleting the
// old one, and the model never drops out of LiteLLM.
func DeploymentIDs(modelID string) [2]string {
	return [2]string{uuid5(modelID), uuid5(modelID + "#replacement")}
}

func uuid5(name string) string {
	h := sha1.New()
	h.Write(idNamespace[:])
	h.Write([]byte(name))
	s := h.Sum(nil)
	s[6] = (s[6] & 0x0f) | 0x50
	s[8] = (s[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

// desiredDeployment is what LiteLLM must hold for a served catalog model, with deployment id id.
// model_info carries what the backend's sync reads (max_tokens, capabilities as JSON booleans,
// costs) so that the row it computes equals the row the job writes.
func desiredDeployment(m catalog.Model, id, apiKey, masterKey string) litellm.Deployment {
	params := map[string]any{
		"model":                 m.Model,
		"api_base":              m.APIBase,
		"api_key":               apiKey,
		"input_cost_per_token":  m.InputCostPerToken,
		"output_cost_per_token": m.OutputCostPerToken,
	}
	if m.TPM > 0 {
		params["tpm"] = m.TPM
	}
	if m.RPM > 0 {
		params["rpm"] = m.RPM
	}
	info := map[string]any{
		"id":                                 id,
		"db_model":                           true,
		keyManagedBy:                         ManagedBy,
		keyCatalogID:                         m.ID,
		keyAPIKeyDigest:                      apiKeyDigest(masterKey, apiKey),
		"max_tokens":                         m.ContextLength,
		"supports_function_calling":          m.SupportsFunctionCalling,
		"supports_parallel_function_calling": m.SupportsParallelFunctionCalling,
		"supports_tool_choice":               m.SupportsToolChoice,
		"supports_vision":                    m.SupportsVision,
		"input_cost_per_token":               m.InputCostPerToken,
		"output_cost_per_token":              m.OutputCostPerToken,
	}
	return litellm.Deployment{ModelName: m.ID, LiteLLMParams: params, ModelInfo: info}
}

func apiKeyDigest(masterKey, apiKey string) string {
	mac := hmac.New(sha256.New, []byte(masterKey))
	mac.Write([]byte(apiKey))
	return hex.EncodeToString(mac.Sum(nil))[:32]
}

// desiredRow is the backend row for a catalog model: every column the backend's sync compares is
// computed by the sync's own rule from the deployment (so a backend restart rewrites nothing), and
// the display columns come from the catalog (the sync keeps them while the row is a fixed point).
func desiredRow(m catalog.Model, d litellm.Deployment) modelsync.Row {
	// The row's metadata must never hold the model's API key.
	r := modelsync.FromDeployment(d)
	r.Name = m.Name
	r.Provider = m.Provider
	r.Description = optional(m.Description)
	r.Category = optional(m.Category)
	r.RestrictedAccess = m.RestrictedAccess
	if !m.Served() {
		r.Availability = catalog.Unavailable
		r.SupportsStreaming = m.SupportsStreaming
	}
	return r
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deploymentDiff lists the owned fields where got differs from want. Fields the proxy adds, and the
// API key it never returns, are not compared; the key is compared through its digest.
func deploymentDiff(want, got litellm.Deployment) []string {
	var diff []string
	if want.ModelName != got.ModelName {
		diff = append(diff, "model_name")
	}
	diff = append(diff, mapDiff("litellm_params", want.LiteLLMParams, got.LiteLLMParams, map[string]bool{"api_key": true})...)
	diff = append(diff, mapDiff("model_info", want.ModelInfo, got.ModelInfo, nil)...)
	// A limit the catalog dropped is still set in LiteLLM: only a replacement removes it.
	for _, k := range []string{"tpm", "rpm"} {
		if _, wanted := want.LiteLLMParams[k]; !wanted && positive(got.LiteLLMParams[k]) {
			diff = append(diff, "litellm_params."+k+" (removed)")
		}
	}
	sort.Strings(diff)
	return diff
}

// needsReplacement reports whether a diff can only be applied by a new deployment.
func needsReplacement(diff []string) bool {
	for _, d := range diff {
		if d == "litellm_params.tpm (removed)" || d == "litellm_params.rpm (removed)" {
			return true
		}
	}
	return false
}

func mapDiff(prefix string, want, got map[string]any, skip map[string]bool) []string {
	var diff []string
	for k, w := range want {
		if skip[k] {
			continue
		}
		if !sameValue(w, got[k]) {
			diff = append(diff, prefix+"."+k)
		}
	}
	return diff
}

// sameValue compares a wanted value with one decoded from JSON: numbers as numbers (costs within
// the backend's own 1e-10), booleans only with JSON booleans (a 1 is not true for the backend).
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		return ok && g == w
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case int:
		g, ok := got.(float64)
		return ok && g == float64(w)
	case float64:
		g, ok := got.(float64)
		return ok && math.Abs(g-w) < 1e-10
	}
	return false
}

func positive(v any) bool {
	f, ok := v.(float64)
	return ok && f > 0
}
