package manifests

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/config"
)

// The program's own deadlines, above which only the Job's backstop remains: the status ConfigMap is
// written with at most this timeout after the reconcile, and the process needs a moment to start
// (catalog, database pool) and to exit.
const (
	statusPublishTimeout = 10 * time.Second
	startAndExitSlack    = 20 * time.Second
)

// envDefault is the default of a config.Reconcile field's variable, from its struct tag, so that the
// arithmetic follows the code.
func envDefault(t *testing.T, field string) (name string, def time.Duration) {
	t.Helper()
	f, ok := reflect.TypeOf(config.Reconcile{}).FieldByName(field)
	require.True(t, ok, "config.Reconcile.%s", field)
	parts := strings.Split(f.Tag.Get("env"), ",")
	name = strings.TrimSpace(parts[0])
	for _, p := range parts[1:] {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "default="); ok {
			d, err := time.ParseDuration(v)
			require.NoError(t, err, "default of %s", name)
			return name, d
		}
	}
	t.Fatalf("%s has no default", name)
	return "", 0
}

// jobSpecs are the specs of the Jobs that run the reconcile: the PostSync hook and the drift
// CronJob's template.
func jobSpecs(objs []*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	if j := Find(objs, "Job", syncJobName); j != nil {
		out["Job/"+syncJobName] = mapAt(j.Object, "spec")
	}
	if c := Find(objs, "CronJob", driftCronJobName); c != nil {
		out["CronJob/"+driftCronJobName] = mapAt(c.Object, "spec", "jobTemplate", "spec")
	}
	return out
}

// Every Job running the reconcile ends by itself before Kubernetes kills it: its
// activeDeadlineSeconds is above WAIT_TIMEOUT + RETRY_TIMEOUT (one deadline for the whole reconcile)
// + the status write + start and exit, so the user always reads the program's own outcome.
func TestJobDeadlinesLetTheProgramEndFirst(t *testing.T) {
	waitName, waitDefault := envDefault(t, "WaitTimeout")
	retryName, retryDefault := envDefault(t, "RetryTimeout")
	for _, tg := range targets {
		if tg.kind != appTarget && tg.kind != haTarget {
			continue
		}
		t.Run(tg.dir, func(t *testing.T) {
			specs := jobSpecs(rendered(t, tg.dir))
			require.Len(t, specs, 2, "the hook Job and the drift CronJob")
			for owner, spec := range specs {
				c := containerNamed(mapAt(spec, "template", "spec"), syncJobName)
				require.NotNil(t, c, "%s: container %s", owner, syncJobName)
				env := envOf(c)
				value := func(name string, def time.Duration) time.Duration {
					e, ok := env[name]
					if !ok {
						return def
					}
					d, err := time.ParseDuration(stringAt(e, "value"))
					require.NoError(t, err, "%s: env %s", owner, name)
					return d
				}
				budget := value(waitName, waitDefault) + value(retryName, retryDefault) + statusPublishTimeout + startAndExitSlack
				deadline, ok, _ := unstructured.NestedInt64(spec, "activeDeadlineSeconds")
				require.True(t, ok, "%s: activeDeadlineSeconds", owner)
				assert.Greater(t, time.Duration(deadline)*time.Second, budget,
					"%s: activeDeadlineSeconds %d must be above %s = %s + %s + status write + start/exit", owner, deadline, budget, waitName, retryName)
			}
		})
	}
}

func TestDeadlineArithmetic(t *testing.T) {
	tests := []struct {
		name     string
		deadline int64
		ok       bool
	}{
		{"the old deadline, exactly WAIT_TIMEOUT + RETRY_TIMEOUT", 900, false},
		{"no room for the status write", 905, false},
		{"a minute above", 960, true},
	}
	_, wait := envDefault(t, "WaitTimeout")
	_, retry := envDefault(t, "RetryTimeout")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			budget := wait + retry + statusPublishTimeout + startAndExitSlack
			assert.Equal(t, tc.ok, time.Duration(tc.deadline)*time.Second > budget)
		})
	}
}
