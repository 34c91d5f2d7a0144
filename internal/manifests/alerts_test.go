package manifests

// The alerts of gitops/components/alerts: every expression is parsed by Prometheus's own PromQL parser,
// every metric it reads exists where it is said to come from, every alert has its runbook entry, and
// the thresholds match the profile they watch.

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

const alertsReadme = "gitops/components/alerts/README.md"

// kubeStateMetrics are the kube-state-metrics series the alerts may read (OpenShift's platform
// kube-state-metrics v2 exposes them; names from its docs/metrics/workload/*.md).
var kubeStateMetrics = []string{
	"kube_job_status_failed", "kube_job_owner", "kube_job_status_start_time", "kube_cronjob_status_last_successful_time",
	"kube_deployment_status_replicas_available",
}

// openShiftDroppedMetrics is the part of OpenShift's kube-state-metrics --metric-denylist
// (cluster-monitoring-operator) that matches series an alert here might want: they never reach
// Prometheus there, so an alert arm reading them never fires.
var openShiftDroppedMetrics = []*regexp.Regexp{
	regexp.MustCompile(`^kube_.+_created$`),
	regexp.MustCompile(`^kube_.+_metadata_resource_version$`),
}

// droppedOnOpenShift returns the metrics of expr that OpenShift's kube-state-metrics drops.
func droppedOnOpenShift(expr parser.Expr) []string {
	var out []string
	for _, m := range metricNames(expr) {
		for _, re := range openShiftDroppedMetrics {
			if re.MatchString(m) {
				out = append(out, m)
			}
		}
	}
	return out
}

type alertRule struct {
	name, expr, forDur string
	labels, annots     map[string]any
}

func alertRules(t *testing.T, objs []*unstructured.Unstructured) []alertRule {
	t.Helper()
	var out []alertRule
	for _, o := range objs {
		if o.GetKind() != "PrometheusRule" {
			continue
		}
		for _, g := range objects.Maps(objects.ListAt(o.Object, "spec", "groups")) {
			for _, r := range objects.Maps(objects.ListAt(g, "rules")) {
				out = append(out, alertRule{
					name: objects.StringAt(r, "alert"), expr: objects.StringAt(r, "expr"), forDur: objects.StringAt(r, "for"),
					labels: objects.MapAt(r, "labels"), annots: objects.MapAt(r, "annotations"),
				})
			}
		}
	}
	return out
}

// metricNames returns the metric names an expression selects.
func metricNames(expr parser.Expr) []string {
	var out []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && vs.Name != "" && !slices.Contains(out, vs.Name) {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

// cnpgMetrics reads the metric names CloudNativePG v1.27.1 exports: its collector's own (pg_collector.go)
// and those of its default monitoring queries (config/manager/default-monitoring.yaml: cnpg_<query>_<column>).
func cnpgMetrics(t *testing.T) []string {
	t.Helper()
	dir := manifeststest.UpstreamModuleDir(t, "github.com/cloudnative-pg/cloudnative-pg")
	src, err := os.ReadFile(filepath.Join(dir, "pkg/management/postgres/webserver/metricserver/pg_collector.go"))
	require.NoError(t, err)
	var out []string
	for _, m := range regexp.MustCompile(`Name:\s+"([a-z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		out = append(out, "cnpg_collector_"+m[1])
	}
	queries, err := os.ReadFile(filepath.Join(dir, "config/manager/default-monitoring.yaml"))
	require.NoError(t, err)
	// Top-level queries are indented four spaces under `queries: |`; their metrics are "- <column>:".
	var query string
	for _, line := range strings.Split(string(queries), "\n") {
		if m := regexp.MustCompile(`^    ([a-z_]+):\s*$`).FindStringSubmatch(line); m != nil {
			query = m[1]
		}
		if m := regexp.MustCompile(`^\s+- ([a-z_]+):\s*$`).FindStringSubmatch(line); m != nil && query != "" {
			out = append(out, "cnpg_"+query+"_"+m[1])
		}
	}
	require.Contains(t, out, "cnpg_collector_up", "CloudNativePG's collector metrics could not be read")
	return out
}

func TestAlerts(t *testing.T) {
	objs := manifeststest.Rendered(t, "gitops/overlays/example-ha")
	rules := alertRules(t, objs)
	require.NotEmpty(t, rules)
	readme, err := os.ReadFile(filepath.Join(manifeststest.RepoRoot(t), alertsReadme))
	require.NoError(t, err)
	known := append(cnpgMetrics(t), kubeStateMetrics...)
	p := parser.NewParser(parser.Options{})

	var names []string
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			require.NotEmpty(t, r.name, "every rule is an alert")
			names = append(names, r.name)
			expr, err := p.ParseExpr(r.expr)
			require.NoError(t, err, "PromQL of %s", r.name)
			assert.Equal(t, parser.ValueTypeVector, expr.Type(), "an alert expression yields a vector")
			assert.Empty(t, droppedOnOpenShift(expr), "%s reads metrics OpenShift's kube-state-metrics drops", r.name)
			for _, m := range metricNames(expr) {
				assert.Contains(t, known, m, "%s reads %s, which neither CloudNativePG 1.27.1 nor kube-state-metrics exports", r.name, m)
			}
			d, err := time.ParseDuration(r.forDur)
			assert.NoError(t, err, "for")
			assert.Positive(t, d, "for: a single bad scrape must not page")
			assert.Contains(t, []any{"warning", "critical"}, r.labels["severity"])
			assert.NotEmpty(t, r.annots["summary"])
			assert.NotEmpty(t, r.annots["description"])
			anchor := strings.ToLower(r.name)
			assert.True(t, strings.HasSuffix(objects.StringAt(r.annots, "runbook_url"), alertsReadme+"#"+anchor), "runbook_url %q", r.annots["runbook_url"])
			// The runbook: a heading named like the alert, followed by text.
			section := regexp.MustCompile(`(?ms)^### ` + regexp.QuoteMeta(r.name) + `\n(.+?)(^### |\z)`).FindSubmatch(readme)
			if assert.NotNil(t, section, "%s has no runbook section in %s", r.name, alertsReadme) {
				assert.Greater(t, len(strings.TrimSpace(string(section[1]))), 80, "%s: runbook too short", r.name)
			}
		})
	}
	// What the profile must be alerted on.
	for _, want := range []string{"LiteMaaSSyncJobFailed", "LiteMaaSDriftReconcileFailed", "LiteMaaSNoRecentReconcile", "LiteMaaSBackupFailed", "LiteMaaSBackupTooOld", "LiteMaaSNoReadyReplica"} {
		assert.Contains(t, names, want)
	}
}

// The dropped-metrics rule can fail: the old "never succeeded" arm, on the CronJob's creation time.
func TestAlertsOnDroppedMetricsRejected(t *testing.T) {
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(`(time() - kube_cronjob_created{namespace="litemaas"} > 1800) unless on (namespace, cronjob) kube_cronjob_status_last_successful_time`)
	require.NoError(t, err)
	assert.Equal(t, []string{"kube_cronjob_created"}, droppedOnOpenShift(expr))
}

// The parser is strict: a broken expression fails, so the test above can fail.
func TestAlertsParserRejects(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	for _, expr := range []string{
		`kube_job_status_failed{namespace="litemaas" > 0`,
		`time() - max by (namespace) cnpg_collector_last_available_backup_timestamp > 26 * 3600`,
		`rate(kube_job_status_failed[5x])`,
	} {
		_, err := p.ParseExpr(expr)
		assert.Error(t, err, expr)
	}
}

// The thresholds follow what they watch: the backup age from the ScheduledBackup's daily schedule, the
// reconcile period from the drift CronJob's schedule (when the profile has one).
func TestAlertThresholds(t *testing.T) {
	objs := manifeststest.Rendered(t, "gitops/overlays/example-ha")
	byName := map[string]alertRule{}
	for _, r := range alertRules(t, objs) {
		byName[r.name] = r
	}
	sb := objects.Find(objs, "ScheduledBackup", "litemaas-db-daily")
	require.NotNil(t, sb)
	f := strings.Fields(objects.StringAt(sb.Object, "spec", "schedule"))
	require.Len(t, f, 6)
	assert.Equal(t, []string{"*", "*", "*"}, f[3:], "a daily schedule: day of month, month and weekday are *")
	assert.Contains(t, byName["LiteMaaSBackupTooOld"].expr, "> 26 * 3600", "26 h: one day plus two hours")

	var cron *unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CronJob" && strings.HasPrefix(o.GetName(), objects.SyncJobName) {
			cron = o
		}
	}
	if cron == nil {
		t.Skip("the profile renders no drift CronJob litemaas-sync*; LiteMaaSNoRecentReconcile assumes a 15-minute period")
	}
	m := regexp.MustCompile(`^\*/(\d+) \* \* \* \*$`).FindStringSubmatch(objects.StringAt(cron.Object, "spec", "schedule"))
	require.NotNil(t, m, "%s: schedule %q is not */N minutes", objects.Ref(cron), objects.StringAt(cron.Object, "spec", "schedule"))
	minutes, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	assert.Contains(t, byName["LiteMaaSNoRecentReconcile"].expr, "> 2 * "+strconv.Itoa(minutes*60), "two periods of %s", objects.Ref(cron))
}
