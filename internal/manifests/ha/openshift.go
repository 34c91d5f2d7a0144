package ha

// Checks for what a real OpenShift cluster and its operators do to the objects after Argo CD applied
// them: where a controller or a CRD default writes into a field the tree also writes, the two fight,
// and the Application never stays Synced.

import (
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// CheckServiceAccountPullSecrets: no imagePullSecrets on a ServiceAccount. OpenShift's ServiceAccount
// controller (openshift-controller-manager, serviceaccounts/dockercfg) appends <sa>-dockercfg-<suffix>
// to every ServiceAccount's imagePullSecrets; the list is atomic for Argo CD's diff, so a list in git
// differs from the live one on every comparison. Pull secrets belong in the pod templates.
func CheckServiceAccountPullSecrets(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		if o.GetKind() == "ServiceAccount" && objects.Has(o.Object, "imagePullSecrets") {
			p.Addf("%s: imagePullSecrets on a ServiceAccount fights OpenShift's dockercfg controller (it appends <sa>-dockercfg-*; the list differs from git forever): name the pull Secret in the pod templates instead", objects.Ref(o))
		}
	}
	return p
}

// CNPGRoleDefaults are the defaults of CloudNativePG's CRD (postgresql.cnpg.io_clusters.yaml,
// spec.managed.roles[].items, v1.27.1) for the fields of a managed role. The API server writes them
// into every role that omits them; Argo CD compares a list of objects as a whole, so a role without
// them differs from the live one on every comparison. TestCNPGRoleDefaultsFromCRD holds this table
// against the CRD.
var CNPGRoleDefaults = map[string]any{
	"connectionLimit": int64(-1),
	"ensure":          "present",
	"inherit":         true,
}

// CheckCNPGRoleDefaults: every managed role of every CloudNativePG Cluster writes the CRD's defaults
// out (a different value is fine: it is then what the API stores).
func CheckCNPGRoleDefaults(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		if o.GetKind() != "Cluster" || !strings.HasPrefix(o.GetAPIVersion(), "postgresql.cnpg.io/") {
			continue
		}
		for i, role := range objects.Maps(objects.ListAt(o.Object, "spec", "managed", "roles")) {
			name, _ := role["name"].(string)
			for _, field := range objects.SortedKeys(CNPGRoleDefaults) {
				if _, ok := role[field]; !ok {
					p.Addf("%s: managed.roles[%d] (%s) omits %s: the CRD defaults it to %v, so the live role differs from git on every comparison; write %s: %v", objects.Ref(o), i, name, field, CNPGRoleDefaults[field], field, CNPGRoleDefaults[field])
				}
			}
		}
	}
	return p
}

// CheckNoSSLDisable: in the production profile nothing turns TLS to PostgreSQL off or leaves it
// unverified: CloudNativePG serves TLS with its own CA, which the clients verify (sslmode=verify-full
// with sslrootcert). Any rendered string containing sslmode=disable (a URL, a config file, an argument)
// and a PGSSLMODE weaker than verify-full are reported.
func CheckNoSSLDisable(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		objects.WalkStrings(o.Object, "", func(path, s string) {
			if strings.Contains(strings.ToLower(s), "sslmode=disable") {
				p.Addf("%s: %s: sslmode=disable in the production profile; CloudNativePG serves TLS: connect with sslmode=verify-full and its CA", objects.Ref(o), strings.TrimPrefix(path, "."))
			}
		})
	}
	for _, pt := range objects.PodTemplates(objs) {
		for _, c := range objects.ContainersOf(pt.Spec) {
			if e, ok := objects.EnvOf(c.Spec)["PGSSLMODE"]; ok && objects.StringAt(e, "value") != "verify-full" {
				p.Addf("%s container %s: PGSSLMODE=%q; use verify-full", pt.Owner, c.Name, objects.StringAt(e, "value"))
			}
		}
	}
	return p
}
