// Package ha holds the rules of the production profile (gitops/components/ha, CloudNativePG) and of what
// OpenShift and its operators do to the objects after Argo CD applied them.
package ha

// The production profile (gitops/components/ha): the checks every overlay gets, adapted where the
// profile differs on purpose (the role Secrets, the jobs' wait), plus its own: replicas, budgets that
// select their pods, spreading, no superuser URL, backups configured, the Cluster waited for.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/syncjob"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/wiring"
	"github.com/litemaas-gitops/litemaas-gitops/internal/readiness"
	"github.com/litemaas-gitops/litemaas-gitops/internal/secrets"
)

const (
	HACluster      = "litemaas-db"
	haBackupSecret = "litemaas-db-backup-s3"
	haRWService    = HACluster + "-rw"
)

// HASecretContract is the Secret contract plus the role Secrets the secrets job generates in this profile
// (internal/secrets RoleContract).
func HASecretContract() map[string][]string {
	c := map[string][]string{}
	for k, v := range wiring.SecretContract {
		c[k] = v
	}
	for _, rs := range secrets.RoleContract {
		keys := []string{secrets.KeyRoleUsername, secrets.KeyRolePassword}
		for _, u := range rs.URLs {
			keys = append(keys, u.Key)
		}
		c[rs.Name] = keys
	}
	// Made by CloudNativePG; mounted (ca.crt only) where a role URL verifies the server.
	c[haCASecret] = []string{"ca.crt"}
	return c
}

// HASyncJob: the job waits for the Cluster and connects as its own role.
var HASyncJob = syncjob.SyncJobProfile{
	WaitFor:     readiness.CNPGClusterKind + "/" + HACluster + ",deployment/litellm,deployment/backend,deployment/frontend",
	DatabaseURL: [2]string{"litemaas-db-job", secrets.KeyDatabaseURL},
}

// CheckHAProfile is the profile's own contract.
func CheckHAProfile(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		if o.GetKind() == "StatefulSet" || (o.GetKind() == "Service" && o.GetName() == "postgres") {
			p.Addf("%s: no single-instance PostgreSQL in this profile", objects.Ref(o))
		}
		if o.GetKind() == "Secret" && o.GetName() == haBackupSecret {
			p.Addf("%s: the object store's credentials are created by the user, never rendered", objects.Ref(o))
		}
	}
	p = append(p, CheckCNPGCluster(objs)...)
	p = append(p, checkBackups(objs)...)
	p = append(p, checkReplicated(objs)...)
	p = append(p, CheckDatabaseURLs(objs)...)
	p = append(p, CheckWaitFor(objs)...)
	p = append(p, checkRoleSecretsJob(objs)...)
	p = append(p, checkPostgresCA(objs)...)
	p = append(p, checkHANetworkPolicy(objs)...)
	return p
}

// checkHANetworkPolicy: under the base's default-deny-ingress, the Cluster's instances admit their
// clients, each other (replication, instance manager) and the operator. (The truth table of
// networkpolicy.go only sees rendered Services; the operator creates litemaas-db-rw.)
func checkHANetworkPolicy(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	var policy *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "NetworkPolicy" && objects.StringAt(o.Object, "spec", "podSelector", "matchLabels", "cnpg.io/cluster") == HACluster {
			policy = o
		}
	}
	if policy == nil {
		return []string{"no NetworkPolicy admits traffic to the Cluster's instances (cnpg.io/cluster=" + HACluster + "): default-deny-ingress blocks clients, replication and the operator"}
	}
	admits := func(match func(from map[string]any) bool, port int64) bool {
		for _, rule := range objects.Maps(objects.ListAt(policy.Object, "spec", "ingress")) {
			portOK := false
			for _, pt := range objects.Maps(objects.ListAt(rule, "ports")) {
				if v, ok := pt["port"].(int64); ok && v == port {
					portOK = true
				}
			}
			if !portOK {
				continue
			}
			for _, from := range objects.Maps(objects.ListAt(rule, "from")) {
				if match(from) {
					return true
				}
			}
		}
		return false
	}
	pod := func(key, value string) func(map[string]any) bool {
		return func(from map[string]any) bool {
			return objects.StringAt(from, "podSelector", "matchLabels", key) == value
		}
	}
	for _, want := range []struct {
		what  string
		match func(map[string]any) bool
		port  int64
	}{
		{"the backend", pod("app.kubernetes.io/name", "backend"), 5432},
		{"LiteLLM", pod("app.kubernetes.io/name", "litellm"), 5432},
		{"the job's pods", pod("litemaas.io/network", "job"), 5432},
		{"the other instances (replication)", pod("cnpg.io/cluster", HACluster), 5432},
		{"the other instances (instance manager)", pod("cnpg.io/cluster", HACluster), 8000},
		{"the operator's namespace", func(from map[string]any) bool { return objects.Has(from, "namespaceSelector") }, 8000},
	} {
		if !admits(want.match, want.port) {
			p.Addf("%s: does not admit %s on port %d", objects.Ref(policy), want.what, want.port)
		}
	}
	return p
}

// CheckCNPGCluster: three instances on three nodes, the operator's budgets, no superuser, exactly the
// roles whose Secrets the job generates, and the two databases with their owners.
func CheckCNPGCluster(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	c := objects.Find(objs, "Cluster", HACluster)
	if c == nil {
		return []string{"Cluster/" + HACluster + " is missing"}
	}
	if n, _, _ := unstructured.NestedInt64(c.Object, "spec", "instances"); n < 3 {
		p.Addf("Cluster/%s: instances %d, want at least 3", HACluster, n)
	}
	aff := objects.MapAt(c.Object, "spec", "affinity")
	if !objects.IsTrue(aff, "enablePodAntiAffinity") || objects.StringAt(aff, "topologyKey") != "kubernetes.io/hostname" {
		p.Addf("Cluster/%s: want enablePodAntiAffinity with topologyKey kubernetes.io/hostname", HACluster)
	}
	if v := objects.StringAt(aff, "podAntiAffinityType"); v != "required" && v != "preferred" {
		p.Addf("Cluster/%s: podAntiAffinityType %q, want required (or preferred on fewer than 3 nodes)", HACluster, v)
	}
	if objects.IsFalse(c.Object, "spec", "enablePDB") {
		p.Addf("Cluster/%s: enablePDB false removes the operator's PodDisruptionBudgets", HACluster)
	}
	if objects.IsTrue(c.Object, "spec", "enableSuperuserAccess") {
		p.Addf("Cluster/%s: enableSuperuserAccess must stay off: every client has its own role", HACluster)
	}
	want := map[string]string{}
	for _, rs := range secrets.RoleContract {
		want[rs.Username] = rs.Name
	}
	got := map[string]string{}
	for _, r := range objects.Maps(objects.ListAt(c.Object, "spec", "managed", "roles")) {
		name := objects.StringAt(r, "name")
		got[name] = objects.StringAt(r, "passwordSecret", "name")
		for _, flag := range []string{"superuser", "createrole", "createdb", "replication", "bypassrls"} {
			if objects.IsTrue(r, flag) {
				p.Addf("Cluster/%s: role %s has %s (least privilege)", HACluster, name, flag)
			}
		}
		// Reading everything is the logical backup's job alone: a client role reads what it needs, as in the
		// single-instance profile (the backend's model reader: one table).
		for _, in := range objects.Strs(objects.ListAt(r, "inRoles")) {
			if (in == "pg_read_all_data" || in == "pg_write_all_data") && name != "litemaas_backup" {
				p.Addf("Cluster/%s: role %s is in %s: it can read every table of both databases (key hashes, spend logs); grant it only what it reads", HACluster, name, in)
			}
		}
		if objects.StringAt(r, "ensure") != "present" || !objects.IsTrue(r, "login") {
			p.Addf("Cluster/%s: role %s must be present with login", HACluster, name)
		}
	}
	if !reflect.DeepEqual(want, got) {
		p.Addf("Cluster/%s: managed roles %v (role -> Secret), want %v as the secrets job generates them", HACluster, got, want)
	}
	initdb := objects.MapAt(c.Object, "spec", "bootstrap", "initdb")
	if objects.StringAt(initdb, "database") != "litemaas_db" || objects.StringAt(initdb, "owner") != "litemaas_backend" || want["litemaas_backend"] != objects.StringAt(initdb, "secret", "name") {
		p.Addf("Cluster/%s: bootstrap.initdb %v, want litemaas_db owned by litemaas_backend with its Secret", HACluster, initdb)
	}
	dbs := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Database" {
			continue
		}
		if objects.StringAt(o.Object, "spec", "cluster", "name") != HACluster {
			p.Addf("%s: cluster %q, want %s", objects.Ref(o), objects.StringAt(o.Object, "spec", "cluster", "name"), HACluster)
		}
		if objects.StringAt(o.Object, "spec", "databaseReclaimPolicy") != "retain" {
			p.Addf("%s: databaseReclaimPolicy must be retain (deleting the object must not drop the database)", objects.Ref(o))
		}
		dbs[objects.StringAt(o.Object, "spec", "name")] = objects.StringAt(o.Object, "spec", "owner")
	}
	if !reflect.DeepEqual(dbs, map[string]string{"litemaas_db": "litemaas_backend", "litellm_db": "litellm"}) {
		p.Addf("Databases %v (name -> owner), want litemaas_db owned by litemaas_backend and litellm_db by litellm", dbs)
	}
	return p
}

// checkBackups: WAL archiving and scheduled base backups to an object store from the overlay's settings,
// with credentials from the user's Secret.
func checkBackups(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	c := objects.Find(objs, "Cluster", HACluster)
	if c == nil {
		return nil
	}
	store := objects.MapAt(c.Object, "spec", "backup", "barmanObjectStore")
	if store == nil {
		return []string{"Cluster/" + HACluster + ": no backup.barmanObjectStore: no WAL archiving, no base backups"}
	}
	dest := objects.StringAt(store, "destinationPath")
	if !strings.HasPrefix(dest, "s3://") || strings.Contains(dest, "CHANGE-ME") {
		p.Addf("Cluster/%s: destinationPath %q, want the overlay's s3:// bucket", HACluster, dest)
	}
	if ep := objects.StringAt(store, "endpointURL"); !strings.HasPrefix(ep, "https://") || strings.Contains(ep, "CHANGE-ME") {
		p.Addf("Cluster/%s: endpointURL %q, want the overlay's https:// endpoint", HACluster, ep)
	}
	for _, k := range []string{"accessKeyId", "secretAccessKey"} {
		if n := objects.StringAt(store, "s3Credentials", k, "name"); n != haBackupSecret {
			p.Addf("Cluster/%s: s3Credentials.%s from Secret %q, want %s", HACluster, k, n, haBackupSecret)
		}
	}
	if objects.StringAt(c.Object, "spec", "backup", "retentionPolicy") == "" {
		p.Addf("Cluster/%s: no backup.retentionPolicy: the object store grows without bound", HACluster)
	}
	var scheduled bool
	for _, o := range objs {
		if o.GetKind() != "ScheduledBackup" || objects.StringAt(o.Object, "spec", "cluster", "name") != HACluster {
			continue
		}
		scheduled = true
		if m := objects.StringAt(o.Object, "spec", "method"); m != "" && m != "barmanObjectStore" {
			p.Addf("%s: method %q, want barmanObjectStore", objects.Ref(o), m)
		}
		// CloudNativePG's schedule has six fields, seconds first; a five-field cron would run every minute's second.
		if f := strings.Fields(objects.StringAt(o.Object, "spec", "schedule")); len(f) != 6 {
			p.Addf("%s: schedule %q must have 6 fields (seconds first)", objects.Ref(o), objects.StringAt(o.Object, "spec", "schedule"))
		}
	}
	if !scheduled {
		p.Addf("no ScheduledBackup for Cluster/%s", HACluster)
	}
	return p
}

// checkReplicated: LiteLLM and the frontend run 2+ replicas, roll one new pod at a time, spread across
// nodes, and each has a budget of maxUnavailable 1 that selects exactly its pods; the backend runs one.
func checkReplicated(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, name := range []string{"litellm", "frontend"} {
		d := objects.Find(objs, "Deployment", name)
		if d == nil {
			p.Addf("Deployment/%s is missing", name)
			continue
		}
		p = append(p, checkSpread(d)...)
		p = append(p, checkBudget(objs, d)...)
	}
	if b := objects.Find(objs, "Deployment", "backend"); b != nil {
		if r, _, _ := unstructured.NestedInt64(b.Object, "spec", "replicas"); r != 1 {
			p.Addf("Deployment/backend: replicas %d, want 1 (OAuth state in process memory, migrations without a lock: components/ha/README.md)", r)
		}
		if objects.StringAt(b.Object, "spec", "strategy", "type") != "Recreate" {
			p.Addf("Deployment/backend: strategy %q, want Recreate (never two backends at once)", objects.StringAt(b.Object, "spec", "strategy", "type"))
		}
	}
	return append(p, checkSharedRedis(objs)...)
}

// podLabels are the labels of a workload's pod template, or of a pod template's metadata.
func podLabels(m map[string]any) labels.Set {
	out := labels.Set{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// checkSpread: at least two replicas, rolled over one by one, spread over nodes.
func checkSpread(d *unstructured.Unstructured) []string {
	var p objects.Problems
	name := d.GetName()
	if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r < 2 {
		p.Addf("Deployment/%s: replicas %d, want at least 2", name, r)
	}
	if objects.StringAt(d.Object, "spec", "strategy", "type") != "RollingUpdate" {
		p.Addf("Deployment/%s: strategy %q, want RollingUpdate", name, objects.StringAt(d.Object, "spec", "strategy", "type"))
	}
	own := podLabels(objects.MapAt(d.Object, "spec", "template", "metadata", "labels"))
	spread := false
	for _, tsc := range objects.Maps(objects.ListAt(d.Object, "spec", "template", "spec", "topologySpreadConstraints")) {
		sel, err := objects.SelectorOf(objects.MapAt(tsc, "labelSelector"))
		if err != nil {
			p.Addf("Deployment/%s: topologySpreadConstraint: %v", name, err)
			continue
		}
		if objects.StringAt(tsc, "topologyKey") == "kubernetes.io/hostname" && objects.StringAt(tsc, "whenUnsatisfiable") == "DoNotSchedule" && sel.Matches(own) {
			spread = true
		}
	}
	if !spread {
		p.Addf("Deployment/%s: no DoNotSchedule topologySpreadConstraint on kubernetes.io/hostname selecting its own pods", name)
	}
	return p
}

// checkBudget: exactly one PodDisruptionBudget selects the Deployment's pods, with maxUnavailable 1,
// and it selects no other workload's pods (they would count against this one).
func checkBudget(objs []*unstructured.Unstructured, d *unstructured.Unstructured) []string {
	var p objects.Problems
	own := podLabels(objects.MapAt(d.Object, "spec", "template", "metadata", "labels"))
	var budgets []string
	for _, o := range objs {
		if o.GetKind() != "PodDisruptionBudget" {
			continue
		}
		sel, err := objects.SelectorOf(objects.MapAt(o.Object, "spec", "selector"))
		if err != nil {
			p.Addf("%s: %v", objects.Ref(o), err)
			continue
		}
		if !sel.Matches(own) {
			continue
		}
		budgets = append(budgets, o.GetName())
		if mu, ok := objects.MapAt(o.Object, "spec")["maxUnavailable"]; !ok || fmt.Sprint(mu) != "1" {
			p.Addf("%s: maxUnavailable %v, want 1", objects.Ref(o), mu)
		}
		for _, pt := range objects.PodTemplates(objs) {
			other := podLabels(pt.Labels)
			if pt.Owner != objects.Ref(d) && len(other) > 0 && sel.Matches(other) {
				p.Addf("%s: also selects the pods of %s", objects.Ref(o), pt.Owner)
			}
		}
	}
	if len(budgets) != 1 {
		p.Addf("Deployment/%s: %d PodDisruptionBudgets select its pods (%v), want exactly 1", d.GetName(), len(budgets), budgets)
	}
	return p
}

// checkSharedRedis: LiteLLM's replicas share Redis, so the router's usage counters (tpm/rpm) hold
// across them.
func checkSharedRedis(objs []*unstructured.Unstructured) []string {
	l := objects.Find(objs, "Deployment", "litellm")
	if l == nil {
		return nil
	}
	var p objects.Problems
	host, _ := objects.EnvValue(l, "litellm", "REDIS_HOST")
	if host == "" || objects.Find(objs, "Service", host) == nil {
		p.Addf("Deployment/litellm: REDIS_HOST %q is not a Service of the profile", host)
	}
	var cfg map[string]any
	for _, o := range objs {
		if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "litellm-cache-config") {
			if err := yaml.Unmarshal([]byte(objects.StringAt(o.Object, "data", "config.yaml")), &cfg); err != nil {
				p.Addf("%s: config.yaml: %v", objects.Ref(o), err)
			}
		}
	}
	if objects.StringAt(cfg, "router_settings", "redis_host") != "os.environ/REDIS_HOST" {
		p.Addf("LiteLLM config: router_settings.redis_host %q, want os.environ/REDIS_HOST (shared usage counters)", objects.StringAt(cfg, "router_settings", "redis_host"))
	}
	return p
}

// CheckDatabaseURLs: no pod connects with the superuser's URL (postgres-secret, or the URLs the
// secrets job derives from it); every database URL comes from a role Secret, and every wait for
// PostgreSQL targets the Cluster's read-write Service.
func CheckDatabaseURLs(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	roleSecrets := map[string]bool{}
	var roleNames []string
	for _, rs := range secrets.RoleContract {
		roleSecrets[rs.Name] = true
		roleNames = append(roleNames, rs.Name)
	}
	for _, pt := range objects.PodTemplates(objs) {
		for _, c := range objects.ContainersOf(pt.Spec) {
			for _, e := range objects.Maps(objects.ListAt(c.Spec, "env")) {
				name := objects.StringAt(e, "name")
				sk := objects.MapAt(e, "valueFrom", "secretKeyRef")
				secret, key := objects.StringAt(sk, "name"), objects.StringAt(sk, "key")
				switch {
				case secret == secrets.PostgresSecret:
					p.Addf("%s container %s: env %s reads the superuser's %s/%s", pt.Owner, c.Name, name, secret, key)
				case strings.HasSuffix(name, "DATABASE_URL") && !roleSecrets[secret]:
					p.Addf("%s container %s: env %s from %q, want a role Secret (%v)", pt.Owner, c.Name, name, secret, roleNames)
				case strings.HasSuffix(key, "DATABASE_URL") && !roleSecrets[secret]:
					p.Addf("%s container %s: env %s reads %s/%s, a URL of the superuser", pt.Owner, c.Name, name, secret, key)
				}
				if v := objects.StringAt(e, "value"); strings.Contains(v, "postgresql://") {
					p.Addf("%s container %s: env %s holds a literal database URL", pt.Owner, c.Name, name)
				}
			}
			cmd := strings.Join(objects.Strs(append(objects.ListAt(c.Spec, "command"), objects.ListAt(c.Spec, "args")...)), " ")
			if strings.Contains(cmd, "pg_isready") && !strings.Contains(cmd, "-h "+haRWService+" ") {
				p.Addf("%s container %s: waits for %q, want the Cluster's read-write Service %s", pt.Owner, c.Name, cmd, haRWService)
			}
		}
	}
	return p
}

// CheckWaitFor: the PostSync job (and any CronJob running the same reconcile) waits for the Cluster.
func CheckWaitFor(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	want := readiness.CNPGClusterKind + "/" + HACluster
	for _, o := range objs {
		var spec map[string]any
		switch o.GetKind() {
		case "Job":
			spec = objects.MapAt(o.Object, "spec", "template", "spec")
		case "CronJob":
			spec = objects.MapAt(o.Object, "spec", "jobTemplate", "spec", "template", "spec")
		default:
			continue
		}
		c := objects.ContainerNamed(spec, objects.SyncJobName)
		if c == nil || !slices.Equal(objects.Strs(objects.ListAt(c, "args")), []string{"reconcile"}) {
			continue
		}
		v := objects.StringAt(objects.EnvOf(c)["WAIT_FOR"], "value")
		entries := strings.Split(v, ",")
		if !slices.Contains(entries, want) {
			p.Addf("%s: WAIT_FOR %q does not name %s", objects.Ref(o), v, want)
		}
		for _, e := range entries {
			if strings.HasPrefix(e, "statefulset/") || strings.HasPrefix(e, "sts/") {
				p.Addf("%s: WAIT_FOR %q waits for a StatefulSet this profile does not have", objects.Ref(o), v)
			}
		}
	}
	return p
}

// checkRoleSecretsJob: the PreSync job generates the role Secrets with URLs at the read-write Service,
// and its Role may read and update exactly those.
func checkRoleSecretsJob(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	j := objects.Find(objs, "Job", "litemaas-secrets")
	if j == nil {
		return []string{"Job/litemaas-secrets is missing"}
	}
	env := objects.EnvOf(objects.ContainerNamed(objects.MapAt(j.Object, "spec", "template", "spec"), "litemaas-secrets"))
	if v := objects.StringAt(env["DATABASE_ROLES"], "value"); v != "true" {
		p.Addf("Job/litemaas-secrets: DATABASE_ROLES %q, want true", v)
	}
	if v := objects.StringAt(env["POSTGRES_HOST"], "value"); v != haRWService {
		p.Addf("Job/litemaas-secrets: POSTGRES_HOST %q, want %s", v, haRWService)
	}
	role := objects.Find(objs, "Role", "litemaas-secrets")
	var names []string
	if role != nil {
		for _, r := range objects.Maps(objects.ListAt(role.Object, "rules")) {
			if slices.Contains(objects.Strs(objects.ListAt(r, "resources")), "secrets") {
				names = append(names, objects.Strs(objects.ListAt(r, "resourceNames"))...)
			}
		}
	}
	for _, rs := range secrets.RoleContract {
		if !slices.Contains(names, rs.Name) {
			p.Addf("Role/litemaas-secrets: may not get/update Secret %s", rs.Name)
		}
	}
	return p
}

// CheckHAClusterPart: the admission policy admits the role Secrets (the real API server exercises it in
// internal/secrets).
func CheckHAClusterPart(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	vap := objects.Find(objs, "ValidatingAdmissionPolicy", "litemaas-secrets-job")
	if vap == nil {
		return []string{"ValidatingAdmissionPolicy/litemaas-secrets-job is missing"}
	}
	var exprs []string
	for _, v := range objects.Maps(objects.ListAt(vap.Object, "spec", "validations")) {
		exprs = append(exprs, objects.StringAt(v, "expression"))
	}
	all := strings.Join(exprs, "\n")
	for _, rs := range secrets.RoleContract {
		if !strings.Contains(all, "'"+rs.Name+"'") {
			p.Addf("ValidatingAdmissionPolicy/litemaas-secrets-job: does not admit Secret %s", rs.Name)
		}
	}
	if !strings.Contains(all, "kubernetes.io/basic-auth") {
		p.Addf("ValidatingAdmissionPolicy/litemaas-secrets-job: does not admit type kubernetes.io/basic-auth")
	}
	return p
}
