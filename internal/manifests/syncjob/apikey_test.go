package syncjob

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/wiring"
)

// A model's API key, as the README says to give it: apiKeyEnv in the catalog, and the Job's env from the
// user's own Secret. The sync Job and Secret checks accept exactly that.
func TestAPIKeyEnvFromTheUsersSecret(t *testing.T) {
	withModel := func(t *testing.T) []*unstructured.Unstructured {
		objs := manifeststest.Rendered(t, manifeststest.SampleOverlay(t).Dir)
		cm := objects.ModelsConfigMap(objs)
		s := objects.StringAt(cm.Object, "data", objects.ModelsConfigMapDataKey)
		manifeststest.Set(t, cm.Object, s+"  - id: llama-3-8b\n    name: Llama\n    contextLength: 8192\n    apiBase: https://llm.example.net/v1\n    apiKeyEnv: LLAMA_API_KEY\n", "data", objects.ModelsConfigMapDataKey)
		return objs
	}
	addEnv := func(t *testing.T, objs []*unstructured.Unstructured, e map[string]any) {
		c := manifeststest.ContainerOf(t, objs, "Job", objects.SyncJobName, objects.SyncJobName)
		c["env"] = append(objects.ListAt(c, "env"), e)
	}
	fromSecret := func(name string) map[string]any {
		return map[string]any{"name": name, "valueFrom": map[string]any{"secretKeyRef": map[string]any{"name": "llama-api-key", "key": "key"}}}
	}
	tests := []struct {
		name  string
		build func(t *testing.T) []*unstructured.Unstructured
		want  []string // substrings of reported problems; none: passes
	}{
		{"env from the user's Secret", func(t *testing.T) []*unstructured.Unstructured {
			o := withModel(t)
			addEnv(t, o, fromSecret("LLAMA_API_KEY"))
			return o
		}, nil},
		{"env missing", withModel, []string{"no env LLAMA_API_KEY, which model llama-3-8b names in apiKeyEnv"}},
		{"env as a literal", func(t *testing.T) []*unstructured.Unstructured {
			o := withModel(t)
			addEnv(t, o, map[string]any{"name": "LLAMA_API_KEY", "value": "sk-in-git"})
			return o
		}, []string{"env LLAMA_API_KEY (apiKeyEnv of model llama-3-8b) must come from a Secret"}},
		{"env no model names", func(t *testing.T) []*unstructured.Unstructured {
			o := manifeststest.Rendered(t, manifeststest.SampleOverlay(t).Dir)
			addEnv(t, o, fromSecret("OTHER_KEY"))
			return o
		}, []string{"env names", "llama-api-key/key, which is not in the Secret contract"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := tt.build(t)
			got := strings.Join(append(CheckSyncJob(objs), wiring.CheckSecretRefs(objs)...), "\n")
			if len(tt.want) == 0 {
				assert.Empty(t, got)
			}
			for _, w := range tt.want {
				assert.Contains(t, got, w)
			}
		})
	}
}
