package deploy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// The user workload monitoring row: from the ConfigMap OpenShift's monitoring operator reads, for an
// overlay that ships alerts (the production example renders the PrometheusRule and a PodMonitor).
func TestUserWorkloadMonitoringRow(t *testing.T) {
	root, err := manifests.RepoRoot()
	require.NoError(t, err)
	ha, err := manifests.Render(root + "/gitops/overlays/example-ha")
	require.NoError(t, err)
	plain, err := manifests.Render(root + "/gitops/overlays/example")
	require.NoError(t, err)

	cm := func(config string) *corev1.ConfigMap {
		return &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: monitoringConfigMap, Namespace: monitoringNamespace},
			Data:       map[string]string{monitoringConfigKey: config},
		}
	}
	tests := []struct {
		name       string
		objs       []*unstructured.Unstructured
		existing   []runtime.Object
		forbidden  bool
		wantStatus string // "" = no report.Row
		want       string
	}{
		{"on", ha, []runtime.Object{cm("enableUserWorkload: true\n")}, false, report.StatusOK, "PrometheusRule/litemaas evaluated"},
		{"no ConfigMap", ha, nil, false, report.StatusWarn, "off (no ConfigMap openshift-monitoring/cluster-monitoring-config)"},
		{"explicitly off", ha, []runtime.Object{cm("enableUserWorkload: false\n")}, false, report.StatusWarn, "enableUserWorkload is not true"},
		{"other settings only", ha, []runtime.Object{cm("prometheusK8s:\n  retention: 24h\n")}, false, report.StatusWarn, "enableUserWorkload is not true"},
		{"config.yaml that does not parse", ha, []runtime.Object{cm("enableUserWorkload: [\n")}, false, report.StatusWarn, "does not parse"},
		{"a string, not a boolean", ha, []runtime.Object{cm("enableUserWorkload: \"yes\"\n")}, false, report.StatusWarn, "does not parse"},
		{"not allowed to read it", ha, nil, true, report.StatusWarn, "cannot read ConfigMap"},
		{"an overlay without alerts", plain, nil, false, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc := fake.NewClientset(tt.existing...)
			if tt.forbidden {
				kc.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, monitoringConfigMap, nil)
				})
			}
			rows := checkUserWorkloadMonitoring(context.Background(), &cluster.Cluster{Kube: kc}, tt.objs)
			if tt.wantStatus == "" {
				assert.Empty(t, rows)
				return
			}
			require.Len(t, rows, 1)
			assert.Equal(t, tt.wantStatus, rows[0].Status)
			assert.Contains(t, rows[0].Detail, tt.want)
			if tt.wantStatus == report.StatusWarn && !tt.forbidden && tt.name != "config.yaml that does not parse" && tt.name != "a string, not a boolean" {
				assert.Contains(t, rows[0].Detail, "enableUserWorkload: true", "the row says how to turn it on")
			}
		})
	}
}
