package manifests

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/ha"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/parity"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/syncjob"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/wiring"
)

// haChecks are the checks of a production overlay that need nothing but its objects (see appChecks):
// its Secrets, sync Job and database come from the ha component.
var haChecks = append(slices.Clip(commonChecks),
	objectCheck{"Secret references", func(objs []*unstructured.Unstructured) []string {
		return wiring.CheckSecretRefsIn(objs, ha.HASecretContract())
	}},
	objectCheck{"sync Job", func(objs []*unstructured.Unstructured) []string { return syncjob.CheckSyncJobWith(objs, ha.HASyncJob) }},
	objectCheck{"ha profile", ha.CheckHAProfile},
	objectCheck{"CloudNativePG role defaults", ha.CheckCNPGRoleDefaults},
	objectCheck{"database TLS", ha.CheckNoSSLDisable},
)

// checkHA: the rate limits from cluster-settings, and the cluster part's admission policy admitting the
// role Secrets.
func (c *Checker) checkHA(t targets.Target, objs []*unstructured.Unstructured) []string {
	var p []string
	if t.Settings != "" {
		settings, err := targets.SettingsData(c.Root, t.Settings)
		if err != nil {
			return []string{err.Error()}
		}
		p = append(p, parity.CheckRateLimits(objs, settings)...)
	}
	if t.Cluster == "" {
		return append(p, "no cluster/ part: the secrets job's admission policy must admit the role Secrets (components/ha/cluster)")
	}
	cluster, err := c.Render(t.Cluster)
	if err != nil {
		return append(p, fmt.Sprintf("cluster part %s: %v", t.Cluster, err))
	}
	return append(p, ha.CheckHAClusterPart(cluster)...)
}
