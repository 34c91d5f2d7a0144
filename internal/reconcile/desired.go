package reconcile

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
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

// noAPIKey is what LiteLLM's OpenAI client gets for servers without authentication (vLLM without
// --api-key accepts any value), as the original runbook sends: an empty or absent key is not "no
// key" to LiteLLM, whose client then refuses every completion.
const noAPIKey = "none"

// idNamespace seeds the name-based UUIDs of the deployments (RFC 9562 version 5).
var idNamespace = [16]byte{0x6c, 0x69, 0x74, 0x65, 0x6d, 0x61, 0x61, 0x73, 0x2d, 0x73, 0x79, 0x6e, 0x63, 0x2d, 0x69, 0x64}

// DeploymentIDs are the two LiteLLM deployment ids the job may use for a catalog model as it is now.
// They are derived from the deployment's whole content, so a re-run finds its own deployment with no
// state store, and any change of the model is a new id: the job creates the new deployment, then
// deletes the old one. That is the only kind of change every LiteLLM replica sees without a restart
// (their database poll takes in new ids and drops deleted ones, but never reloads model_info or
// model_name), and the model never drops out of LiteLLM on the way. The second id is for a
// deployment that holds the first with other values (edited by hand): it is replaced the same way.
func DeploymentIDs(m catalog.Model, apiKey, masterKey string) [2]string {
	h := contentHash(desiredDeployment(m, "", apiKey, masterKey))
	return [2]string{uuid5(m.ID + "#" + h), uuid5(m.ID + "#" + h + "#replacement")}
}

// contentHash digests everything the job sets except the id. The API key enters only through its
// HMAC in model_info, so the id reveals nothing about it.
func contentHash(d litellm.Deployment) string {
	params := maps.Clone(d.LiteLLMParams)
	delete(params, "api_key")
	info := maps.Clone(d.ModelInfo)
	delete(info, "id")
	// encoding/json writes map keys sorted: the digest does not depend on map order.
	b, err := json.Marshal([]any{d.ModelName, params, info})
	if err != nil {
		panic(fmt.Sprintf("reconcile: encoding the deployment of %s: %v", d.ModelName, err))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
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
	if apiKey == "" {
		apiKey = noAPIKey
	}
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
	if id != "" {
		info["id"] = id
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
