package objects

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
)

// ModelsConfigMap returns the generated models ConfigMap (name with its content hash).
func ModelsConfigMap(objs []*unstructured.Unstructured) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), ModelsConfigMapPrefix) {
			return o
		}
	}
	return nil
}

// CatalogOf returns the models catalog (data key models.yaml of the generated models ConfigMap) as the
// Job will read it, or nil. The real catalog validator is meant to be applied to these bytes.
func CatalogOf(objs []*unstructured.Unstructured) []byte {
	cm := ModelsConfigMap(objs)
	if cm == nil {
		return nil
	}
	s, ok, _ := unstructured.NestedString(cm.Object, "data", ModelsConfigMapDataKey)
	if !ok {
		return nil
	}
	return []byte(s)
}

// CatalogModels returns the number of models in the rendered catalog, when it is valid.
func CatalogModels(objs []*unstructured.Unstructured) (int, bool) {
	data := CatalogOf(objs)
	if data == nil {
		return 0, false
	}
	c, err := catalog.Parse("models.yaml", data)
	if err != nil {
		return 0, false
	}
	return len(c.Models), true
}

// APIKeyEnvs maps the apiKeyEnv variables of the rendered catalog's models to the model naming each
// (empty when the catalog is missing or invalid: CheckCatalog reports that).
func APIKeyEnvs(objs []*unstructured.Unstructured) map[string]string {
	out := map[string]string{}
	data := CatalogOf(objs)
	if data == nil {
		return out
	}
	c, err := catalog.Parse("models.yaml", data)
	if err != nil {
		return out
	}
	for _, m := range c.Models {
		if m.APIKeyEnv != "" && out[m.APIKeyEnv] == "" {
			out[m.APIKeyEnv] = m.ID
		}
	}
	return out
}
