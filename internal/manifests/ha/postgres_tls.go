package ha

import (
	"path"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/secrets"
)

// haCASecret is the Secret CloudNativePG makes with the CA of the Cluster's server certificate: ca.crt,
// and ca.key, the CA's private key, which no pod of the stack may see.
const haCASecret = HACluster + "-ca"

// checkPostgresCA: in the production profile every role URL verifies PostgreSQL's certificate (the
// secrets job writes them with verify-full, or Prisma's sslaccept=strict, and its POSTGRES_CA_FILE), so
// every container that reads one mounts that file: the Cluster's CA Secret, projected to ca.crt alone,
// at the directory POSTGRES_CA_FILE names. A container without it fails to connect at start; a volume
// of the whole Secret would hand the CA's private key to the pod.
func checkPostgresCA(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	caFile, _ := objects.EnvValue(objects.Find(objs, "Job", "litemaas-secrets"), "litemaas-secrets", "POSTGRES_CA_FILE")
	if caFile == "" {
		p.Addf("Job/litemaas-secrets: no POSTGRES_CA_FILE: the role URLs would not verify CloudNativePG's certificate; set it to where the pods mount %s's ca.crt", haCASecret)
		return p
	}
	urlKeys := map[string][]string{}
	for _, rs := range secrets.RoleContract {
		for _, u := range rs.URLs {
			urlKeys[rs.Name] = append(urlKeys[rs.Name], u.Key)
		}
	}
	for _, pt := range objects.PodTemplates(objs) {
		caVolumes := map[string]bool{}
		for _, v := range objects.Maps(objects.ListAt(pt.Spec, "volumes")) {
			if objects.StringAt(v, "secret", "secretName") != haCASecret {
				continue
			}
			items := objects.Maps(objects.ListAt(v, "secret", "items"))
			if len(items) != 1 || objects.StringAt(items[0], "key") != "ca.crt" || objects.StringAt(items[0], "path") != path.Base(caFile) {
				p.Addf("%s: volume %s mounts Secret %s without items [{key: ca.crt, path: %s}]: the Secret also holds the CA's private key (ca.key)", pt.Owner, objects.StringAt(v, "name"), haCASecret, path.Base(caFile))
				continue
			}
			caVolumes[objects.StringAt(v, "name")] = true
		}
		for _, c := range objects.ContainersOf(pt.Spec) {
			if !readsRoleURL(c.Spec, urlKeys) {
				continue
			}
			mounted := false
			for _, m := range objects.Maps(objects.ListAt(c.Spec, "volumeMounts")) {
				if caVolumes[objects.StringAt(m, "name")] && path.Clean(objects.StringAt(m, "mountPath")) == path.Dir(caFile) {
					mounted = true
				}
			}
			if !mounted {
				p.Addf("%s container %s: reads a role URL that verifies PostgreSQL with %s, but does not mount Secret %s's ca.crt at %s", pt.Owner, c.Name, caFile, haCASecret, path.Dir(caFile))
			}
		}
	}
	return p
}

// readsRoleURL reports whether container c reads a database URL key of a role Secret.
func readsRoleURL(c map[string]any, urlKeys map[string][]string) bool {
	for _, e := range objects.Maps(objects.ListAt(c, "env")) {
		sk := objects.MapAt(e, "valueFrom", "secretKeyRef")
		if sk != nil && slices.Contains(urlKeys[objects.StringAt(sk, "name")], objects.StringAt(sk, "key")) {
			return true
		}
	}
	return false
}
