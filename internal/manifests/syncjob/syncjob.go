// Package syncjob holds the rules about the job image's Jobs: the Argo CD hook Jobs, the PostSync sync
// Job's contract (environment, catalog mount, pod failure policy, RBAC), their deadlines against the
// program's timeouts, and the drift CronJob.
package syncjob

import (
	"fmt"
	stdmaps "maps"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// syncJobEnv is the litemaas-sync program's environment contract: exactly these names.
var syncJobEnv = []string{
	"MODELS_FILE", "DATABASE_URL", "LITELLM_URL", "LITELLM_MASTER_KEY", "WAIT_TIMEOUT", "WAIT_FOR",
	"NAMESPACE", "LOG_FORMAT", "DRY_RUN", "PRUNE", "BACKEND_LITELLM_API_KEY", "BACKEND_ADMIN_API_KEYS",
	"GOMEMLIMIT", "JOB_NAME", "JOB_UID",
}

// CheckHookJobs: a hook Job that never ends blocks the Application forever (Argo CD's sync has no
// timeout), so every hook Job has a deadline; and a delete policy, so that the next sync can create it
// again under its fixed name.
func CheckHookJobs(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, o := range objs {
		if o.GetKind() != "Job" || o.GetAnnotations()[objects.HookAnnotation] == "" {
			continue
		}
		if d, ok, _ := unstructured.NestedInt64(o.Object, "spec", "activeDeadlineSeconds"); !ok || d <= 0 {
			p.Addf("%s: hook Job without spec.activeDeadlineSeconds", objects.Ref(o))
		}
		if o.GetAnnotations()[objects.HookDeleteAnnotation] == "" {
			p.Addf("%s: hook Job without %s", objects.Ref(o), objects.HookDeleteAnnotation)
		}
		if o.GetName() == "" {
			p.Addf("%s: hook Job without a fixed metadata.name", objects.Ref(o))
		}
	}
	return p
}

// SyncJobProfile is what differs between profiles in the litemaas-sync Job: what it waits for and
// which Secret holds its database URL.
type SyncJobProfile struct {
	WaitFor     string
	DatabaseURL [2]string // Secret, key
}

// singleInstanceSyncJob: PostgreSQL as the StatefulSet of gitops/base.
var singleInstanceSyncJob = SyncJobProfile{
	WaitFor:     "statefulset/postgres,deployment/litellm,deployment/backend,deployment/frontend",
	DatabaseURL: [2]string{"backend-secret", "DATABASE_URL"},
}

// CheckSyncJob: the litemaas-sync Job as its program and Argo CD need it.
func CheckSyncJob(objs []*unstructured.Unstructured) []string {
	return CheckSyncJobWith(objs, singleInstanceSyncJob)
}

// CheckSyncJobWith is CheckSyncJob for a profile's wait and database URL.
func CheckSyncJobWith(objs []*unstructured.Unstructured, profile SyncJobProfile) []string {
	job := objects.Find(objs, "Job", objects.SyncJobName)
	if job == nil {
		return []string{"Job/litemaas-sync is missing"}
	}
	p := checkSyncJobPod(job)
	spec := objects.MapAt(job.Object, "spec", "template", "spec")
	c := objects.ContainerNamed(spec, objects.SyncJobName)
	if c == nil {
		p.Addf("Job/litemaas-sync: no container named %s", objects.SyncJobName)
		return p
	}
	if args := objects.ListAt(c, "args"); len(args) != 1 || args[0] != "reconcile" {
		p.Addf("Job/litemaas-sync: args %v, want [reconcile]", args)
	}
	if objects.StringAt(c, "terminationMessagePolicy") != "FallbackToLogsOnError" {
		p.Addf("Job/litemaas-sync: terminationMessagePolicy is not FallbackToLogsOnError")
	}
	if !objects.IsTrue(c, "securityContext", "readOnlyRootFilesystem") {
		p.Addf("Job/litemaas-sync: readOnlyRootFilesystem is not true")
	}
	env := objects.EnvOf(c)
	p = append(p, checkSyncJobEnvNames(objs, env)...)
	p = append(p, checkSyncJobEnvValues(env, profile)...)

	// The deadline is above the program's own timeout.
	deadline, _, _ := unstructured.NestedInt64(job.Object, "spec", "activeDeadlineSeconds")
	if wait, err := time.ParseDuration(objects.StringAt(env["WAIT_TIMEOUT"], "value")); err != nil {
		p.Addf("Job/litemaas-sync: WAIT_TIMEOUT: %v", err)
	} else if time.Duration(deadline)*time.Second <= wait {
		p.Addf("Job/litemaas-sync: activeDeadlineSeconds %d is not above WAIT_TIMEOUT %s", deadline, wait)
	}

	p = append(p, checkPodFailurePolicy(job)...)
	p = append(p, checkJobMountsCatalog(objs, job)...)
	return p
}

// checkSyncJobPod: the Job is Argo CD's PostSync hook, recreated before each hook and kept until Argo
// CD has read its result, and its pod runs once as the job's ServiceAccount.
func checkSyncJobPod(job *unstructured.Unstructured) objects.Problems {
	var p objects.Problems
	a := job.GetAnnotations()
	if a[objects.HookAnnotation] != "PostSync" {
		p.Addf("Job/litemaas-sync: %s = %q, want PostSync", objects.HookAnnotation, a[objects.HookAnnotation])
	}
	if a[objects.HookDeleteAnnotation] != "BeforeHookCreation" {
		p.Addf("Job/litemaas-sync: %s = %q, want BeforeHookCreation", objects.HookDeleteAnnotation, a[objects.HookDeleteAnnotation])
	}
	if objects.Has(job.Object, "spec", "ttlSecondsAfterFinished") {
		p.Addf("Job/litemaas-sync: ttlSecondsAfterFinished can delete the Job before Argo CD reads its result")
	}
	// backoffLimit: one attempt, held by the "Job deadlines" check (deadlines.go).
	spec := objects.MapAt(job.Object, "spec", "template", "spec")
	if objects.StringAt(spec, "restartPolicy") != "Never" {
		p.Addf("Job/litemaas-sync: restartPolicy %q, want Never (podFailurePolicy needs it)", objects.StringAt(spec, "restartPolicy"))
	}
	if objects.StringAt(spec, "serviceAccountName") != objects.SyncJobName {
		p.Addf("Job/litemaas-sync: serviceAccountName %q, want %s", objects.StringAt(spec, "serviceAccountName"), objects.SyncJobName)
	}
	return p
}

// checkSyncJobEnvNames: the environment is exactly the program's contract, plus the variables the
// catalog's models name in apiKeyEnv (the README's way to give a model its API key), each from a Secret.
func checkSyncJobEnvNames(objs []*unstructured.Unstructured, env map[string]map[string]any) []string {
	var p objects.Problems
	keyEnvs := objects.APIKeyEnvs(objs)
	var names []string
	for n := range env {
		if _, isKey := keyEnvs[n]; !isKey {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	want := slices.Clone(syncJobEnv)
	sort.Strings(want)
	if !slices.Equal(names, want) {
		p.Addf("Job/litemaas-sync: env names %v, want exactly %v (and the catalog's apiKeyEnv variables)", names, want)
	}
	for _, name := range slices.Sorted(stdmaps.Keys(keyEnvs)) {
		e, ok := env[name]
		switch {
		case !ok:
			p.Addf("Job/litemaas-sync: no env %s, which model %s names in apiKeyEnv: add it from its Secret (env[].valueFrom.secretKeyRef) in a patch of the Job", name, keyEnvs[name])
		case objects.MapAt(e, "valueFrom", "secretKeyRef") == nil:
			p.Addf("Job/litemaas-sync: env %s (apiKeyEnv of model %s) must come from a Secret (valueFrom.secretKeyRef), never a value in git", name, keyEnvs[name])
		}
	}
	return p
}

// checkSyncJobEnvValues: the literal settings, the Secret keys and the downward API fields the program
// reads.
func checkSyncJobEnvValues(env map[string]map[string]any, profile SyncJobProfile) []string {
	var p objects.Problems
	literal := map[string]string{
		"LITELLM_URL": "http://litellm:4000", "WAIT_TIMEOUT": "10m",
		"WAIT_FOR":   profile.WaitFor,
		"LOG_FORMAT": "json", "DRY_RUN": "false", "PRUNE": "false", "GOMEMLIMIT": "48MiB",
	}
	for name, v := range literal {
		if got := objects.StringAt(env[name], "value"); got != v {
			p.Addf("Job/litemaas-sync: env %s = %q, want %q", name, got, v)
		}
	}
	for name, src := range map[string][2]string{
		"DATABASE_URL":            profile.DatabaseURL,
		"LITELLM_MASTER_KEY":      {"litellm-secret", "LITELLM_MASTER_KEY"},
		"BACKEND_LITELLM_API_KEY": {"backend-secret", "LITELLM_API_KEY"},
		"BACKEND_ADMIN_API_KEYS":  {"backend-secret", "ADMIN_API_KEYS"},
	} {
		sk := objects.MapAt(env[name], "valueFrom", "secretKeyRef")
		if objects.StringAt(sk, "name") != src[0] || objects.StringAt(sk, "key") != src[1] {
			p.Addf("Job/litemaas-sync: env %s does not come from %s/%s", name, src[0], src[1])
		}
	}
	if objects.StringAt(env["NAMESPACE"], "valueFrom", "fieldRef", "fieldPath") != "metadata.namespace" {
		p.Addf("Job/litemaas-sync: env NAMESPACE does not come from fieldRef metadata.namespace")
	}
	// The Job the outcome's Event is recorded on: the labels the Job controller puts on its pods.
	for name, label := range map[string]string{"JOB_NAME": "batch.kubernetes.io/job-name", "JOB_UID": "batch.kubernetes.io/controller-uid"} {
		if got := objects.StringAt(env[name], "valueFrom", "fieldRef", "fieldPath"); got != "metadata.labels['"+label+"']" {
			p.Addf("Job/litemaas-sync: env %s comes from %q, want fieldRef metadata.labels['%s']", name, got, label)
		}
	}
	return p
}

// checkPodFailurePolicy: exit code 2 (invalid catalog or configuration) fails the Job at once instead
// of being retried.
func checkPodFailurePolicy(job *unstructured.Unstructured) []string {
	for _, r := range objects.Maps(objects.ListAt(job.Object, "spec", "podFailurePolicy", "rules")) {
		oc := objects.MapAt(r, "onExitCodes")
		if objects.StringAt(r, "action") == "FailJob" && objects.StringAt(oc, "containerName") == objects.SyncJobName &&
			objects.StringAt(oc, "operator") == "In" && slices.ContainsFunc(objects.ListAt(oc, "values"), func(v any) bool { return fmt.Sprint(v) == "2" }) {
			return nil
		}
	}
	return []string{fmt.Sprintf("%s: no podFailurePolicy rule FailJob on exit code 2 of container %s", objects.Ref(job), objects.SyncJobName)}
}

// checkJobMountsCatalog: the Job mounts the generated models ConfigMap read-only where MODELS_FILE
// points, so a catalog edit changes the Job.
func checkJobMountsCatalog(objs []*unstructured.Unstructured, job *unstructured.Unstructured) []string {
	var p objects.Problems
	cm := objects.ModelsConfigMap(objs)
	if cm == nil {
		return []string{"no generated ConfigMap " + objects.ModelsConfigMapPrefix + "<hash>"}
	}
	spec := objects.MapAt(job.Object, "spec", "template", "spec")
	c := objects.ContainerNamed(spec, objects.SyncJobName)
	modelsFile := objects.StringAt(objects.EnvOf(c)[("MODELS_FILE")], "value")
	var volume string
	for _, v := range objects.Maps(objects.ListAt(spec, "volumes")) {
		if objects.StringAt(v, "configMap", "name") == cm.GetName() {
			volume = objects.StringAt(v, "name")
		}
	}
	if volume == "" {
		p.Addf("%s: mounts no volume from ConfigMap %s", objects.Ref(job), cm.GetName())
		return p
	}
	found := false
	for _, m := range objects.Maps(objects.ListAt(c, "volumeMounts")) {
		if objects.StringAt(m, "name") != volume {
			continue
		}
		found = true
		if !objects.IsTrue(m, "readOnly") {
			p.Addf("%s: catalog volume not mounted readOnly", objects.Ref(job))
		}
		if want := strings.TrimSuffix(objects.StringAt(m, "mountPath"), "/") + "/" + objects.ModelsConfigMapDataKey; modelsFile != want {
			p.Addf("%s: MODELS_FILE = %q, want %q (the mounted catalog)", objects.Ref(job), modelsFile, want)
		}
	}
	if !found {
		p.Addf("%s: container %s does not mount volume %s", objects.Ref(job), objects.SyncJobName, volume)
	}
	return p
}

// CheckSyncRBAC: the job's ServiceAccount may read deployments and statefulsets and its own catalog,
// and update its status ConfigMap; nothing else, nothing cluster-wide; and kustomize rewrote the
// catalog ConfigMap's name to the generated one.
func CheckSyncRBAC(objs []*unstructured.Unstructured) []string {
	var p objects.Problems
	for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding"} {
		o := objects.Find(objs, kind, objects.SyncJobName)
		if o == nil {
			p.Addf("%s/%s is missing", kind, objects.SyncJobName)
			continue
		}
		if o.GetAnnotations()[objects.HookAnnotation] != "" {
			p.Addf("%s/%s: is a hook; a PostSync hook's RBAC must be an ordinary Sync resource", kind, objects.SyncJobName)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
			p.Addf("%s: the app needs nothing cluster-wide", objects.Ref(o))
		}
	}
	// The job publishes its outcome into this ConfigMap; it is shipped so that the job needs no `create`.
	if status := objects.Find(objs, "ConfigMap", objects.SyncStatusConfigMap); status == nil {
		p.Addf("ConfigMap/%s is missing (the job may update it, not create it)", objects.SyncStatusConfigMap)
	} else if objects.Has(status.Object, "data") {
		p.Addf("ConfigMap/%s: ships data; Argo CD would overwrite what the job writes", objects.SyncStatusConfigMap)
	}
	if role := objects.Find(objs, "Role", objects.SyncJobName); role != nil {
		p = append(p, checkSyncRole(role, objects.ModelsConfigMap(objs))...)
	}
	if rb := objects.Find(objs, "RoleBinding", objects.SyncJobName); rb != nil {
		if objects.StringAt(rb.Object, "roleRef", "kind") != "Role" || objects.StringAt(rb.Object, "roleRef", "name") != objects.SyncJobName {
			p.Addf("RoleBinding/%s: roleRef is not Role/%s", objects.SyncJobName, objects.SyncJobName)
		}
		subjects := objects.Maps(objects.ListAt(rb.Object, "subjects"))
		if len(subjects) != 1 || objects.StringAt(subjects[0], "kind") != "ServiceAccount" || objects.StringAt(subjects[0], "name") != objects.SyncJobName {
			p.Addf("RoleBinding/%s: subjects %v, want the ServiceAccount %s only", objects.SyncJobName, subjects, objects.SyncJobName)
		}
	}
	return p
}

// checkSyncRole: the Role's rules, each as narrow as the job's reads and writes; cm is the generated
// models ConfigMap (nil when there is none).
func checkSyncRole(role, cm *unstructured.Unstructured) []string {
	var p objects.Problems
	var sawApps, sawCM, sawStatus bool
	for _, r := range objects.Maps(objects.ListAt(role.Object, "rules")) {
		groups, resources, verbs, names := objects.Strs(objects.ListAt(r, "apiGroups")), objects.Strs(objects.ListAt(r, "resources")), objects.Strs(objects.ListAt(r, "verbs")), objects.Strs(objects.ListAt(r, "resourceNames"))
		switch {
		case slices.Equal(groups, []string{"apps"}):
			sawApps = true
			if !objects.SameSet(resources, []string{"deployments", "statefulsets"}) || !objects.SameSet(verbs, []string{"get", "list", "watch"}) || len(names) != 0 {
				p.Addf("Role/%s: apps rule %v %v %v, want get/list/watch on deployments and statefulsets", objects.SyncJobName, resources, verbs, names)
			}
		case slices.Equal(groups, []string{""}) && slices.Equal(resources, []string{"configmaps"}) && slices.Equal(names, []string{objects.SyncStatusConfigMap}):
			sawStatus = true
			if !objects.SameSet(verbs, []string{"get", "update"}) {
				p.Addf("Role/%s: verbs %v on ConfigMap %s, want get and update", objects.SyncJobName, verbs, objects.SyncStatusConfigMap)
			}
		case slices.Equal(groups, []string{""}) && slices.Equal(resources, []string{"configmaps"}):
			sawCM = true
			if !slices.Equal(verbs, []string{"get"}) {
				p.Addf("Role/%s: configmaps verbs %v, want [get]", objects.SyncJobName, verbs)
			}
			if cm == nil || !slices.Equal(names, []string{cm.GetName()}) {
				p.Addf("Role/%s: configmaps resourceNames %v, want the generated models ConfigMap", objects.SyncJobName, names)
			}
		case slices.Equal(groups, []string{"postgresql.cnpg.io"}):
			// The ha profile: the job waits for its CloudNativePG Cluster, by name.
			if !slices.Equal(resources, []string{"clusters"}) || !objects.SameSet(verbs, []string{"get", "list", "watch"}) || len(names) != 1 {
				p.Addf("Role/%s: cnpg rule %v %v %v, want get/list/watch on one named Cluster", objects.SyncJobName, resources, verbs, names)
			}
		case slices.Equal(groups, []string{"route.openshift.io"}):
			// Read to check the backend's URLs against the routes' hosts.
			if !slices.Equal(resources, []string{"routes"}) || !slices.Equal(verbs, []string{"get"}) || !objects.SameSet(names, []string{"litellm", "litemaas"}) {
				p.Addf("Role/%s: routes rule %v %v %v, want get on routes litellm and litemaas", objects.SyncJobName, resources, verbs, names)
			}
		case slices.Equal(groups, []string{"events.k8s.io"}):
			// The outcome as an Event on the job's Job, which the Argo CD console shows.
			if !slices.Equal(resources, []string{"events"}) || !slices.Equal(verbs, []string{"create"}) {
				p.Addf("Role/%s: events rule %v %v, want create on events", objects.SyncJobName, resources, verbs)
			}
		default:
			p.Addf("Role/%s: unexpected rule %v", objects.SyncJobName, r)
		}
	}
	if !sawApps || !sawCM || !sawStatus {
		p.Addf("Role/%s: missing a rule (apps: %v, models ConfigMap: %v, status ConfigMap: %v)", objects.SyncJobName, sawApps, sawCM, sawStatus)
	}
	return p
}
