package parity

// Tests of the parity checks (parity.go): the table against every overlay, the features upstream's
// settings enable, and each check fed a broken object.

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/manifeststest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/targets"
)

func readParityTable(t *testing.T) []Row {
	t.Helper()
	rows, err := ReadRows(manifeststest.RepoRoot(t))
	require.NoError(t, err)
	return rows
}

func readUpstreamSettings(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(manifeststest.RepoRoot(t), upstreamList))
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	require.NotEmpty(t, out)
	return out
}

// componentsOf returns the names of the components under gitops/components that a kustomization
// reaches, through its bases and its own components.
func componentsOf(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out, err := targets.ComponentsIn(manifeststest.RepoRoot(t), dir)
	require.NoError(t, err)
	return out
}

// clusterSettings reads the data of an overlay's cluster-settings file.
func clusterSettings(t *testing.T, file string) map[string]string {
	t.Helper()
	out, err := targets.SettingsData(manifeststest.RepoRoot(t), file)
	require.NoError(t, err)
	return out
}

func appTargets(t *testing.T) []targets.Target {
	var out []targets.Target
	for _, tg := range manifeststest.Targets(t) {
		if tg.Kind == targets.AppTarget {
			out = append(out, tg)
		}
	}
	return out
}

func TestParityTable(t *testing.T) {
	rows := readParityTable(t)
	manifeststest.Report(t, "upstream settings", CheckUpstreamCovered(rows, readUpstreamSettings(t)))
	for _, r := range rows {
		for _, a := range r.ours {
			if a.component != "" {
				fi, err := os.Stat(filepath.Join(manifeststest.RepoRoot(t), "gitops/components", a.component))
				assert.True(t, err == nil && fi.IsDir(), "%s: no component %s", r.where(), a.component)
			}
		}
	}
	for _, tg := range appTargets(t) {
		t.Run(tg.Dir, func(t *testing.T) {
			manifeststest.Report(t, "parity", Check(rows, manifeststest.Rendered(t, tg.Dir), componentsOf(t, tg.Dir), clusterSettings(t, tg.Settings)))
		})
	}
}

func TestUpstreamFeatures(t *testing.T) {
	for _, tg := range appTargets(t) {
		t.Run(tg.Dir, func(t *testing.T) {
			objs := manifeststest.Rendered(t, tg.Dir)
			manifeststest.Report(t, "backup volume", CheckBackupVolume(objs))
			manifeststest.Report(t, "rate limits", CheckRateLimits(objs, clusterSettings(t, tg.Settings)))
			manifeststest.Report(t, "Redis", CheckRedisWiring(objs))
			manifeststest.Report(t, "schema update", CheckSchemaUpdate(objs))
		})
	}
	// Redis is switched on in at least one overlay, so that the "with" half of the Redis check runs.
	assert.True(t, slices.ContainsFunc(appTargets(t), func(tg targets.Target) bool {
		return objects.Find(manifeststest.Rendered(t, tg.Dir), "Deployment", "redis") != nil
	}))
}

// TestRateLimitsTunable: a value changed in an overlay's cluster-settings reaches the backend (on a
// copy of the tree).
func TestRateLimitsTunable(t *testing.T) {
	tmp := t.TempDir()
	require.NoError(t, os.CopyFS(filepath.Join(tmp, "gitops"), os.DirFS(filepath.Join(manifeststest.RepoRoot(t), "gitops"))))
	file := filepath.Join(tmp, "gitops/overlays/example/settings/cluster-settings.yaml")
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	text := regexp.MustCompile(`(?m)^  rateLimitMax: .*$`).ReplaceAllString(string(data), `  rateLimitMax: "4321"`)
	text = regexp.MustCompile(`(?m)^  rateLimitTimeWindow: .*$`).ReplaceAllString(text, `  rateLimitTimeWindow: 15m`)
	require.NotEqual(t, string(data), text)
	require.NoError(t, os.WriteFile(file, []byte(text), 0o644))
	objs, err := objects.Render(filepath.Join(tmp, "gitops/overlays/example"))
	require.NoError(t, err)
	manifeststest.Report(t, "rate limits", CheckRateLimits(objs, map[string]string{"rateLimitMax": "4321", "rateLimitTimeWindow": "15m"}))
}

// TestOIDCOverlay: the OIDC overlay needs no cluster-admin part and no OAuthClient; the secrets job
// runs in oidc mode and may read the user's Secret, and only that one more.
func TestOIDCOverlay(t *testing.T) {
	objs := manifeststest.Rendered(t, "gitops/overlays/example-oidc")
	for _, o := range objs {
		assert.NotEqual(t, "OAuthClient", o.GetKind())
		if o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding" {
			t.Errorf("%s: the OIDC overlay needs no cluster-scoped RBAC", objects.Ref(o))
		}
	}
	settings := clusterSettings(t, "gitops/overlays/example-oidc/settings/cluster-settings.yaml")
	backend := objects.Find(objs, "Deployment", "backend")
	for env, want := range map[string]string{"AUTH_PROVIDER": "oidc", "OAUTH_ISSUER": settings["oidcIssuer"], "OIDC_SCOPES": settings["oidcScopes"], "OIDC_GROUPS_CLAIM": settings["oidcGroupsClaim"]} {
		v, _ := objects.EnvValue(backend, "backend", env)
		assert.Equal(t, want, v, "backend %s", env)
	}
	job := objects.Find(objs, "Job", "litemaas-secrets")
	require.NotNil(t, job)
	v, _ := objects.EnvValue(job, "litemaas-secrets", "OAUTH_MODE")
	assert.Equal(t, "oidc", v)
	name, _ := objects.EnvValue(job, "litemaas-secrets", "OIDC_CLIENT_SECRET_NAME")
	role := objects.Find(objs, "Role", "litemaas-secrets")
	require.NotNil(t, role)
	var readable []string
	for _, r := range objects.Maps(objects.ListAt(role.Object, "rules")) {
		if slices.Contains(objects.ListAt(r, "resources"), any("secrets")) && slices.Contains(objects.ListAt(r, "verbs"), any("get")) {
			for _, n := range objects.ListAt(r, "resourceNames") {
				readable = append(readable, fmt.Sprint(n))
			}
		}
	}
	assert.Contains(t, readable, name, "the job may read the Secret it is told to copy")
}

// removeEnv deletes an env var of a container.
func removeEnv(t *testing.T, objs []*unstructured.Unstructured, kind, name, cname, env string) {
	t.Helper()
	c := manifeststest.ContainerOf(t, objs, kind, name, cname)
	var kept []any
	for _, e := range objects.ListAt(c, "env") {
		if objects.StringAt(e.(map[string]any), "name") != env {
			kept = append(kept, e)
		}
	}
	c["env"] = kept
}

// TestParityChecksRejectBrokenObjects: each check above fails on one broken thing in an otherwise good
// rendering (example-with-options: Redis, custom CA and backups switched on).
func TestParityChecksRejectBrokenObjects(t *testing.T) {
	const overlay = "gitops/overlays/example-with-options"
	settings := clusterSettings(t, "gitops/overlays/example/settings/cluster-settings.yaml")
	rows := readParityTable(t)
	parity := func(objs []*unstructured.Unstructured) []string {
		return Check(rows, objs, componentsOf(t, overlay), settings)
	}
	rates := func(objs []*unstructured.Unstructured) []string { return CheckRateLimits(objs, settings) }
	cases := []struct {
		name   string
		check  func([]*unstructured.Unstructured) []string
		break_ func(objs []*unstructured.Unstructured) []*unstructured.Unstructured
		want   string
	}{
		{"parity: a value differs", parity, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "DEFAULT_USER_RPM_LIMIT", "60")
			return o
		}, `backend DEFAULT_USER_RPM_LIMIT: renders "value 60"`},
		{"parity: a variable without a row", parity, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "litellm", "litellm", "LITELLM_LOG", "DEBUG")
			return o
		}, "litellm LITELLM_LOG is rendered but has no row"},
		{"parity: a mount without a row", parity, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			c := manifeststest.ContainerOf(t, o, "Deployment", "frontend", "frontend")
			c["volumeMounts"] = []any{map[string]any{"name": "tmp", "mountPath": "/tmp"}}
			return o
		}, "frontend volume /tmp is rendered but has no row"},
		{"parity: an init container's variable without a row", parity, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			init := objects.Maps(objects.ListAt(manifeststest.PodSpecOf(t, o, "Deployment", "backend"), "initContainers"))[0]
			init["env"] = []any{map[string]any{"name": "PGCONNECT_TIMEOUT", "value": "2"}}
			return o
		}, "backend (init) PGCONNECT_TIMEOUT is rendered but has no row"},
		{"parity: a setting removed", parity, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			removeEnv(t, o, "Deployment", "backend", "backend", "REDIS_PORT")
			return o
		}, `backend REDIS_PORT: renders "unset"`},
		{"backup: no BACKUP_STORAGE_PATH", CheckBackupVolume, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			removeEnv(t, o, "Deployment", "backend", "backend", "BACKUP_STORAGE_PATH")
			return o
		}, "BACKUP_STORAGE_PATH \"\" is not an absolute path"},
		{"backup: mounted elsewhere", CheckBackupVolume, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "BACKUP_STORAGE_PATH", "/app/data/backups")
			return o
		}, "nothing is mounted at BACKUP_STORAGE_PATH /app/data/backups"},
		{"backup: read-only mount", CheckBackupVolume, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			for _, m := range objects.Maps(objects.ListAt(manifeststest.ContainerOf(t, o, "Deployment", "backend", "backend"), "volumeMounts")) {
				if objects.StringAt(m, "mountPath") == "/data/backups" {
					m["readOnly"] = true
				}
			}
			return o
		}, "must be the whole volume, writable"},
		{"backup: small volume", CheckBackupVolume, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.Set(t, manifeststest.MustFind(t, o, "PersistentVolumeClaim", "backend-backup").Object, "1Gi", "spec", "resources", "requests", "storage")
			return o
		}, `storage "1Gi", want at least 5Gi`},
		{"backup: prunable volume", CheckBackupVolume, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.MustFind(t, o, "PersistentVolumeClaim", "backend-backup").SetAnnotations(nil)
			return o
		}, "want Delete=false,Prune=false"},
		{"backup: PVC not rendered", CheckBackupVolume, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return slices.DeleteFunc(o, func(x *unstructured.Unstructured) bool {
				return x.GetKind() == "PersistentVolumeClaim" && x.GetName() == "backend-backup"
			})
		}, "PersistentVolumeClaim/backend-backup is mounted at BACKUP_STORAGE_PATH but not rendered"},
		{"rate limit: unset", rates, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			removeEnv(t, o, "Deployment", "backend", "backend", "RATE_LIMIT_MAX")
			return o
		}, `RATE_LIMIT_MAX "" is not a positive number`},
		{"rate limit: not the settings' value", rates, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "RATE_LIMIT_MAX", "100")
			return o
		}, `RATE_LIMIT_MAX "100", the overlay's cluster-settings rateLimitMax "1000"`},
		{"rate limit: bad window", rates, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "RATE_LIMIT_TIME_WINDOW", "five minutes")
			return o
		}, `RATE_LIMIT_TIME_WINDOW "five minutes" is not a window`},
		{"Redis: deployed, backend not told", CheckRedisWiring, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			removeEnv(t, o, "Deployment", "backend", "backend", "REDIS_HOST")
			return o
		}, "Redis is deployed but REDIS_HOST/REDIS_PORT are not set"},
		{"Redis: not deployed, backend told", CheckRedisWiring, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			return slices.DeleteFunc(o, func(x *unstructured.Unstructured) bool { return x.GetKind() == "Deployment" && x.GetName() == "redis" })
		}, "REDIS_HOST/REDIS_PORT set"},
		{"Redis: wrong host", CheckRedisWiring, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "REDIS_HOST", "litellm-redis")
			return o
		}, `REDIS_HOST "litellm-redis" is no rendered Service`},
		{"Redis: wrong port", CheckRedisWiring, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "backend", "backend", "REDIS_PORT", "6380")
			return o
		}, `REDIS_PORT "6380" is no port of Service/redis`},
		{"Redis: NetworkPolicy admits LiteLLM only", CheckRedisWiring, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			np := manifeststest.MustFind(t, o, "NetworkPolicy", "redis")
			rule := objects.Maps(objects.ListAt(np.Object, "spec", "ingress"))[0]
			rule["from"] = objects.ListAt(rule, "from")[:1]
			return o
		}, "the NetworkPolicies admit no backend pod to Redis on 6379"},
		{"schema update: left to the image", CheckSchemaUpdate, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			removeEnv(t, o, "Deployment", "litellm", "litellm", "DISABLE_SCHEMA_UPDATE")
			return o
		}, `DISABLE_SCHEMA_UPDATE "" (set: false)`},
		{"schema update: true", CheckSchemaUpdate, func(o []*unstructured.Unstructured) []*unstructured.Unstructured {
			manifeststest.SetEnv(t, o, "Deployment", "litellm", "litellm", "DISABLE_SCHEMA_UPDATE", "true")
			return o
		}, `DISABLE_SCHEMA_UPDATE "true"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Empty(t, c.check(manifeststest.Rendered(t, overlay)), "the unbroken rendering passes")
			got := c.check(c.break_(manifeststest.Rendered(t, overlay)))
			require.NotEmpty(t, got)
			assert.True(t, slices.ContainsFunc(got, func(p string) bool { return strings.Contains(p, c.want) }), "want a problem containing %q, got %q", c.want, got)
		})
	}

	// The table's own format.
	for name, text := range map[string]string{
		"no rows":              "rows: []\n",
		"unknown field":        "rows:\n- {workload: backend, env: X, upstream: a, ours: [{value: \"1\"}], why: same, comment: x}\n",
		"unknown workload":     "rows:\n- {workload: redis, env: X, upstream: a, ours: [{value: \"1\"}], why: same}\n",
		"env and volume":       "rows:\n- {workload: backend, env: X, volume: /x, upstream: a, ours: [{value: \"1\"}], why: same}\n",
		"no fallback":          "rows:\n- {workload: backend, env: X, upstream: a, ours: [{value: \"1\", with: redis-cache}], why: same}\n",
		"value and unset":      "rows:\n- {workload: backend, env: X, upstream: a, ours: [{value: \"1\", unset: true}], why: same}\n",
		"neither value, unset": "rows:\n- {workload: backend, env: X, upstream: a, ours: [{with: redis-cache}, {unset: true}], why: same}\n",
		"no why":               "rows:\n- {workload: backend, env: X, upstream: a, ours: [{value: \"1\"}]}\n",
	} {
		_, err := parseParityFile([]byte(text))
		assert.Error(t, err, name)
	}
	_, err := parseParityFile([]byte("rows:\n- {workload: backend, env: X, upstream: a, ours: [{value: \"1\"}], why: same}\n- {workload: backend, env: Y, upstream: a, ours: [{value: \"1\"}]}\n"))
	assert.ErrorContains(t, err, "line 3: backend Y: upstream and why must be filled in", "names the row's line")
	assert.NotEmpty(t, CheckUpstreamCovered(rows, []string{"backend SOMETHING_NEW"}))
}

var updateParity = flag.Bool("update-parity", false, "rewrite the parity table of gitops/README.md from gitops/parity.yaml")

// The README's parity table is parityFile's rows, as parityMarkdown renders them.
func TestParityReadme(t *testing.T) {
	path := filepath.Join(manifeststest.RepoRoot(t), parityReadme)
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	table, start, end, err := readmeParityTable(string(data))
	require.NoError(t, err)
	want := parityMarkdown(readParityTable(t))
	if *updateParity {
		require.NoError(t, os.WriteFile(path, []byte(string(data[:start])+want+string(data[end:])), 0o644))
		return
	}
	assert.Equal(t, want, table, "%s's parity table is not %s's rows: run go test ./internal/manifests/parity -run TestParityReadme -update-parity", parityReadme, parityFile)

	// The comparison can fail: a changed cell, a missing row.
	assert.NotEqual(t, strings.Replace(want, "| `production` |", "| `development` |", 1), table)
	lines := strings.SplitAfter(want, "\n")
	assert.NotEqual(t, strings.Join(append(lines[:3:3], lines[4:]...), ""), table)
	_, _, _, err = readmeParityTable("# x\n\n" + parityHeading + "\n\ntext only\n")
	assert.Error(t, err)
}
