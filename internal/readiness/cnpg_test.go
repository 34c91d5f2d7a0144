package readiness

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestCNPGClusterReady(t *testing.T) {
	data, err := os.ReadFile("testdata/cnpg-clusters.yaml")
	require.NoError(t, err)
	var cases []struct {
		Name   string         `json:"name"`
		Ready  bool           `json:"ready"`
		State  string         `json:"state"`
		Object map[string]any `json:"object"`
	}
	require.NoError(t, yaml.Unmarshal(data, &cases))
	require.NotEmpty(t, cases)
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			// Through JSON, as the API server's objects arrive: numbers become int64.
			tc.Object["apiVersion"], tc.Object["kind"] = "postgresql.cnpg.io/v1", "Cluster"
			data, err := json.Marshal(tc.Object)
			require.NoError(t, err)
			obj := &unstructured.Unstructured{}
			require.NoError(t, obj.UnmarshalJSON(data))
			ready, state := CNPGClusterReady(obj)
			assert.Equal(t, tc.Ready, ready)
			assert.Equal(t, tc.State, state)
		})
	}
}

func TestSplitCNPGClusters(t *testing.T) {
	tests := []struct {
		in       string
		clusters []string
		rest     string
		err      string
	}{
		{in: "statefulset/postgres,deployment/litellm", rest: "statefulset/postgres,deployment/litellm"},
		{in: "cluster.postgresql.cnpg.io/litemaas-db,deployment/litellm,deployment/backend", clusters: []string{"litemaas-db"}, rest: "deployment/litellm,deployment/backend"},
		{in: " Clusters.postgresql.cnpg.io/a , cluster.postgresql.cnpg.io/a,deployment/x", clusters: []string{"a"}, rest: "deployment/x"},
		{in: "", rest: ""},
		{in: "cluster.postgresql.cnpg.io/Bad_Name", err: `invalid Cluster name "Bad_Name"`},
		// Not a CNPG kind: left to rollout.ParseWorkloads, which rejects it with its own message.
		{in: "cluster/litemaas-db", rest: "cluster/litemaas-db"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			clusters, rest, err := SplitCNPGClusters(tt.in)
			if tt.err != "" {
				require.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.clusters, clusters)
			assert.Equal(t, tt.rest, rest)
		})
	}
}

// CNPGWaiter itself (watch by name under a Role with resourceNames, reacting to a status update) is
// tested against a real kube-apiserver with CloudNativePG's CRD in internal/manifests/ha (ha_test.go).
