package argocdtest

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/openshifttest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/stacktest"
)

// OpenShiftOptions choose the OpenShift stand-ins of internal/openshifttest. All are on unless turned
// off here: the tree targets OpenShift, and a test that wants a plain Kubernetes cluster says so.
type OpenShiftOptions struct {
	// NoPullSecrets turns off the ServiceAccount dockercfg pull-secret controller.
	NoPullSecrets bool
	// NoSCC turns off the namespaces' SCC annotations and the pods' UID assignment.
	NoSCC bool
	// NoOLM turns off OLM: the operators' CRDs are then installed up front, as before an operator
	// existed in the harness.
	NoOLM bool
	// Services, when set, backs the CloudNativePG stand-in with its PostgreSQL and points the
	// Clusters' Service names at it (Services.Rewrite); without it no CloudNativePG operator runs.
	Services *stacktest.Services
}

// OLMNamespaces are the namespaces of an OpenShift cluster that OLM objects live in: the global
// OperatorGroup's and the catalogs'.
var OLMNamespaces = []string{"openshift-operators", "openshift-marketplace"}

// cnpgCRD says whether u is one of CloudNativePG's CRDs (OLM installs them when it runs).
func cnpgCRD(u *unstructured.Unstructured) bool {
	g, _, _ := unstructured.NestedString(u.Object, "spec", "group")
	return u.GetKind() == "CustomResourceDefinition" && g == openshifttest.ClusterGVR.Group
}

// openShiftCRDs are the CRDs install applies for the stand-ins: OLM's own when it runs.
func openShiftCRDs(o OpenShiftOptions) ([]*unstructured.Unstructured, error) {
	if o.NoOLM {
		return nil, nil
	}
	crds, err := openshifttest.OLMCRDs()
	if err != nil {
		return nil, fmt.Errorf("reading OLM's CRDs: %w", err)
	}
	for _, ns := range OLMNamespaces {
		crds = append(crds, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns},
		}})
	}
	return crds, nil
}

// startOpenShift starts the stand-ins o asks for.
func (h *Harness) startOpenShift(ctx context.Context, o OpenShiftOptions) error {
	log := openshifttest.Logf(h.logf)
	cs, dyn := h.Kube.Clientset(), h.Kube.Dynamic()
	if !o.NoPullSecrets {
		h.PullSecrets = &openshifttest.PullSecrets{Client: cs, Log: log}
		if err := h.PullSecrets.Start(ctx, &h.wg); err != nil {
			return err
		}
	}
	if !o.NoSCC {
		h.SCC = &openshifttest.SCC{Client: cs, Log: log}
		if err := h.SCC.Start(ctx, &h.wg); err != nil {
			return err
		}
	}
	if !o.NoOLM {
		root, err := manifests.RepoRoot()
		if err != nil {
			return err
		}
		cat, err := manifests.LoadOLMCatalog(root)
		if err != nil {
			return err
		}
		h.OLM = &openshifttest.OLM{Dynamic: dyn, Catalog: cat, Log: log, Apply: h.Kube.ApplyObjects}
		if err := h.OLM.Start(ctx, &h.wg); err != nil {
			return err
		}
	}
	if o.Services != nil {
		svc := o.Services
		h.CNPG = &openshifttest.CNPG{Client: cs, Dynamic: dyn, AdminURL: svc.PG.URL, Database: svc.Database,
			OnDatabase: func(_, db string) { svc.TrackDatabase(db) }, Log: log}
		if err := h.CNPG.Start(ctx, &h.wg); err != nil {
			return err
		}
		svc.SetClusters(h.CNPG.Addr)
	}
	return nil
}
