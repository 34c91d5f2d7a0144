package manifests

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

// The NetworkPolicy truth table, the hardening checks and the Job deadlines are in the tables that
// `litemaas-ops check` runs, for both kinds of overlay: a break shows under its rule.
func TestChecksRunByLitemaasOpsCheck(t *testing.T) {
	type table = []objectCheck
	kinds := []struct {
		name    string
		overlay string
		checks  table
	}{
		{"overlay", "gitops/overlays/example", appChecks},
		{"production overlay", "gitops/overlays/example-ha", haChecks},
	}
	tests := []struct {
		rule    string
		appOnly bool
		breakIt func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured
		want    string
	}{
		{"NetworkPolicy", false, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.MustFind(t, o, "NetworkPolicy", "default-deny-ingress")
			return manifeststest.DeleteObject(o, "NetworkPolicy", "default-deny-ingress")
		}, "no default-deny policy"},
		{"HSTS", false, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			unstructured.RemoveNestedField(manifeststest.MustFind(t, o, "Route", "litellm").Object, "metadata", "annotations", workload.AnnotationHSTS)
			return o
		}, "Route/litellm: annotation"},
		{"service account tokens", false, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			unstructured.RemoveNestedField(manifeststest.MustFind(t, o, "Deployment", "backend").Object, "spec", "template", "spec", "automountServiceAccountToken")
			return o
		}, "Deployment/backend: automountServiceAccountToken is not false"},
		{"read-only root", false, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend"), false, "securityContext", "readOnlyRootFilesystem")
			return o
		}, "Deployment/backend container backend: readOnlyRootFilesystem is not true"},
		{"login TLS", false, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "OPENSHIFT_API_URL", "https://api.cluster.example.com:6443")
			return o
		}, "OPENSHIFT_API_URL"},
		{"TLS verification", false, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "litellm", "litellm", "NODE_TLS_REJECT_UNAUTHORIZED", "0")
			return o
		}, "env NODE_TLS_REJECT_UNAUTHORIZED is set"},
		{"Job deadlines", false, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "Job", objects.SyncJobName).Object, int64(900), "spec", "activeDeadlineSeconds")
			return o
		}, "Job/" + objects.SyncJobName + ": activeDeadlineSeconds 900"},
		{"database roles", true, func(t *testing.T, o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.ContainerOf(t, o, "StatefulSet", "postgres", "postgres"), []any{"postgres"}, "command")
			return o
		}, "does not run /etc/litemaas/postgres/start.sh"},
	}
	for _, k := range kinds {
		for _, tt := range tests {
			if tt.appOnly && k.name != "overlay" {
				continue
			}
			t.Run(k.name+"/"+tt.rule, func(t *testing.T) {
				byRule := func(objs []*unstructured.Unstructured) map[string][]string {
					out := map[string][]string{}
					for _, c := range k.checks {
						out[c.rule] = append(out[c.rule], c.check(objs)...)
					}
					return out
				}
				good := byRule(manifeststest.Rendered(t, k.overlay))
				require.Contains(t, good, tt.rule, "rule %q is not in the %s checks", tt.rule, k.name)
				require.Empty(t, good[tt.rule], "the unbroken overlay passes")
				broken := byRule(tt.breakIt(t, manifeststest.Rendered(t, k.overlay)))
				assert.Contains(t, strings.Join(broken[tt.rule], "\n"), tt.want)
			})
		}
	}
}
