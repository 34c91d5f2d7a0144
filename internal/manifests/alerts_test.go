package manifests

// The alerts of gitops/components/alerts: Prometheus's own promtool (built by hack/promtool/build.sh)
// checks the rendered rules and runs their unit tests (testdata/alerts.promtool-test.yaml: each alert
// fires when it should and not otherwise), and parses every expression; every metric it reads exists
// where it is said to come from, every alert has its runbook entry, and the thresholds match the profile
// they watch.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

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

// droppedOnOpenShift returns the metrics of an expression (its metricNames) that OpenShift's
// kube-state-metrics drops.
func droppedOnOpenShift(metrics []string) []string {
	var out []string
	for _, m := range metrics {
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

// envPromtool names promtool, or the directory holding it, as hack/promtool/build.sh builds it (its last
// output line); `make test` sets it.
const envPromtool = "PROMTOOL_BIN"

// promtoolBin returns the promtool binary of $PROMTOOL_BIN. Unset, the test is skipped, except in CI,
// where a missing promtool is a failure.
func promtoolBin(t *testing.T) string {
	t.Helper()
	p := os.Getenv(envPromtool)
	if p == "" {
		msg := envPromtool + " is unset: the alerts are judged by Prometheus's promtool from hack/promtool/build.sh " +
			"(`make test` builds and passes it; by hand: " + envPromtool + "=$(hack/promtool/build.sh | tail -n 1) go test -run Alert ./internal/manifests/)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		p = filepath.Join(p, "promtool")
	}
	fi, err := os.Stat(p)
	require.NoError(t, err, "%s: no promtool binary (build it with hack/promtool/build.sh)", envPromtool)
	require.False(t, fi.IsDir(), "%s: %s is a directory without promtool", envPromtool, p)
	return p
}

// promtool runs promtool with args and returns its output (stdout, then stderr) and its error.
func promtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(promtoolBin(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String() + stderr.String(), err
}

// selectorProbe is the label matcher metricNames has promtool add to every vector selector.
const selectorProbe = `litemaas_selector_probe="x"`

// probedSelector is a vector selector as promtool prints it with the probe: the metric name (absent
// for {__name__=~...}), then matchers whose quoted values may hold braces, then the probe.
var probedSelector = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)?\{(?:[^{}"]|"(?:[^"\\]|\\.)*")*?` + regexp.QuoteMeta(selectorProbe))

// metricNames returns the metric names an expression selects. Prometheus's parser finds the selectors:
// `promtool promql label-matchers set` parses the expression (an error if it is not PromQL), adds the
// probe to every vector selector, plain or inside a range, subquery or function, and prints it back.
func metricNames(t *testing.T, expr string) ([]string, error) {
	t.Helper()
	name, value, _ := strings.Cut(selectorProbe, "=")
	out, err := promtool(t, "--experimental", "promql", "label-matchers", "set", expr, name, strings.Trim(value, `"`))
	if err != nil {
		return nil, fmt.Errorf("promtool cannot parse %q: %w\n%s", expr, err, out)
	}
	found := probedSelector.FindAllStringSubmatch(out, -1)
	if n := strings.Count(out, selectorProbe); len(found) != n {
		return nil, fmt.Errorf("read %d of the %d selectors promtool printed:\n%s", len(found), n, out)
	}
	var names []string
	for _, m := range found {
		if m[1] != "" && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names, nil
}

// instantVector returns an error unless expr yields an instant vector: Prometheus's parser type-checks
// the argument of sort(), which takes only an instant vector.
func instantVector(t *testing.T, expr string) error {
	t.Helper()
	// The expression on lines of its own: a trailing # comment cannot swallow the parenthesis.
	if out, err := promtool(t, "--experimental", "promql", "format", "sort(\n"+expr+"\n)"); err != nil {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	return nil
}

// ruleGroups returns the groups of the rendered PrometheusRules as a Prometheus rule file; without
// annotations when annotations is false (promtool's unit tests compare them whole; their templates are
// checked by `promtool check rules` on the full file, their texts by TestAlerts).
func ruleGroups(t *testing.T, objs []*unstructured.Unstructured, annotations bool) []byte {
	t.Helper()
	var groups []any
	for _, o := range objs {
		if o.GetKind() != "PrometheusRule" {
			continue
		}
		for _, g := range objects.Maps(objects.ListAt(o.Object, "spec", "groups")) {
			var rules []any
			for _, r := range objects.Maps(objects.ListAt(g, "rules")) {
				c := map[string]any{}
				for k, v := range r {
					if k != "annotations" || annotations {
						c[k] = v
					}
				}
				rules = append(rules, c)
			}
			c := map[string]any{}
			for k, v := range g {
				c[k] = v
			}
			c["rules"] = rules
			groups = append(groups, c)
		}
	}
	require.NotEmpty(t, groups, "no PrometheusRule groups rendered")
	b, err := yaml.Marshal(map[string]any{"groups": groups})
	require.NoError(t, err)
	return b
}

// promtoolUnitTests is the file of `promtool test rules` cases for the rendered alerts.
const promtoolUnitTests = "testdata/alerts.promtool-test.yaml"

// runRuleUnitTests writes rules (a rule file) next to a copy of promtoolUnitTests and runs them.
func runRuleUnitTests(t *testing.T, rules []byte) (string, error) {
	t.Helper()
	dir := t.TempDir()
	tests, err := os.ReadFile(promtoolUnitTests)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tests.yaml"), tests, 0o644))
	return promtool(t, "test", "rules", filepath.Join(dir, "tests.yaml"))
}

// unitTestCoverage returns, per alert name, whether promtoolUnitTests has a case where it fires and one
// where it does not.
func unitTestCoverage(t *testing.T) (fires, quiet map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(promtoolUnitTests)
	require.NoError(t, err)
	var f struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `json:"alertname"`
				ExpAlerts []map[string]any `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	fires, quiet = map[string]bool{}, map[string]bool{}
	for _, tg := range f.Tests {
		for _, c := range tg.AlertRuleTest {
			if len(c.ExpAlerts) > 0 {
				fires[c.Alertname] = true
			} else {
				quiet[c.Alertname] = true
			}
		}
	}
	return fires, quiet
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

	// promtool judges the rules as Prometheus loads them (PromQL, `for`, label and annotation templates,
	// duplicates), then runs their unit tests: every alert fires on its input series and stays quiet
	// where it must.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "litemaas.rules.yaml"), ruleGroups(t, objs, true), 0o644))
	out, err := promtool(t, "check", "rules", "--lint=all", "--lint-fatal", filepath.Join(dir, "litemaas.rules.yaml"))
	require.NoError(t, err, "promtool check rules on the rendered PrometheusRule:\n%s", out)
	out, err = runRuleUnitTests(t, ruleGroups(t, objs, false))
	require.NoError(t, err, "promtool test rules %s:\n%s", promtoolUnitTests, out)
	t.Logf("promtool test rules %s:\n%s", promtoolUnitTests, out)
	fires, quiet := unitTestCoverage(t)

	var names []string
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			require.NotEmpty(t, r.name, "every rule is an alert")
			names = append(names, r.name)
			metrics, err := metricNames(t, r.expr)
			require.NoError(t, err, "PromQL of %s", r.name)
			assert.NotEmpty(t, metrics, "%s reads no metric", r.name)
			assert.NoError(t, instantVector(t, r.expr), "an alert expression yields a vector")
			assert.True(t, fires[r.name], "%s: no case in %s where it fires", r.name, promtoolUnitTests)
			assert.True(t, quiet[r.name], "%s: no case in %s where it stays quiet", r.name, promtoolUnitTests)
			assert.Empty(t, droppedOnOpenShift(metrics), "%s reads metrics OpenShift's kube-state-metrics drops", r.name)
			for _, m := range metrics {
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
	metrics, err := metricNames(t, `(time() - kube_cronjob_created{namespace="litemaas"} > 1800) unless on (namespace, cronjob) kube_cronjob_status_last_successful_time`)
	require.NoError(t, err)
	assert.Equal(t, []string{"kube_cronjob_created"}, droppedOnOpenShift(metrics))
}

// The parser is strict: a broken expression fails, so the test above can fail; `promtool check rules`
// rejects a rule file holding it.
func TestAlertsParserRejects(t *testing.T) {
	for _, expr := range []string{
		`kube_job_status_failed{namespace="litemaas" > 0`,
		`time() - max by (namespace) cnpg_collector_last_available_backup_timestamp > 26 * 3600`,
		`rate(kube_job_status_failed[5x])`,
	} {
		_, err := metricNames(t, expr)
		assert.Error(t, err, expr)
		f := filepath.Join(t.TempDir(), "rules.yaml")
		b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "g", "rules": []any{
			map[string]any{"alert": "Broken", "expr": expr, "for": "1m"},
		}}}})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(f, b, 0o644))
		out, err := promtool(t, "check", "rules", f)
		assert.Error(t, err, "promtool check rules accepts %s:\n%s", expr, out)
	}
}

// The selectors are read whatever their form, and the vector check can fail.
func TestAlertsMetricNamesAndTypes(t *testing.T) {
	metrics, err := metricNames(t, `sum by (pod) (rate(a_total{re=~"x{2}|}", q="\"{"}[5m]))
		/ on (pod) group_left max_over_time(b[1h:5m]) + on (pod) {__name__="c"} # d{e="f"}
		and on (pod) a_total offset 5m`)
	require.NoError(t, err)
	assert.Equal(t, []string{"a_total", "b"}, metrics, "a nameless selector and a comment name no metric")
	require.NoError(t, instantVector(t, `up == 0 # a comment`))
	for _, expr := range []string{`time() - 3600 > bool 0`, `kube_job_status_failed[5m]`, `"text"`} {
		assert.Error(t, instantVector(t, expr), expr)
	}
}

// The unit tests can fail: with the backup age threshold moved from 26 to 30 hours, the case where
// LiteMaaSBackupTooOld fires fails, and so does the run.
func TestAlertsUnitTestsCatchAChangedRule(t *testing.T) {
	rules := ruleGroups(t, manifeststest.Rendered(t, "gitops/overlays/example-ha"), false)
	require.Contains(t, string(rules), "> 26 * 3600")
	out, err := runRuleUnitTests(t, []byte(strings.Replace(string(rules), "> 26 * 3600", "> 30 * 3600", 1)))
	require.Error(t, err, "promtool test rules passes a changed threshold:\n%s", out)
	assert.Contains(t, out, "LiteMaaSBackupTooOld")
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
