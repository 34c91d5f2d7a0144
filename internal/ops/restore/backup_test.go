package restore

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/cluster"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/opstest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

// backupJob is the CronJob's container as the overlay renders it, and the script its ConfigMap holds.
type backupJob struct {
	command []string
	env     []map[string]any
	script  string
}

// renderBackupJob renders an overlay with the backup component (testdata/backup-overlay) and returns what
// the CronJob runs. The manifest checks here are the ones specific to the component; the repository-wide
// policy checks (internal/manifests) cover it once an overlay under gitops/ uses it.
func renderBackupJob(t *testing.T) backupJob {
	t.Helper()
	objs, err := manifests.Render("testdata/backup-overlay")
	require.NoError(t, err)
	cj := manifests.Find(objs, "CronJob", "postgres-backup")
	require.NotNil(t, cj, "CronJob postgres-backup")
	pvc := manifests.Find(objs, "PersistentVolumeClaim", "postgres-backup")
	require.NotNil(t, pvc, "PVC postgres-backup")
	sts := manifests.Find(objs, "StatefulSet", "postgres")
	require.NotNil(t, sts)

	spec := func(path ...string) any {
		v, _, _ := unstructured.NestedFieldNoCopy(cj.Object, append([]string{"spec"}, path...)...)
		return v
	}
	assert.Equal(t, "Forbid", spec("concurrencyPolicy"))
	assert.Equal(t, "17 2 * * *", spec("schedule"))
	assert.NotNil(t, spec("successfulJobsHistoryLimit"))
	assert.NotNil(t, spec("failedJobsHistoryLimit"))
	assert.EqualValues(t, 3600, spec("jobTemplate", "spec", "activeDeadlineSeconds"))
	assert.EqualValues(t, 2, spec("jobTemplate", "spec", "backoffLimit"))
	for _, o := range []*unstructured.Unstructured{cj, pvc} {
		assert.Equal(t, map[string]string{
			"app.kubernetes.io/name": "postgres-backup", "app.kubernetes.io/part-of": "litemaas",
			"app.kubernetes.io/component": "backup", "app.kubernetes.io/version": "0.4.0",
		}, o.GetLabels(), "labels of %s", cluster.Describe(o))
		assert.Equal(t, "litemaas", o.GetNamespace())
	}
	assert.Equal(t, "Delete=false,Prune=false", pvc.GetAnnotations()["argocd.argoproj.io/sync-options"], "backups outlive the Application")

	pod, _, _ := unstructured.NestedMap(cj.Object, "spec", "jobTemplate", "spec", "template")
	podLabels, _, _ := unstructured.NestedStringMap(pod, "metadata", "labels")
	assert.NotContains(t, podLabels, tree.LabelPartOf, "a finished pod must not match `oc wait -l app.kubernetes.io/part-of=litemaas`")
	psc, _, _ := unstructured.NestedMap(pod, "spec", "securityContext")
	assert.Equal(t, true, psc["runAsNonRoot"])
	for _, f := range []string{"runAsUser", "runAsGroup", "fsGroup"} {
		assert.NotContains(t, psc, f, "restricted-v2 assigns %s", f)
	}
	containers, _, _ := unstructured.NestedSlice(pod, "spec", "containers")
	require.Len(t, containers, 1)
	c := containers[0].(map[string]any)
	csc := c["securityContext"].(map[string]any)
	assert.Equal(t, false, csc["allowPrivilegeEscalation"])
	assert.Equal(t, true, csc["readOnlyRootFilesystem"])
	assert.Equal(t, []any{"ALL"}, csc["capabilities"].(map[string]any)["drop"])
	seccomp, _, _ := unstructured.NestedString(pod, "spec", "securityContext", "seccompProfile", "type")
	assert.Equal(t, "RuntimeDefault", seccomp)
	for _, k := range []string{"requests", "limits"} {
		res, _, _ := unstructured.NestedStringMap(c, "resources", k)
		assert.NotEmpty(t, res["cpu"], "resources.%s.cpu", k)
		assert.NotEmpty(t, res["memory"], "resources.%s.memory", k)
	}

	// The same image as the database, so pg_dump matches the server's major version.
	stsContainers, _, _ := unstructured.NestedSlice(sts.Object, "spec", "template", "spec", "containers")
	assert.Equal(t, stsContainers[0].(map[string]any)["image"], c["image"])
	// The database pod mounts the backup volume read-only, which binds it during the sync.
	stsVolumes, _, _ := unstructured.NestedSlice(sts.Object, "spec", "template", "spec", "volumes")
	assert.Contains(t, fmt.Sprint(stsVolumes), "claimName:postgres-backup")
	assert.Contains(t, fmt.Sprint(stsContainers[0].(map[string]any)["volumeMounts"]), "mountPath:/backups name:backups readOnly:true")

	// The script comes from the generated ConfigMap that the CronJob mounts at /scripts.
	var cmName string
	vols, _, _ := unstructured.NestedSlice(pod, "spec", "volumes")
	for _, v := range vols {
		if m := v.(map[string]any); m["name"] == "scripts" {
			cmName, _, _ = unstructured.NestedString(m, "configMap", "name")
		}
	}
	require.True(t, strings.HasPrefix(cmName, "postgres-backup-script-"), "kustomize rewrote the reference to the hashed name, got %q", cmName)
	cm := manifests.Find(objs, "ConfigMap", cmName)
	require.NotNil(t, cm, "ConfigMap %s", cmName)
	script, _, _ := unstructured.NestedString(cm.Object, "data", "backup.sh")
	file, err := os.ReadFile(filepath.Join(opstest.RepoRoot(t), "gitops/components/backup/backup.sh"))
	require.NoError(t, err)
	require.Equal(t, string(file), script, "the ConfigMap holds backup.sh unchanged")

	var command []string
	for _, a := range c["command"].([]any) {
		command = append(command, a.(string))
	}
	var env []map[string]any
	for _, e := range c["env"].([]any) {
		env = append(env, e.(map[string]any))
	}
	return backupJob{command: command, env: env, script: script}
}

// run runs the CronJob's command with the script from its ConfigMap, with the container's environment:
// literal values as rendered, Secret keys from secret, then the overrides that point it at the test
// server and directory (PGHOST, PGPORT, BACKUP_DIR, ...).
func (j backupJob) run(t *testing.T, secret map[string]string, overrides map[string]string) (string, error) {
	t.Helper()
	scripts := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(scripts, "backup.sh"), []byte(j.script), 0o644))
	args := make([]string, len(j.command))
	for i, a := range j.command {
		args[i] = strings.Replace(a, "/scripts/", scripts+"/", 1)
	}
	env := []string{"PATH=" + pgBinPath(t), "LC_ALL=C", "HOME=" + scripts}
	for _, e := range j.env {
		name := e["name"].(string)
		if v, ok := overrides[name]; ok {
			env = append(env, name+"="+v)
			continue
		}
		if v, ok := e["value"].(string); ok {
			env = append(env, name+"="+v)
			continue
		}
		key, _, _ := unstructured.NestedString(e, "valueFrom", "secretKeyRef", "key")
		v, ok := secret[key]
		require.True(t, ok, "env %s reads Secret key %s", name, key)
		env = append(env, name+"="+v)
	}
	for k, v := range overrides {
		if !strings.Contains(strings.Join(env, "\n"), "\n"+k+"=") {
			env = append(env, k+"="+v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// pgBinPath puts the PostgreSQL client programs of the newest installed version first on PATH.
func pgBinPath(t *testing.T) string {
	t.Helper()
	path := os.Getenv("PATH")
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return majorFromDir(dirs[i]) > majorFromDir(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_dump")); err == nil {
			return d + string(os.PathListSeparator) + path
		}
	}
	if _, err := exec.LookPath("pg_dump"); err != nil {
		t.Fatal("pg_dump not found: install the PostgreSQL client (Debian package postgresql-client)")
	}
	return path
}

func majorFromDir(d string) int {
	n, _ := majorOf(filepath.Base(filepath.Dir(d)))
	return n
}

// startPostgres starts a throwaway PostgreSQL server. The backup dumps fixed database names
// (litemaas_db, litellm_db), so the test needs servers of its own rather than databases on a shared one.
func startPostgres(t *testing.T) *pgtest.Server {
	t.Helper()
	if os.Getenv(pgtest.EnvURL) != "" {
		t.Skipf("%s is set: the backup test needs throwaway servers (it dumps the fixed databases litemaas_db and litellm_db)", pgtest.EnvURL)
	}
	s, err := pgtest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

func execSQL(t *testing.T, url string, sql ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for _, s := range sql {
		_, err := conn.Exec(ctx, s)
		require.NoError(t, err, "running %.80s", s)
	}
}

// fillSource creates litemaas_db (the LiteMaaS fixture schema with the runbook's models, a user, a
// subscription and an API key) and litellm_db (LiteLLM's model table with one row per model).
func fillSource(t *testing.T, s *pgtest.Server) {
	t.Helper()
	execSQL(t, s.URL("postgres"), "CREATE DATABASE litemaas_db", "CREATE DATABASE litellm_db")
	execSQL(t, s.URL("litemaas_db"), pgtest.SchemaSQL, pgtest.RunbookSQL, pgtest.RunbookMigrationSQL, `
		INSERT INTO users (id, username, email, oauth_provider, oauth_id, roles)
		VALUES ('11111111-1111-1111-1111-111111111111', 'alice', 'alice@example.com', 'openshift', NULL, ARRAY['admin','user']);
		INSERT INTO subscriptions (id, user_id, model_id, status)
		VALUES ('22222222-2222-2222-2222-222222222222', '11111111-1111-1111-1111-111111111111', 'mistral-3-int4', 'active');
		INSERT INTO api_keys (id, user_id, name, key_hash, key_prefix)
		VALUES ('33333333-3333-3333-3333-333333333333', '11111111-1111-1111-1111-111111111111', 'laptop', 'hash-of-the-key', 'sk-abc');
		INSERT INTO api_key_models (api_key_id, model_id) VALUES ('33333333-3333-3333-3333-333333333333', 'mistral-3-int4');`)
	execSQL(t, s.URL("litellm_db"), `
		CREATE TABLE "LiteLLM_ProxyModelTable" (
			model_id text PRIMARY KEY,
			model_name text NOT NULL,
			litellm_params jsonb NOT NULL,
			model_info jsonb,
			created_at timestamptz NOT NULL DEFAULT now(),
			created_by text NOT NULL,
			updated_at timestamptz NOT NULL DEFAULT now(),
			updated_by text NOT NULL)`, `
		INSERT INTO "LiteLLM_ProxyModelTable" (model_id, model_name, litellm_params, model_info, created_by, updated_by)
		SELECT md5(id), id,
		       jsonb_build_object('model', 'openai/' || id, 'api_base', 'http://' || id || '-predictor.private-ai.svc.cluster.local:8080/v1',
		                          'api_key', 'encrypted-with-the-salt-key'),
		       jsonb_build_object('id', md5(id), 'max_tokens', 16384),
		       'litemaas-sync', 'litemaas-sync'
		FROM unnest(ARRAY['mistral-3-int4', 'granite-8b-agent', 'mistral-3-bf16', 'devstral-2', 'gpt-oss-20b']) AS id`)
	// The database roles, as PostgreSQL's start script sets them up: the backup connects as the
	// read-only litemaas_backup.
	root, err := tree.FindRoot(".")
	require.NoError(t, err)
	cmd := exec.Command("psql", "--no-psqlrc", "--quiet", "--dbname", s.URL("postgres"), "-f", filepath.Join(root, "gitops/base/postgres/roles.sql"))
	cmd.Env = []string{"PATH=" + pgBinPath(t), "LITEMAAS_BACKEND_PASSWORD=x", "LITEMAAS_LITELLM_PASSWORD=x", "LITEMAAS_MODEL_READER_PASSWORD=x", "LITEMAAS_BACKUP_PASSWORD=x"}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "roles.sql: %s", out)
}

// tableRows returns every table of the public schema with its rows as JSON text, ordered by primary key.
func tableRows(t *testing.T, url string) map[string][]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string][]string{}
	for _, tbl := range tables {
		rows, err := conn.Query(ctx, `
			SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY array_position(i.indkey, a.attnum))
			FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = $1::regclass AND i.indisprimary`, pgx.Identifier{tbl}.Sanitize())
		require.NoError(t, err)
		pk, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[*string])
		require.NoError(t, err)
		require.NotNil(t, pk, "table %s has no primary key", tbl)
		q := fmt.Sprintf("SELECT to_jsonb(t)::text FROM %s t ORDER BY %s", pgx.Identifier{tbl}.Sanitize(), *pk)
		rows, err = conn.Query(ctx, q)
		require.NoError(t, err)
		out[tbl], err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
	}
	return out
}

func backupDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// TestBackupAndRestore runs gitops/components/backup/backup.sh exactly as the CronJob does against a real
// PostgreSQL, restores the dumps with Restore into a second, fresh server, and compares every table row by
// row.
func TestBackupAndRestore(t *testing.T) {
	t.Parallel()
	job := renderBackupJob(t)
	src := startPostgres(t)
	dst := startPostgres(t)
	fillSource(t, src)

	srcURL, err := url.Parse(src.URL("postgres"))
	require.NoError(t, err)
	srcPort := srcURL.Port()
	secret := map[string]string{"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "unused-trust-auth", "LITEMAAS_BACKUP_PASSWORD": "unused-trust-auth"}
	backups := t.TempDir()
	target := map[string]string{"PGHOST": "127.0.0.1", "PGPORT": srcPort, "BACKUP_DIR": backups}

	out, err := job.run(t, secret, target)
	t.Logf("backup.sh (as the CronJob runs it):\n%s", out)
	require.NoError(t, err)
	dirs := backupDirs(t, backups)
	require.Len(t, dirs, 1)
	require.Regexp(t, `^\d{8}T\d{6}Z$`, dirs[0])
	for _, f := range []string{"litemaas_db.dump", "litellm_db.dump", "SHA256SUMS", "backup-info"} {
		assert.FileExists(t, filepath.Join(backups, dirs[0], f))
	}

	ctx := context.Background()
	var rout bytes.Buffer
	results, err := Restore(ctx, Options{From: backups, ToURL: dst.URL("postgres"), Out: &rout})
	t.Logf("restore --from %s (the volume's root: newest backup):\n%s", filepath.Base(backups), rout.String())
	require.NoError(t, err)
	require.Len(t, results, 2)
	assert.Equal(t, "created", results[0].Action)

	for _, db := range BackupDatabases {
		want, got := tableRows(t, src.URL(db)), tableRows(t, dst.URL(db))
		require.NotEmpty(t, want)
		assert.Equal(t, slices.Sorted(maps.Keys(want)), slices.Sorted(maps.Keys(got)), "%s: tables", db)
		for _, tbl := range slices.Sorted(maps.Keys(want)) {
			assert.Equal(t, want[tbl], got[tbl], "%s.%s: rows", db, tbl)
			t.Logf("%s.%-26s %3d rows in the source, %3d restored, identical: %v", db, tbl, len(want[tbl]), len(got[tbl]), assert.ObjectsAreEqual(want[tbl], got[tbl]))
		}
	}
	assert.Len(t, tableRows(t, dst.URL("litemaas_db"))["models"], 5)

	t.Run("refuses a non-empty database without --force", func(t *testing.T) {
		var out bytes.Buffer
		_, err := Restore(ctx, Options{From: filepath.Join(backups, dirs[0]), ToURL: dst.URL("postgres"), Out: &out})
		t.Logf("restore into the restored server:\n%s\nerror: %v", out.String(), err)
		assert.ErrorContains(t, err, "refusing to restore into non-empty databases: litemaas_db holds")
		assert.ErrorContains(t, err, "pass --force")
	})

	t.Run("with --force drops and recreates", func(t *testing.T) {
		execSQL(t, dst.URL("litemaas_db"), `DELETE FROM api_key_models`, `INSERT INTO models (id, name, provider) VALUES ('stray', 'Stray', 'x')`)
		var out bytes.Buffer
		res, err := Restore(ctx, Options{From: filepath.Join(backups, dirs[0]), ToURL: dst.URL("postgres"), Force: true, Out: &out})
		t.Logf("restore --force:\n%s", out.String())
		require.NoError(t, err)
		assert.Equal(t, "dropped and recreated", res[0].Action)
		assert.Equal(t, tableRows(t, src.URL("litemaas_db")), tableRows(t, dst.URL("litemaas_db")))
	})

	t.Run("a damaged dump is refused before anything is dropped", func(t *testing.T) {
		damaged := filepath.Join(t.TempDir(), dirs[0])
		require.NoError(t, os.CopyFS(damaged, os.DirFS(filepath.Join(backups, dirs[0]))))
		f := filepath.Join(damaged, "litellm_db.dump")
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		data[len(data)/2] ^= 0xff
		require.NoError(t, os.WriteFile(f, data, 0o644))
		_, err = Restore(ctx, Options{From: damaged, ToURL: dst.URL("postgres"), Force: true})
		assert.ErrorContains(t, err, "litellm_db.dump does not match its checksum in SHA256SUMS")
		assert.Len(t, tableRows(t, dst.URL("litemaas_db"))["models"], 5, "untouched")
	})

	t.Run("retention keeps the newest BACKUP_KEEP", func(t *testing.T) {
		dir := t.TempDir()
		// A run killed half-way leaves a partial directory; the next run removes it.
		require.NoError(t, os.Mkdir(filepath.Join(dir, ".partial-20200101T000000Z"), 0o755))
		require.NoError(t, os.Mkdir(filepath.Join(dir, "lost+found"), 0o755))
		const keep, runs = 2, 4
		overrides := map[string]string{"PGHOST": "127.0.0.1", "PGPORT": srcPort, "BACKUP_DIR": dir, "BACKUP_KEEP": fmt.Sprint(keep)}
		var made []string
		for i := range runs {
			out, err := job.run(t, secret, overrides)
			require.NoError(t, err, out)
			if i == runs-1 {
				t.Logf("backup.sh run %d of %d with BACKUP_KEEP=%d:\n%s", i+1, runs, keep, out)
			}
			for _, n := range backupDirs(t, dir) {
				if backupNamePattern.MatchString(n) && !slices.Contains(made, n) {
					made = append(made, n)
				}
			}
		}
		left := backupDirs(t, dir)
		t.Logf("after %d runs with BACKUP_KEEP=%d: %v (made %v)", runs, keep, left, made)
		require.Len(t, made, runs)
		assert.Equal(t, append(made[runs-keep:], "lost+found"), left, "the newest %d backups, the volume's lost+found, no partial directory", keep)
	})

	t.Run("a failed dump keeps the previous backups", func(t *testing.T) {
		before := backupDirs(t, backups)
		out, err := job.run(t, secret, map[string]string{"PGHOST": "127.0.0.1", "PGPORT": "1", "BACKUP_DIR": backups})
		t.Logf("backup.sh against a closed port:\n%s", out)
		assert.Error(t, err)
		assert.Contains(t, out, "cannot connect to PostgreSQL at 127.0.0.1:1")
		assert.Equal(t, before, backupDirs(t, backups))
	})
}
