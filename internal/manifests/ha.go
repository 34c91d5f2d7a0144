package manifests

// The production profile (gitops/components/ha): the checks every overlay gets, adapted where the
// profile differs on purpose (the role Secrets, the jobs' wait), plus its own: replicas, budgets that
// select their pods, spreading, no superuser URL, backups configured, the Cluster waited for.

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/readiness"
	"github.com/litemaas-gitops/litemaas-gitops/internal/secrets"
)

// haChecks are the checks of a production overlay that need nothing but its objects (see appChecks):
// its Secrets, sync Job and database come from the ha component.
var haChecks = append(slices.Clip(commonChecks),
	objectCheck{"Secret references", func(objs []*unstructured.Unstructured) []string { return checkSecretRefsIn(objs, haSecretContract()) }},
	objectCheck{"sync Job", func(objs []*unstructured.Unstructured) []string { return checkSyncJobWith(objs, haSyncJob) }},
	objectCheck{"ha profile", checkHAProfile},
	objectCheck{"CloudNativePG role defaults", checkCNPGRoleDefaults},
	objectCheck{"database TLS", checkNoSSLDisable},
)

// checkHA: the rate limits from cluster-settings, and the cluster part's admission policy admitting the
// role Secrets.
func (c *Checker) checkHA(t Target, objs []*unstructured.Unstructured) []string {
	var p []string
	if t.Settings != "" {
		settings, err := settingsData(c.Root, t.Settings)
		if err != nil {
			return []string{err.Error()}
		}
		p = append(p, checkRateLimits(objs, settings)...)
	}
	if t.Cluster == "" {
		return append(p, "no cluster/ part: the secrets job's admission policy must admit the role Secrets (components/ha/cluster)")
	}
	cluster, err := c.Render(t.Cluster)
	if err != nil {
		return append(p, fmt.Sprintf("cluster part %s: %v", t.Cluster, err))
	}
	return append(p, checkHAClusterPart(cluster)...)
}

const (
	haCluster      = "litemaas-db"
	haBackupSecret = "litemaas-db-backup-s3"
	haRWService    = haCluster + "-rw"
)

// haSecretContract is the Secret contract plus the role Secrets the secrets job generates in this profile
// (internal/secrets RoleContract).
func haSecretContract() map[string][]string {
	c := map[string][]string{}
	for k, v := range secretContract {
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

// haSyncJob: the job waits for the Cluster and connects as its own role.
var haSyncJob = syncJobProfile{
	waitFor:     readiness.CNPGClusterKind + "/" + haCluster + ",deployment/litellm,deployment/backend,deployment/frontend",
	databaseURL: [2]string{"litemaas-db-job", secrets.KeyDatabaseURL},
}

// checkHAProfile is the profile's own contract.
func checkHAProfile(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, o := range objs {
		if o.GetKind() == "StatefulSet" || (o.GetKind() == "Service" && o.GetName() == "postgres") {
			p.addf("%s: no single-instance PostgreSQL in this profile", ref(o))
		}
		if o.GetKind() == "Secret" && o.GetName() == haBackupSecret {
			p.addf("%s: the object store's credentials are created by the user, never rendered", ref(o))
		}
	}
	p = append(p, checkCNPGCluster(objs)...)
	p = append(p, checkBackups(objs)...)
	p = append(p, checkReplicated(objs)...)
	p = append(p, checkDatabaseURLs(objs)...)
	p = append(p, checkWaitFor(objs)...)
	p = append(p, checkRoleSecretsJob(objs)...)
	p = append(p, checkPostgresCA(objs)...)
	p = append(p, checkHANetworkPolicy(objs)...)
	return p
}

// checkHANetworkPolicy: under the base's default-deny-ingress, the Cluster's instances admit their
// clients, each other (replication, instance manager) and the operator. (The truth table of
// networkpolicy.go only sees rendered Services; the operator creates litemaas-db-rw.)
func checkHANetworkPolicy(objs []*unstructured.Unstructured) []string {
	var p problems
	var policy *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "NetworkPolicy" && stringAt(o.Object, "spec", "podSelector", "matchLabels", "cnpg.io/cluster") == haCluster {
			policy = o
		}
	}
	if policy == nil {
		return []string{"no NetworkPolicy admits traffic to the Cluster's instances (cnpg.io/cluster=" + haCluster + "): default-deny-ingress blocks clients, replication and the operator"}
	}
	admits := func(match func(from map[string]any) bool, port int64) bool {
		for _, rule := range maps(listAt(policy.Object, "spec", "ingress")) {
			portOK := false
			for _, pt := range maps(listAt(rule, "ports")) {
				if v, ok := pt["port"].(int64); ok && v == port {
					portOK = true
				}
			}
			if !portOK {
				continue
			}
			for _, from := range maps(listAt(rule, "from")) {
				if match(from) {
					return true
				}
			}
		}
		return false
	}
	pod := func(key, value string) func(map[string]any) bool {
		return func(from map[string]any) bool { return stringAt(from, "podSelector", "matchLabels", key) == value }
	}
	for _, want := range []struct {
		what  string
		match func(map[string]any) bool
		port  int64
	}{
		{"the backend", pod("app.kubernetes.io/name", "backend"), 5432},
		{"LiteLLM", pod("app.kubernetes.io/name", "litellm"), 5432},
		{"the job's pods", pod("litemaas.io/network", "job"), 5432},
		{"the other instances (replication)", pod("cnpg.io/cluster", haCluster), 5432},
		{"the other instances (instance manager)", pod("cnpg.io/cluster", haCluster), 8000},
		{"the operator's namespace", func(from map[string]any) bool { return has(from, "namespaceSelector") }, 8000},
	} {
		if !admits(want.match, want.port) {
			p.addf("%s: does not admit %s on port %d", ref(policy), want.what, want.port)
		}
	}
	return p
}

// checkCNPGCluster: three instances on three nodes, the operator's budgets, no superuser, exactly the
// roles whose Secrets the job generates, and the two databases with their owners.
func checkCNPGCluster(objs []*unstructured.Unstructured) []string {
	var p problems
	c := Find(objs, "Cluster", haCluster)
	if c == nil {
		return []string{"Cluster/" + haCluster + " is missing"}
	}
	if n, _, _ := unstructured.NestedInt64(c.Object, "spec", "instances"); n < 3 {
		p.addf("Cluster/%s: instances %d, want at least 3", haCluster, n)
	}
	aff := mapAt(c.Object, "spec", "affinity")
	if !isTrue(aff, "enablePodAntiAffinity") || stringAt(aff, "topologyKey") != "kubernetes.io/hostname" {
		p.addf("Cluster/%s: want enablePodAntiAffinity with topologyKey kubernetes.io/hostname", haCluster)
	}
	if v := stringAt(aff, "podAntiAffinityType"); v != "required" && v != "preferred" {
		p.addf("Cluster/%s: podAntiAffinityType %q, want required (or preferred on fewer than 3 nodes)", haCluster, v)
	}
	if isFalse(c.Object, "spec", "enablePDB") {
		p.addf("Cluster/%s: enablePDB false removes the operator's PodDisruptionBudgets", haCluster)
	}
	if isTrue(c.Object, "spec", "enableSuperuserAccess") {
		p.addf("Cluster/%s: enableSuperuserAccess must stay off: every client has its own role", haCluster)
	}
	want := map[string]string{}
	for _, rs := range secrets.RoleContract {
		want[rs.Username] = rs.Name
	}
	got := map[string]string{}
	for _, r := range maps(listAt(c.Object, "spec", "managed", "roles")) {
		name := stringAt(r, "name")
		got[name] = stringAt(r, "passwordSecret", "name")
		for _, flag := range []string{"superuser", "createrole", "createdb", "replication", "bypassrls"} {
			if isTrue(r, flag) {
				p.addf("Cluster/%s: role %s has %s (least privilege)", haCluster, name, flag)
			}
		}
		// Reading everything is the logical backup's job alone: a client role reads what it needs, as in the
		// single-instance profile (the backend's model reader: one table).
		for _, in := range strs(listAt(r, "inRoles")) {
			if (in == "pg_read_all_data" || in == "pg_write_all_data") && name != "litemaas_backup" {
				p.addf("Cluster/%s: role %s is in %s: it can read every table of both databases (key hashes, spend logs); grant it only what it reads", haCluster, name, in)
			}
		}
		if stringAt(r, "ensure") != "present" || !isTrue(r, "login") {
			p.addf("Cluster/%s: role %s must be present with login", haCluster, name)
		}
	}
	if !reflect.DeepEqual(want, got) {
		p.addf("Cluster/%s: managed roles %v (role -> Secret), want %v as the secrets job generates them", haCluster, got, want)
	}
	initdb := mapAt(c.Object, "spec", "bootstrap", "initdb")
	if stringAt(initdb, "database") != "litemaas_db" || stringAt(initdb, "owner") != "litemaas_backend" || want["litemaas_backend"] != stringAt(initdb, "secret", "name") {
		p.addf("Cluster/%s: bootstrap.initdb %v, want litemaas_db owned by litemaas_backend with its Secret", haCluster, initdb)
	}
	dbs := map[string]string{}
	for _, o := range objs {
		if o.GetKind() != "Database" {
			continue
		}
		if stringAt(o.Object, "spec", "cluster", "name") != haCluster {
			p.addf("%s: cluster %q, want %s", ref(o), stringAt(o.Object, "spec", "cluster", "name"), haCluster)
		}
		if stringAt(o.Object, "spec", "databaseReclaimPolicy") != "retain" {
			p.addf("%s: databaseReclaimPolicy must be retain (deleting the object must not drop the database)", ref(o))
		}
		dbs[stringAt(o.Object, "spec", "name")] = stringAt(o.Object, "spec", "owner")
	}
	if !reflect.DeepEqual(dbs, map[string]string{"litemaas_db": "litemaas_backend", "litellm_db": "litellm"}) {
		p.addf("Databases %v (name -> owner), want litemaas_db owned by litemaas_backend and litellm_db by litellm", dbs)
	}
	return p
}

// checkBackups: WAL archiving and scheduled base backups to an object store from the overlay's settings,
// with credentials from the user's Secret.
func checkBackups(objs []*unstructured.Unstructured) []string {
	var p problems
	c := Find(objs, "Cluster", haCluster)
	if c == nil {
		return nil
	}
	store := mapAt(c.Object, "spec", "backup", "barmanObjectStore")
	if store == nil {
		return []string{"Cluster/" + haCluster + ": no backup.barmanObjectStore: no WAL archiving, no base backups"}
	}
	dest := stringAt(store, "destinationPath")
	if !strings.HasPrefix(dest, "s3://") || strings.Contains(dest, "CHANGE-ME") {
		p.addf("Cluster/%s: destinationPath %q, want the overlay's s3:// bucket", haCluster, dest)
	}
	if ep := stringAt(store, "endpointURL"); !strings.HasPrefix(ep, "https://") || strings.Contains(ep, "CHANGE-ME") {
		p.addf("Cluster/%s: endpointURL %q, want the overlay's https:// endpoint", haCluster, ep)
	}
	for _, k := range []string{"accessKeyId", "secretAccessKey"} {
		if n := stringAt(store, "s3Credentials", k, "name"); n != haBackupSecret {
			p.addf("Cluster/%s: s3Credentials.%s from Secret %q, want %s", haCluster, k, n, haBackupSecret)
		}
	}
	if stringAt(c.Object, "spec", "backup", "retentionPolicy") == "" {
		p.addf("Cluster/%s: no backup.retentionPolicy: the object store grows without bound", haCluster)
	}
	var scheduled bool
	for _, o := range objs {
		if o.GetKind() != "ScheduledBackup" || stringAt(o.Object, "spec", "cluster", "name") != haCluster {
			continue
		}
		scheduled = true
		if m := stringAt(o.Object, "spec", "method"); m != "" && m != "barmanObjectStore" {
			p.addf("%s: method %q, want barmanObjectStore", ref(o), m)
		}
		// CloudNativePG's schedule has six fields, seconds first; a five-field cron would run every minute's second.
		if f := strings.Fields(stringAt(o.Object, "spec", "schedule")); len(f) != 6 {
			p.addf("%s: schedule %q must have 6 fields (seconds first)", ref(o), stringAt(o.Object, "spec", "schedule"))
		}
	}
	if !scheduled {
		p.addf("no ScheduledBackup for Cluster/%s", haCluster)
	}
	return p
}

// checkReplicated: LiteLLM and the frontend run 2+ replicas, roll one new pod at a time, spread across
// nodes, and each has a budget of maxUnavailable 1 that selects exactly its pods; the backend runs one.
func checkReplicated(objs []*unstructured.Unstructured) []string {
	var p problems
	for _, name := range []string{"litellm", "frontend"} {
		d := Find(objs, "Deployment", name)
		if d == nil {
			p.addf("Deployment/%s is missing", name)
			continue
		}
		if r, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); r < 2 {
			p.addf("Deployment/%s: replicas %d, want at least 2", name, r)
		}
		if stringAt(d.Object, "spec", "strategy", "type") != "RollingUpdate" {
			p.addf("Deployment/%s: strategy %q, want RollingUpdate", name, stringAt(d.Object, "spec", "strategy", "type"))
		}
		podLabels := labels.Set{}
		for k, v := range mapAt(d.Object, "spec", "template", "metadata", "labels") {
			podLabels[k] = fmt.Sprint(v)
		}
		spread := false
		for _, tsc := range maps(listAt(d.Object, "spec", "template", "spec", "topologySpreadConstraints")) {
			sel, err := selectorOf(mapAt(tsc, "labelSelector"))
			if err != nil {
				p.addf("Deployment/%s: topologySpreadConstraint: %v", name, err)
				continue
			}
			if stringAt(tsc, "topologyKey") == "kubernetes.io/hostname" && stringAt(tsc, "whenUnsatisfiable") == "DoNotSchedule" && sel.Matches(podLabels) {
				spread = true
			}
		}
		if !spread {
			p.addf("Deployment/%s: no DoNotSchedule topologySpreadConstraint on kubernetes.io/hostname selecting its own pods", name)
		}
		var budgets []string
		for _, o := range objs {
			if o.GetKind() != "PodDisruptionBudget" {
				continue
			}
			sel, err := selectorOf(mapAt(o.Object, "spec", "selector"))
			if err != nil {
				p.addf("%s: %v", ref(o), err)
				continue
			}
			if !sel.Matches(podLabels) {
				continue
			}
			budgets = append(budgets, o.GetName())
			if mu, ok := mapAt(o.Object, "spec")["maxUnavailable"]; !ok || fmt.Sprint(mu) != "1" {
				p.addf("%s: maxUnavailable %v, want 1", ref(o), mu)
			}
			// A budget selecting another workload's pods too would count them against this one.
			for _, pt := range podTemplates(objs) {
				other := labels.Set{}
				for k, v := range pt.labels {
					other[k] = fmt.Sprint(v)
				}
				if pt.owner != ref(d) && len(other) > 0 && sel.Matches(other) {
					p.addf("%s: also selects the pods of %s", ref(o), pt.owner)
				}
			}
		}
		if len(budgets) != 1 {
			p.addf("Deployment/%s: %d PodDisruptionBudgets select its pods (%v), want exactly 1", name, len(budgets), budgets)
		}
	}
	if b := Find(objs, "Deployment", "backend"); b != nil {
		if r, _, _ := unstructured.NestedInt64(b.Object, "spec", "replicas"); r != 1 {
			p.addf("Deployment/backend: replicas %d, want 1 (OAuth state in process memory, migrations without a lock: components/ha/README.md)", r)
		}
		if stringAt(b.Object, "spec", "strategy", "type") != "Recreate" {
			p.addf("Deployment/backend: strategy %q, want Recreate (never two backends at once)", stringAt(b.Object, "spec", "strategy", "type"))
		}
	}
	// LiteLLM's replicas share Redis: the router's usage counters (tpm/rpm) hold across them.
	if l := Find(objs, "Deployment", "litellm"); l != nil {
		host, _ := envValue(l, "litellm", "REDIS_HOST")
		if host == "" || Find(objs, "Service", host) == nil {
			p.addf("Deployment/litellm: REDIS_HOST %q is not a Service of the profile", host)
		}
		var cfg map[string]any
		for _, o := range objs {
			if o.GetKind() == "ConfigMap" && strings.HasPrefix(o.GetName(), "litellm-cache-config") {
				if err := yaml.Unmarshal([]byte(stringAt(o.Object, "data", "config.yaml")), &cfg); err != nil {
					p.addf("%s: config.yaml: %v", ref(o), err)
				}
			}
		}
		if stringAt(cfg, "router_settings", "redis_host") != "os.environ/REDIS_HOST" {
			p.addf("LiteLLM config: router_settings.redis_host %q, want os.environ/REDIS_HOST (shared usage counters)", stringAt(cfg, "router_settings", "redis_host"))
		}
	}
	return p
}

func selectorOf(m map[string]any) (labels.Selector, error) {
	if m == nil {
		return nil, fmt.Errorf("no label selector")
	}
	data, err := yaml.Marshal(m)
	if err != nil {
		return nil, err
	}
	var ls metav1.LabelSelector
	if err := yaml.Unmarshal(data, &ls); err != nil {
		return nil, err
	}
	if len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0 {
		return nil, fmt.Errorf("empty label selector selects every pod")
	}
	return metav1.LabelSelectorAsSelector(&ls)
}

// checkDatabaseURLs: no pod connects with the superuser's URL (postgres-secret, or the URLs the
// secrets job derives from it); every database URL comes from a role Secret, and every wait for
// PostgreSQL targets the Cluster's read-write Service.
func checkDatabaseURLs(objs []*unstructured.Unstructured) []string {
	var p problems
	roleSecrets := map[string]bool{}
	var roleNames []string
	for _, rs := range secrets.RoleContract {
		roleSecrets[rs.Name] = true
		roleNames = append(roleNames, rs.Name)
	}
	for _, pt := range podTemplates(objs) {
		for _, c := range containersOf(pt.spec) {
			for _, e := range maps(listAt(c.spec, "env")) {
				name := stringAt(e, "name")
				sk := mapAt(e, "valueFrom", "secretKeyRef")
				secret, key := stringAt(sk, "name"), stringAt(sk, "key")
				switch {
				case secret == secrets.PostgresSecret:
					p.addf("%s container %s: env %s reads the superuser's %s/%s", pt.owner, c.name, name, secret, key)
				case strings.HasSuffix(name, "DATABASE_URL") && !roleSecrets[secret]:
					p.addf("%s container %s: env %s from %q, want a role Secret (%v)", pt.owner, c.name, name, secret, roleNames)
				case strings.HasSuffix(key, "DATABASE_URL") && !roleSecrets[secret]:
					p.addf("%s container %s: env %s reads %s/%s, a URL of the superuser", pt.owner, c.name, name, secret, key)
				}
				if v := stringAt(e, "value"); strings.Contains(v, "postgresql://") {
					p.addf("%s container %s: env %s holds a literal database URL", pt.owner, c.name, name)
				}
			}
			cmd := strings.Join(strs(append(listAt(c.spec, "command"), listAt(c.spec, "args")...)), " ")
			if strings.Contains(cmd, "pg_isready") && !strings.Contains(cmd, "-h "+haRWService+" ") {
				p.addf("%s container %s: waits for %q, want the Cluster's read-write Service %s", pt.owner, c.name, cmd, haRWService)
			}
		}
	}
	return p
}

// checkWaitFor: the PostSync job (and any CronJob running the same reconcile) waits for the Cluster.
func checkWaitFor(objs []*unstructured.Unstructured) []string {
	var p problems
	want := readiness.CNPGClusterKind + "/" + haCluster
	for _, o := range objs {
		var spec map[string]any
		switch o.GetKind() {
		case "Job":
			spec = mapAt(o.Object, "spec", "template", "spec")
		case "CronJob":
			spec = mapAt(o.Object, "spec", "jobTemplate", "spec", "template", "spec")
		default:
			continue
		}
		c := containerNamed(spec, syncJobName)
		if c == nil || !slices.Equal(strs(listAt(c, "args")), []string{"reconcile"}) {
			continue
		}
		v := stringAt(envOf(c)["WAIT_FOR"], "value")
		entries := strings.Split(v, ",")
		if !slices.Contains(entries, want) {
			p.addf("%s: WAIT_FOR %q does not name %s", ref(o), v, want)
		}
		for _, e := range entries {
			if strings.HasPrefix(e, "statefulset/") || strings.HasPrefix(e, "sts/") {
				p.addf("%s: WAIT_FOR %q waits for a StatefulSet this profile does not have", ref(o), v)
			}
		}
	}
	return p
}

// checkRoleSecretsJob: the PreSync job generates the role Secrets with URLs at the read-write Service,
// and its Role may read and update exactly those.
func checkRoleSecretsJob(objs []*unstructured.Unstructured) []string {
	var p problems
	j := Find(objs, "Job", "litemaas-secrets")
	if j == nil {
		return []string{"Job/litemaas-secrets is missing"}
	}
	env := envOf(containerNamed(mapAt(j.Object, "spec", "template", "spec"), "litemaas-secrets"))
	if v := stringAt(env["DATABASE_ROLES"], "value"); v != "true" {
		p.addf("Job/litemaas-secrets: DATABASE_ROLES %q, want true", v)
	}
	if v := stringAt(env["POSTGRES_HOST"], "value"); v != haRWService {
		p.addf("Job/litemaas-secrets: POSTGRES_HOST %q, want %s", v, haRWService)
	}
	role := Find(objs, "Role", "litemaas-secrets")
	var names []string
	if role != nil {
		for _, r := range maps(listAt(role.Object, "rules")) {
			if slices.Contains(strs(listAt(r, "resources")), "secrets") {
				names = append(names, strs(listAt(r, "resourceNames"))...)
			}
		}
	}
	for _, rs := range secrets.RoleContract {
		if !slices.Contains(names, rs.Name) {
			p.addf("Role/litemaas-secrets: may not get/update Secret %s", rs.Name)
		}
	}
	return p
}

// checkHAClusterPart: the admission policy admits the role Secrets (the real API server exercises it in
// internal/secrets).
func checkHAClusterPart(objs []*unstructured.Unstructured) []string {
	var p problems
	vap := Find(objs, "ValidatingAdmissionPolicy", "litemaas-secrets-job")
	if vap == nil {
		return []string{"ValidatingAdmissionPolicy/litemaas-secrets-job is missing"}
	}
	var exprs []string
	for _, v := range maps(listAt(vap.Object, "spec", "validations")) {
		exprs = append(exprs, stringAt(v, "expression"))
	}
	all := strings.Join(exprs, "\n")
	for _, rs := range secrets.RoleContract {
		if !strings.Contains(all, "'"+rs.Name+"'") {
			p.addf("ValidatingAdmissionPolicy/litemaas-secrets-job: does not admit Secret %s", rs.Name)
		}
	}
	if !strings.Contains(all, "kubernetes.io/basic-auth") {
		p.addf("ValidatingAdmissionPolicy/litemaas-secrets-job: does not admit type kubernetes.io/basic-auth")
	}
	return p
}
