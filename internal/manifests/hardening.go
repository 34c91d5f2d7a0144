package manifests

import (
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Hardening of what the overlays expose: HSTS on every Route, no Kubernetes token where a pod never
// calls the API, read-only root filesystems, and login that verifies the API server's certificate.

const (
	annotationHSTS = "haproxy.router.openshift.io/hsts_header"
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

// checkHSTS: every Route sends Strict-Transport-Security for at least a year, and only over TLS that
// redirects plain HTTP.
func checkHSTS(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, o := range objs {
		if o.GetKind() != "Route" {
			continue
		}
		v := o.GetAnnotations()[annotationHSTS]
		m := maxAgeRe.FindStringSubmatch(v)
		if m == nil {
			p.addf("%s: annotation %s is %q, want max-age=%d or more", ref(o), annotationHSTS, v, minHSTSMaxAge)
			continue
		}
		if n, err := strconv.Atoi(m[1]); err != nil || n < minHSTSMaxAge {
			p.addf("%s: HSTS max-age %s is less than a year (%d)", ref(o), m[1], minHSTSMaxAge)
		}
	}
	return p
}

// checkServiceAccountTokens: a pod gets a Kubernetes token only when its ServiceAccount is bound to a
// Role or ClusterRole of the overlay (the hook Jobs); every other pod sets
// automountServiceAccountToken: false.
func checkServiceAccountTokens(objs []*unstructured.Unstructured) []string {
	var p problems
	bound := map[string]bool{}
	for _, o := range objs {
		if o.GetKind() != "RoleBinding" && o.GetKind() != "ClusterRoleBinding" {
			continue
		}
		for _, s := range maps(listAt(o.Object, "subjects")) {
			if stringAt(s, "kind") == "ServiceAccount" {
				bound[stringAt(s, "name")] = true
			}
		}
	}
	for _, pt := range podTemplates(objs) {
		sa := stringAt(pt.spec, "serviceAccountName")
		if sa != "" && bound[sa] {
			continue
		}
		if !isFalse(pt.spec, "automountServiceAccountToken") {
			p.addf("%s: automountServiceAccountToken is not false, yet ServiceAccount %q has no role here: the pod never calls the Kubernetes API", pt.owner, orDefault(sa))
		}
	}
	return p
}

func orDefault(sa string) string {
	if sa == "" {
		return "default"
	}
	return sa
}

// checkReadOnlyRoot: every container sets readOnlyRootFilesystem, except those of writableRoot, which
// must not (a stale exception hides a regression elsewhere).
func checkReadOnlyRoot(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, pt := range podTemplates(objs) {
		for _, c := range containersOf(pt.spec) {
			key := pt.owner + " " + c.name
			ro := isTrue(c.spec, "securityContext", "readOnlyRootFilesystem")
			_, excepted := writableRoot[key]
			switch {
			case !ro && !excepted:
				p.addf("%s container %s: readOnlyRootFilesystem is not true (mount an emptyDir where it writes)", pt.owner, c.name)
			case ro && excepted:
				p.addf("%s container %s: read-only now; remove it from writableRoot and from gitops/README.md", pt.owner, c.name)
			}
		}
	}
	return p
}

// mountOf returns the volume behind a file path of a container, and the path inside that volume.
func mountOf(spec, c map[string]any, file string) (map[string]any, string) {
	for _, m := range maps(listAt(c, "volumeMounts")) {
		dir := strings.TrimSuffix(stringAt(m, "mountPath"), "/")
		if rest, ok := strings.CutPrefix(file, dir+"/"); ok {
			for _, v := range maps(listAt(spec, "volumes")) {
				if stringAt(v, "name") == stringAt(m, "name") {
					return v, rest
				}
			}
		}
	}
	return nil, ""
}

// servesKubeRootCA reports whether vol holds the key ca.crt of ConfigMap kube-root-ca.crt at file.
func servesKubeRootCA(vol map[string]any, file string) bool {
	if stringAt(vol, "configMap", "name") != "kube-root-ca.crt" {
		return false
	}
	items := maps(listAt(vol, "configMap", "items"))
	if len(items) == 0 {
		return file == "ca.crt"
	}
	return slices.ContainsFunc(items, func(it map[string]any) bool { return stringAt(it, "key") == "ca.crt" && stringAt(it, "path") == file })
}

// checkLoginTLS: the backend reads users from the API server in-cluster, and NODE_EXTRA_CA_CERTS holds
// the API server's CA: mounted from kube-root-ca.crt, or joined into an emptyDir by an init container
// that reads it (component custom-ca).
func checkLoginTLS(objs []*unstructured.Unstructured) []string {
	var p problems
	backend := Find(objs, "Deployment", "backend")
	if backend == nil {
		return []string{"Deployment/backend is missing"}
	}
	spec := mapAt(backend.Object, "spec", "template", "spec")
	c := containerNamed(spec, "backend")
	if v, _ := envValue(backend, "backend", "OPENSHIFT_API_URL"); v != inClusterAPI {
		p.addf("Deployment/backend: OPENSHIFT_API_URL = %q, want %s (in-cluster, signed by kube-root-ca.crt)", v, inClusterAPI)
	}
	file, _ := envValue(backend, "backend", "NODE_EXTRA_CA_CERTS")
	if !path.IsAbs(file) {
		return append(p, "Deployment/backend: NODE_EXTRA_CA_CERTS is not a file path; login could not verify the API server's certificate")
	}
	vol, rel := mountOf(spec, c, file)
	switch {
	case vol == nil:
		p.addf("Deployment/backend: NODE_EXTRA_CA_CERTS %s is on no volume mount", file)
	case servesKubeRootCA(vol, rel):
	case has(vol, "emptyDir"):
		// Written at start: an init container must mount that emptyDir and kube-root-ca.crt's ca.crt,
		// and name both files.
		ok := false
		for _, ic := range maps(listAt(spec, "initContainers")) {
			cmd := strings.Join(strs(append(listAt(ic, "command"), listAt(ic, "args")...)), " ")
			writes, reads := false, false
			for _, m := range maps(listAt(ic, "volumeMounts")) {
				mp := strings.TrimSuffix(stringAt(m, "mountPath"), "/")
				if stringAt(m, "name") == stringAt(vol, "name") && strings.Contains(cmd, mp+"/"+rel) {
					writes = true
				}
				for _, v := range maps(listAt(spec, "volumes")) {
					if stringAt(v, "name") == stringAt(m, "name") && servesKubeRootCA(v, "ca.crt") && strings.Contains(cmd, mp+"/ca.crt") {
						reads = true
					}
				}
			}
			ok = ok || (writes && reads)
		}
		if !ok {
			p.addf("Deployment/backend: NODE_EXTRA_CA_CERTS %s is on an emptyDir that no init container fills from kube-root-ca.crt", file)
		}
	default:
		p.addf("Deployment/backend: NODE_EXTRA_CA_CERTS %s is not the ca.crt of ConfigMap kube-root-ca.crt", file)
	}
	return p
}

var skipTLSVerifyRe = regexp.MustCompile(`(?i)K8S_API_SKIP_TLS_VERIFY\s*[=:]\s*"?true`)

// checkTLSVerification: nothing anywhere turns certificate verification off. NODE_TLS_REJECT_UNAUTHORIZED
// in any form, and K8S_API_SKIP_TLS_VERIFY=true, are refused in every string of every object (env,
// commands, ConfigMap data).
func checkTLSVerification(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, o := range objs {
		walkStrings(o.Object, "", func(where, s string) {
			if strings.Contains(s, "NODE_TLS_REJECT_UNAUTHORIZED") {
				p.addf("%s: %s mentions NODE_TLS_REJECT_UNAUTHORIZED (use the custom-ca component instead)", ref(o), where)
			}
			if skipTLSVerifyRe.MatchString(s) {
				p.addf("%s: %s sets K8S_API_SKIP_TLS_VERIFY=true", ref(o), where)
			}
		})
		for _, pt := range podTemplates([]*unstructured.Unstructured{o}) {
			for _, c := range containersOf(pt.spec) {
				for name, e := range envOf(c.spec) {
					switch {
					case name == "NODE_TLS_REJECT_UNAUTHORIZED":
						p.addf("%s container %s: env NODE_TLS_REJECT_UNAUTHORIZED is set", pt.owner, c.name)
					case name == "K8S_API_SKIP_TLS_VERIFY" && strings.EqualFold(stringAt(e, "value"), "true"):
						p.addf("%s container %s: env K8S_API_SKIP_TLS_VERIFY=true", pt.owner, c.name)
					}
				}
			}
		}
	}
	return p
}

var getenvRe = regexp.MustCompile(`(?m)^\\getenv\s+\S+\s+(\S+)\s*$`)

// checkDatabaseRoles: PostgreSQL starts through start.sh, which runs roles.sql with every password it
// reads from the environment; the backup CronJob connects as the read-only role; the backend and
// LiteLLM wait until their own URL logs in.
func checkDatabaseRoles(objs []*unstructured.Unstructured) []string {
	var p problems
	pg := Find(objs, "StatefulSet", "postgres")
	if pg == nil {
		return []string{"StatefulSet/postgres is missing"}
	}
	spec := mapAt(pg.Object, "spec", "template", "spec")
	c := containerNamed(spec, "postgres")
	if cmd := strs(listAt(c, "command")); !slices.Equal(cmd, []string{"/bin/sh", "/etc/litemaas/postgres/start.sh"}) {
		p.addf("StatefulSet/postgres: command %v does not run /etc/litemaas/postgres/start.sh (the roles would never be set up)", cmd)
	}
	vol, _ := mountOf(spec, c, "/etc/litemaas/postgres/start.sh")
	cm := Find(objs, "ConfigMap", stringAt(vol, "configMap", "name"))
	if cm == nil || !strings.HasPrefix(cm.GetName(), "postgres-roles-") {
		p.addf("StatefulSet/postgres: /etc/litemaas/postgres is not the generated ConfigMap postgres-roles")
		return p
	}
	data := mapAt(cm.Object, "data")
	for _, k := range []string{"start.sh", "roles.sql", "move-ownership.sql"} {
		if stringAt(data, k) == "" {
			p.addf("ConfigMap/%s: no %s", cm.GetName(), k)
		}
	}
	env := envOf(c)
	for _, m := range getenvRe.FindAllStringSubmatch(stringAt(data, "roles.sql"), -1) {
		if stringAt(env[m[1]], "valueFrom", "secretKeyRef", "name") != "postgres-secret" {
			p.addf("StatefulSet/postgres: roles.sql reads %s, which the container does not take from postgres-secret", m[1])
		}
	}
	if cj := Find(objs, "CronJob", "postgres-backup"); cj != nil {
		if v := stringAt(envOf(containerNamed(mapAt(cj.Object, "spec", "jobTemplate", "spec", "template", "spec"), "backup"))["PGUSER"], "value"); v != "litemaas_backup" {
			p.addf("CronJob/postgres-backup: PGUSER %q, want the read-only role litemaas_backup", v)
		}
	}
	for _, name := range []string{"backend", "litellm"} {
		d := Find(objs, "Deployment", name)
		if d == nil {
			continue
		}
		ps := mapAt(d.Object, "spec", "template", "spec")
		want := mapAt(envOf(containerNamed(ps, name))["DATABASE_URL"], "valueFrom", "secretKeyRef")
		ic := containerNamed(mapAt(map[string]any{"containers": listAt(ps, "initContainers")}), "wait-for-postgres")
		got := mapAt(envOf(ic)["DATABASE_URL"], "valueFrom", "secretKeyRef")
		cmd := strings.Join(strs(listAt(ic, "command")), " ")
		if want == nil || got == nil || stringAt(got, "name") != stringAt(want, "name") || stringAt(got, "key") != stringAt(want, "key") || !strings.Contains(cmd, `"$DATABASE_URL"`) {
			p.addf("Deployment/%s: init container wait-for-postgres does not wait until the container's own DATABASE_URL logs in", name)
		}
	}
	return p
}
