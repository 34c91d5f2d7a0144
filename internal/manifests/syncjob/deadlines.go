package syncjob

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/config"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// Every Job running the reconcile ends by itself before Kubernetes kills it: its
// activeDeadlineSeconds is above WAIT_TIMEOUT + RETRY_TIMEOUT (one deadline for the whole reconcile)
// + the status write + start and exit, so the user always reads the program's own outcome.

// The program's own deadlines, above which only the Job's backstop remains: the status ConfigMap is
// written with at most this timeout after the reconcile, and the process needs a moment to start
// (catalog, database pool) and to exit.
const (
	statusPublishTimeout = 10 * time.Second
	startAndExitSlack    = 20 * time.Second
)

// reconcileTimeout is one of the reconcile's timeouts: its variable and the program's default.
type reconcileTimeout struct {
	name string
	def  time.Duration
}

// envDefault is the default of a config.Reconcile field's variable, from its struct tag, so that the
// arithmetic follows the code.
func envDefault(field string) (reconcileTimeout, error) {
	f, ok := reflect.TypeOf(config.Reconcile{}).FieldByName(field)
	if !ok {
		return reconcileTimeout{}, fmt.Errorf("config.Reconcile has no field %s", field)
	}
	parts := strings.Split(f.Tag.Get("env"), ",")
	name := strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "default="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				return reconcileTimeout{}, fmt.Errorf("config.Reconcile.%s: default of %s: %w", field, name, err)
			}
			return reconcileTimeout{name: name, def: d}, nil
		}
	}
	return reconcileTimeout{}, fmt.Errorf("config.Reconcile.%s: %s has no default", field, name)
}

// reconcileTimeouts are WAIT_TIMEOUT and RETRY_TIMEOUT with the program's defaults.
func reconcileTimeouts() (wait, retry reconcileTimeout, err error) {
	if wait, err = envDefault("WaitTimeout"); err != nil {
		return wait, retry, err
	}
	retry, err = envDefault("RetryTimeout")
	return wait, retry, err
}

// jobSpecs are the specs of the Jobs that run the reconcile: the PostSync hook and the drift
// CronJob's template.
func jobSpecs(objs []*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	if j := objects.Find(objs, "Job", objects.SyncJobName); j != nil {
		out["Job/"+objects.SyncJobName] = objects.MapAt(j.Object, "spec")
	}
	if c := objects.Find(objs, "CronJob", driftCronJobName); c != nil {
		out["CronJob/"+driftCronJobName] = objects.MapAt(c.Object, "spec", "jobTemplate", "spec")
	}
	return out
}

// CheckJobDeadlines: the hook Job and the drift CronJob both run the reconcile, and each one's
// activeDeadlineSeconds leaves the program time to end by itself.
func CheckJobDeadlines(objs []*unstructured.Unstructured) []string {
	wait, retry, err := reconcileTimeouts()
	if err != nil {
		return []string{err.Error()}
	}
	var p objects.Problems
	specs := jobSpecs(objs)
	for _, owner := range []string{"Job/" + objects.SyncJobName, "CronJob/" + driftCronJobName} {
		spec, ok := specs[owner]
		if !ok {
			p.Addf("%s is missing: the reconcile runs in the hook Job and the drift CronJob", owner)
			continue
		}
		p = append(p, checkJobDeadline(owner, spec, wait, retry)...)
	}
	// The other hook Jobs (the PreSync secrets job) have their own deadline; one attempt each too.
	for _, o := range objs {
		if o.GetKind() == "Job" && o.GetName() != objects.SyncJobName && o.GetAnnotations()[objects.HookAnnotation] != "" {
			p = append(p, checkOneAttempt(objects.Ref(o), objects.MapAt(o.Object, "spec"))...)
		}
	}
	return p
}

// checkOneAttempt: backoffLimit 0. activeDeadlineSeconds bounds the whole Job, every pod of it: a retry
// after a first pod that ran nearly to the deadline would be killed before it could end by itself and
// report. So one attempt per Job; the next sync (or drift run) is the retry.
func checkOneAttempt(owner string, spec map[string]any) []string {
	backoff, ok, _ := unstructured.NestedInt64(spec, "backoffLimit")
	if !ok {
		backoff = 6 // Kubernetes' default
	}
	if backoff == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s: backoffLimit %d: activeDeadlineSeconds covers all attempts, so a retry gets only what the first pod left; set backoffLimit: 0 (the next sync or drift run is the retry)", owner, backoff)}
}

// checkJobDeadline holds one Job spec's activeDeadlineSeconds against the timeouts its container
// litemaas-sync runs with (its env, else the program's defaults).
func checkJobDeadline(owner string, spec map[string]any, wait, retry reconcileTimeout) []string {
	c := objects.ContainerNamed(objects.MapAt(spec, "template", "spec"), objects.SyncJobName)
	if c == nil {
		return []string{fmt.Sprintf("%s: no container %s", owner, objects.SyncJobName)}
	}
	env := objects.EnvOf(c)
	var p objects.Problems
	value := func(t reconcileTimeout) time.Duration {
		e, ok := env[t.name]
		if !ok {
			return t.def
		}
		d, err := time.ParseDuration(objects.StringAt(e, "value"))
		if err != nil {
			p.Addf("%s: env %s: %v", owner, t.name, err)
		}
		return d
	}
	budget := value(wait) + value(retry) + statusPublishTimeout + startAndExitSlack
	if len(p) > 0 {
		return p
	}
	p = append(p, checkOneAttempt(owner, spec)...)
	deadline, ok, _ := unstructured.NestedInt64(spec, "activeDeadlineSeconds")
	if !ok {
		return append(p, fmt.Sprintf("%s: no activeDeadlineSeconds; it must be above %s = %s + %s + status write + start/exit", owner, budget, wait.name, retry.name))
	}
	if time.Duration(deadline)*time.Second <= budget {
		p.Addf("%s: activeDeadlineSeconds %d must be above %s = %s + %s + status write + start/exit", owner, deadline, budget, wait.name, retry.name)
	}
	return p
}
