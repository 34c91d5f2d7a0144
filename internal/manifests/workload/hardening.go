package workload

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// Hardening of what the overlays expose: HSTS on every Route, no Kubernetes token where a pod never
// calls the API, read-only root filesystems, and login that verifies the API server's certificate.

const (
	AnnotationHSTS = "haproxy.router.openshift.io/hsts_header"
	// minHSTSMaxAge is a year, the least the browsers' preload lists accept.
	minHSTSMaxAge = 31536000
	// inClusterAPI is the backend's OPENSHIFT_API_URL: always reachable from a pod and signed by a CA of
	// the ConfigMap kube-root-ca.crt.
	inClusterAPI = "https://kubernetes.default.svc"
)

// writableRoot lists the containers that run with a writable root filesystem, and why; the gitops
// README says the same. Any other container must set readOnlyRootFilesystem.
var writableRoot = map[string]string{
	"Deployment/frontend frontend": "its entrypoint writes the nginx configuration it renders from BACKEND_URL into /opt/app-root/etc " +
		"and reads the template from /tmp, where an emptyDir would hide it; the base image's start script writes there too",
	"Deployment/litellm litellm": "LiteLLM runs Prisma at start, which generates its client and migration state inside the image's Python packages",
}

var maxAgeRe = regexp.MustCompile(`(?i)(?:^|;)\s*max-age=(\d+)\s*(?:;|$)`)

// CheckHSTS: every Route sends Strict-Transport-Security for at least a year, and only over TLS that
// redirects plain HTTP.
func CheckHSTS(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		if o.GetKind() != "Route" {
			continue
		}
		v := o.GetAnnotations()[AnnotationHSTS]
		m := maxAgeRe.FindStringSubmatch(v)
		if m == nil {
			p.Addf("%s: annotation %s is %q, want max-age=%d or more", objects.Ref(o), AnnotationHSTS, v, minHSTSMaxAge)
			continue
		}
		if n, err := strconv.Atoi(m[1]); err != nil || n < minHSTSMaxAge {
			p.Addf("%s: HSTS max-age %s is less than a year (%d)", objects.Ref(o), m[1], minHSTSMaxAge)
		}
	}
	return p
}

// CheckServiceAccountTokens: a pod gets a Kubernetes token only when its ServiceAccount is bound to a
// Role or ClusterRole of the overlay (the hook Jobs); every other pod sets
// automountServiceAccountToken: false.
func CheckServiceAccountTokens(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	bound := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		for _, s := range objects.Maps(objects.ListAt(o.Object, "subjects")) {
			if objects.StringAt(s, "kind") == "ServiceAccount" {
				bound[objects.StringAt(s, "name")] = true
			}
		}
	}
	for _, pt := range objects.PodTemplates(objs) {
		sa := objects.StringAt(pt.Spec, "serviceAccountName")
		if sa != "" && bound[sa] {
			continue
		}
		if !objects.IsFalse(pt.Spec, "automountServiceAccountToken") {
			p.Addf("%s: automountServiceAccountToken is not false, yet ServiceAccount %q has no role here: the pod never calls the Kubernetes API", pt.Owner, objects.ServiceAccountOrDefault(sa))
		}
	}
	return p
}

// CheckReadOnlyRoot: every container sets readOnlyRootFilesystem, except those of writableRoot, which
// must not (a stale exception hides a regression elsewhere).
func CheckReadOnlyRoot(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, pt := range objects.PodTemplates(objs) {
		for _, c := range objects.ContainersOf(pt.Spec) {
			key := pt.Owner + " " + c.Name
			ro := objects.IsTrue(c.Spec, "securityContext", "readOnlyRootFilesystem")
			_, excepted := writableRoot[key]
			switch {
			case !ro && !excepted:
				p.Addf("%s container %s: readOnlyRootFilesystem is not true (mount an emptyDir where it writes)", pt.Owner, c.Name)
			case ro && excepted:
				p.Addf("%s container %s: read-only now; remove it from writableRoot and from gitops/README.md", pt.Owner, c.Name)
			}
		}
	}
	return p
}

// mountOf returns the volume behind a file path of a container, and the path inside that volume.
func mountOf(spec, c map[string]any, file string) (map[string]any, string) {
	for _, m := range objects.Maps(objects.ListAt(c, "volumeMounts")) {
		dir := strings.TrimSuffix(objects.StringAt(m, "mountPath"), "/")
		if rest, ok := strings.CutPrefix(file, dir+"/"); ok {
			for _, v := range objects.Maps(objects.ListAt(spec, "volumes")) {
				if objects.StringAt(v, "name") == objects.StringAt(m, "name") {
					return v, rest
				}
			}
		}
	}
	return nil, ""
}

// servesKubeRootCA reports whether vol holds the key ca.crt of ConfigMap kube-root-ca.crt at file.
func servesKubeRootCA(vol map[string]any, file string) bool {
	if objects.StringAt(vol, "configMap", "name") != "kube-root-ca.crt" {
		return false
	}
	items := objects.Maps(objects.ListAt(vol, "configMap", "items"))
	if len(items) == 0 {
		return file == "ca.crt"
	}
	return slices.ContainsFunc(items, func(it map[string]any) bool {
		return objects.StringAt(it, "key") == "ca.crt" && objects.StringAt(it, "path") == file
	})
}

// CheckLoginTLS: the backend reads users from the API server in-cluster, and NODE_EXTRA_CA_CERTS holds
// the API server's CA: mounted from kube-root-ca.crt, or joined into an emptyDir by an init container
// that reads it (component custom-ca).
func CheckLoginTLS(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	backend := objects.Find(objs, "Deployment", "backend")
	if backend == nil {
		return []string{"Deployment/backend is missing"}
	}
	spec := objects.MapAt(backend.Object, "spec", "template", "spec")
	c := objects.ContainerNamed(spec, "backend")
	if v, _ := objects.EnvValue(backend, "backend", "OPENSHIFT_API_URL"); v != inClusterAPI {
		p.Addf("Deployment/backend: OPENSHIFT_API_URL = %q, want %s (in-cluster, signed by kube-root-ca.crt)", v, inClusterAPI)
	}
	file, _ := objects.EnvValue(backend, "backend", "NODE_EXTRA_CA_CERTS")
	if !path.IsAbs(file) {
		return append(p, "Deployment/backend: NODE_EXTRA_CA_CERTS is not a file path; login could not verify the API server's certificate")
	}
	vol, rel := mountOf(spec, c, file)
	switch {
	case vol == nil:
		p.Addf("Deployment/backend: NODE_EXTRA_CA_CERTS %s is on no volume mount", file)
	case servesKubeRootCA(vol, rel):
	case objects.Has(vol, "emptyDir"):
		// Written at start: an init container must mount that emptyDir and kube-root-ca.crt's ca.crt,
		// and name both files.
		ok := false
		for _, ic := range objects.Maps(objects.ListAt(spec, "initContainers")) {
			cmd := strings.Join(objects.Strs(append(objects.ListAt(ic, "command"), objects.ListAt(ic, "args")...)), " ")
			writes, reads := false, false
			for _, m := range objects.Maps(objects.ListAt(ic, "volumeMounts")) {
				mp := strings.TrimSuffix(objects.StringAt(m, "mountPath"), "/")
				if objects.StringAt(m, "name") == objects.StringAt(vol, "name") && strings.Contains(cmd, mp+"/"+rel) {
					writes = true
				}
				for _, v := range objects.Maps(objects.ListAt(spec, "volumes")) {
					if objects.StringAt(v, "name") == objects.StringAt(m, "name") && servesKubeRootCA(v, "ca.crt") && strings.Contains(cmd, mp+"/ca.crt") {
						reads = true
					}
				}
			}
			ok = ok || (writes && reads)
		}
		if !ok {
			p.Addf("Deployment/backend: NODE_EXTRA_CA_CERTS %s is on an emptyDir that no init container fills from kube-root-ca.crt", file)
		}
	default:
		p.Addf("Deployment/backend: NODE_EXTRA_CA_CERTS %s is not the ca.crt of ConfigMap kube-root-ca.crt", file)
	}
	return p
}

var skipTLSVerifyRe = regexp.MustCompile(`(?i)K8S_API_SKIP_TLS_VERIFY\s*[=:]\s*"?true`)

// CheckTLSVerification: nothing anywhere turns certificate verification off. NODE_TLS_REJECT_UNAUTHORIZED
// in any form, and K8S_API_SKIP_TLS_VERIFY=true, are refused in every string of every object (env,
// commands, ConfigMap data).
func CheckTLSVerification(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		objects.WalkStrings(o.Object, "", func(where, s string) {
			if strings.Contains(s, "NODE_TLS_REJECT_UNAUTHORIZED") {
				p.Addf("%s: %s mentions NODE_TLS_REJECT_UNAUTHORIZED (use the custom-ca component instead)", objects.Ref(o), where)
			}
			if skipTLSVerifyRe.MatchString(s) {
				p.Addf("%s: %s sets K8S_API_SKIP_TLS_VERIFY=true", objects.Ref(o), where)
			}
		})
		for _, pt := range objects.PodTemplates([]*unstructured.Unstructured{o}) {
			for _, c := range objects.ContainersOf(pt.Spec) {
				for name, e := range objects.EnvOf(c.Spec) {
					switch {
					case name == "NODE_TLS_REJECT_UNAUTHORIZED":
						p.Addf("%s container %s: env NODE_TLS_REJECT_UNAUTHORIZED is set", pt.Owner, c.Name)
					case name == "K8S_API_SKIP_TLS_VERIFY" && strings.EqualFold(objects.StringAt(e, "value"), "true"):
						p.Addf("%s container %s: env K8S_API_SKIP_TLS_VERIFY=true", pt.Owner, c.Name)
					}
				}
			}
		}
	}
	return p
}

var getenvRe = regexp.MustCompile(`(?m)^\\getenv\s+\S+\s+(\S+)\s*$`)

// CheckDatabaseRoles: PostgreSQL starts through start.sh, which runs roles.sql with every password it
// reads from the environment; the backup CronJob connects as the read-only role; the backend and
// LiteLLM wait until their own URL logs in.
func CheckDatabaseRoles(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	pg := objects.Find(objs, "StatefulSet", "postgres")
	if pg == nil {
		return []string{"StatefulSet/postgres is missing"}
	}
	spec := objects.MapAt(pg.Object, "spec", "template", "spec")
	c := objects.ContainerNamed(spec, "postgres")
	if cmd := objects.Strs(objects.ListAt(c, "command")); !slices.Equal(cmd, []string{"/bin/sh", "/etc/litemaas/postgres/start.sh"}) {
		p.Addf("StatefulSet/postgres: command %v does not run /etc/litemaas/postgres/start.sh (the roles would never be set up)", cmd)
	}
	vol, _ := mountOf(spec, c, "/etc/litemaas/postgres/start.sh")
	cm := objects.Find(objs, "ConfigMap", objects.StringAt(vol, "configMap", "name"))
	if cm == nil || !strings.HasPrefix(cm.GetName(), "postgres-roles-") {
		p.Addf("StatefulSet/postgres: /etc/litemaas/postgres is not the generated ConfigMap postgres-roles")
		return p
	}
	data := objects.MapAt(cm.Object, "data")
	for _, k := range []string{"start.sh", "roles.sql", "move-ownership.sql"} {
		if objects.StringAt(data, k) == "" {
			p.Addf("ConfigMap/%s: no %s", cm.GetName(), k)
		}
	}
	env := objects.EnvOf(c)
	for _, m := range getenvRe.FindAllStringSubmatch(objects.StringAt(data, "roles.sql"), -1) {
		if objects.StringAt(env[m[1]], "valueFrom", "secretKeyRef", "name") != "postgres-secret" {
			p.Addf("StatefulSet/postgres: roles.sql reads %s, which the container does not take from postgres-secret", m[1])
		}
	}
	if cj := objects.Find(objs, "CronJob", "postgres-backup"); cj != nil {
		if v := objects.StringAt(objects.EnvOf(objects.ContainerNamed(objects.MapAt(cj.Object, "spec", "jobTemplate", "spec", "template", "spec"), "backup"))["PGUSER"], "value"); v != "litemaas_backup" {
			p.Addf("CronJob/postgres-backup: PGUSER %q, want the read-only role litemaas_backup", v)
		}
	}
	for _, name := range []string{"backend", "litellm"} {
		d := objects.Find(objs, "Deployment", name)
		if d == nil {
			continue
		}
		ps := objects.MapAt(d.Object, "spec", "template", "spec")
		want := objects.MapAt(objects.EnvOf(objects.ContainerNamed(ps, name))["DATABASE_URL"], "valueFrom", "secretKeyRef")
		ic := objects.ContainerNamed(objects.MapAt(map[string]any{"containers": objects.ListAt(ps, "initContainers")}), "wait-for-postgres")
		got := objects.MapAt(objects.EnvOf(ic)["DATABASE_URL"], "valueFrom", "secretKeyRef")
		cmd := strings.Join(objects.Strs(objects.ListAt(ic, "command")), " ")
		if want == nil || got == nil || objects.StringAt(got, "name") != objects.StringAt(want, "name") || objects.StringAt(got, "key") != objects.StringAt(want, "key") || !strings.Contains(cmd, `"$DATABASE_URL"`) {
			p.Addf("Deployment/%s: init container wait-for-postgres does not wait until the container's own DATABASE_URL logs in", name)
		}
	}
	return p
}
