package pgtest_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

// The database roles of gitops/base/postgres/roles.sql, on a real PostgreSQL, run the way the
// PostgreSQL container's start script runs them: psql as the superuser, the passwords from the
// environment. Fresh installs and the upgrade of a single-superuser install (every object owned by
// POSTGRES_USER, as before the roles existed).

const (
	legacySuperuser = "litemaas_admin" // POSTGRES_USER of the base
	roleBackend     = "litemaas_backend"
	roleLiteLLM     = "litemaas_litellm"
	roleReader      = "litemaas_model_reader"
	roleBackup      = "litemaas_backup"
)

var rolePasswordEnv = []string{
	"LITEMAAS_BACKEND_PASSWORD=backend-pw", "LITEMAAS_LITELLM_PASSWORD=litellm-pw",
	"LITEMAAS_MODEL_READER_PASSWORD=reader-pw", "LITEMAAS_BACKUP_PASSWORD=backup-pw",
}

// roleServer starts a cluster of its own: the roles and database names are cluster-wide and fixed.
// It holds what the postgres image's first start leaves: POSTGRES_USER as a superuser and POSTGRES_DB
// litemaas_db, plus litellm_db from the init script, both owned by that superuser.
func roleServer(t *testing.T) *pgtest.Server {
	t.Helper()
	if os.Getenv(pgtest.EnvURL) != "" {
		t.Skipf("needs a throwaway cluster: the roles are cluster-wide (unset %s)", pgtest.EnvURL)
	}
	s, err := pgtest.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	admin := connect(t, s.URL("postgres"))
	ctx := context.Background()
	for _, q := range []string{
		"CREATE ROLE " + legacySuperuser + " SUPERUSER LOGIN",
		"CREATE DATABASE litemaas_db OWNER " + legacySuperuser,
		"CREATE DATABASE litellm_db OWNER " + legacySuperuser,
	} {
		_, err := admin.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	return s
}

func asRole(s *pgtest.Server, db, role string) string {
	u, _ := url.Parse(s.URL(db))
	u.User = url.User(role)
	return u.String()
}

// runRoles runs roles.sql as the start script does. It returns psql's output.
func runRoles(t *testing.T, s *pgtest.Server) string {
	t.Helper()
	psql, err := s.Bin("psql")
	require.NoError(t, err)
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, psql, "--no-psqlrc", "--quiet", "--dbname", asRole(s, "postgres", legacySuperuser),
		"-f", filepath.Join(root, "gitops/base/postgres/roles.sql"))
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, rolePasswordEnv...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "roles.sql:\n%s", out)
	return string(out)
}

func execAs(t *testing.T, s *pgtest.Server, db, role string, stmts ...string) {
	t.Helper()
	conn := connect(t, asRole(s, db, role))
	for _, q := range stmts {
		_, err := conn.Exec(context.Background(), q)
		require.NoError(t, err, "%s in %s: %s", role, db, q)
	}
}

// tryAs runs one statement as role in db and returns the error (nil on success).
func tryAs(s *pgtest.Server, db, role, stmt string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, asRole(s, db, role))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// rowCounts counts the rows of every table of the public schema.
func rowCounts(t *testing.T, s *pgtest.Server, db string) map[string]int64 {
	t.Helper()
	conn := connect(t, s.URL(db))
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT quote_ident(relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY 1`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	out := map[string]int64{}
	for _, tbl := range tables {
		var n int64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM public."+tbl).Scan(&n))
		out[tbl] = n
	}
	return out
}

// owners lists "kind name owner" for every table, sequence, view, function and type of the public schema.
func owners(t *testing.T, s *pgtest.Server, db string) map[string]string {
	t.Helper()
	conn := connect(t, s.URL(db))
	rows, err := conn.Query(context.Background(), `
SELECT 'rel ' || c.oid::regclass::text, pg_get_userbyid(c.relowner) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'public' AND c.relkind IN ('r','S','v','m')
UNION ALL
SELECT 'func ' || p.oid::regprocedure::text, pg_get_userbyid(p.proowner) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'public' AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'type ' || t.oid::regtype::text, pg_get_userbyid(t.typowner) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE n.nspname = 'public' AND t.typtype = 'e'
UNION ALL
SELECT 'database ' || datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()`)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var what, owner string
		require.NoError(t, rows.Scan(&what, &owner))
		out[what] = owner
	}
	require.NoError(t, rows.Err())
	return out
}

// liteLLMSchema stands in for what LiteLLM's Prisma migrations create: an enum, the models table the
// backend cross-checks, and tables that hold keys and spend.
const liteLLMSchema = `
CREATE TYPE "JobStatus" AS ENUM ('ACTIVE', 'INACTIVE');
CREATE TABLE "LiteLLM_ProxyModelTable" (model_id text PRIMARY KEY, model_name text NOT NULL, litellm_params jsonb);
CREATE TABLE "LiteLLM_VerificationToken" (token text PRIMARY KEY, spend double precision DEFAULT 0, status "JobStatus");
CREATE TABLE "LiteLLM_SpendLogs" (id serial PRIMARY KEY, request_id text);`

// start.sh runs in the postgres image's busybox sh: it must at least parse as POSIX sh, and run
// roles.sql from where the StatefulSet mounts it.
func TestRolesStartScript(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	script := filepath.Join(root, "gitops/base/postgres/start.sh")
	out, err := exec.Command("sh", "-n", script).CombinedOutput()
	require.NoError(t, err, "%s", out)
	data, err := os.ReadFile(script)
	require.NoError(t, err)
	assert.Contains(t, string(data), "-f /etc/litemaas/postgres/roles.sql")
	assert.Contains(t, string(data), "listen_addresses=''", "roles are set up before TCP is open")
	for _, env := range rolePasswordEnv {
		name, _, _ := strings.Cut(env, "=")
		assert.Contains(t, string(data), name, "start.sh refuses to start without %s", name)
	}
}

// The upgrade keeps every row, moves every object to its component's role, and afterwards the roles
// can do exactly their work.
func TestRolesUpgradeSingleSuperuserInstall(t *testing.T) {
	s := roleServer(t)
	// What an install from before the roles holds: everything created by the superuser.
	execAs(t, s, "litemaas_db", legacySuperuser, "CREATE EXTENSION IF NOT EXISTS pgcrypto", pgtest.SchemaSQL, pgtest.RunbookSQL,
		`INSERT INTO users (username, email, oauth_provider, oauth_id) VALUES ('alice', 'alice@example.com', 'openshift', 'u-1'), ('bob', 'bob@example.com', 'openshift', 'u-2')`,
		`INSERT INTO subscriptions (user_id, model_id) SELECT id, 'mistral-3-int4' FROM users`,
		`INSERT INTO api_keys (user_id, name, key_hash) SELECT id, 'laptop', 'hash-' || username FROM users`,
		`INSERT INTO api_key_models (api_key_id, model_id) SELECT id, 'mistral-3-int4' FROM api_keys`)
	execAs(t, s, "litellm_db", legacySuperuser, liteLLMSchema,
		`INSERT INTO "LiteLLM_ProxyModelTable" VALUES ('m1', 'granite-8b-agent', '{}'), ('m2', 'mistral-3-int4', '{}')`,
		`INSERT INTO "LiteLLM_VerificationToken" VALUES ('hashed-key-1', 1.5, 'ACTIVE')`,
		`INSERT INTO "LiteLLM_SpendLogs" (request_id) VALUES ('r1'), ('r2'), ('r3')`)
	before := map[string]map[string]int64{"litemaas_db": rowCounts(t, s, "litemaas_db"), "litellm_db": rowCounts(t, s, "litellm_db")}
	require.Positive(t, before["litemaas_db"]["models"])
	require.Positive(t, before["litemaas_db"]["users"])

	runRoles(t, s)
	runRoles(t, s) // every start runs it again

	for db, want := range map[string]string{"litemaas_db": roleBackend, "litellm_db": roleLiteLLM} {
		after := rowCounts(t, s, db)
		t.Logf("%s rows before and after the upgrade: %v / %v", db, before[db], after)
		assert.Equal(t, before[db], after, "%s: every row kept", db)
		own := owners(t, s, db)
		require.NotEmpty(t, own)
		for what, owner := range own {
			assert.Equal(t, want, owner, "%s: %s", db, what)
		}
	}
	checkRoleAttributes(t, s)
	t.Logf("role check after the upgrade:\n%s", roleMatrix(t, s))
	checkRoleWork(t, s)
}

// A fresh install: the roles exist before the backend and LiteLLM create their schemas.
func TestRolesFreshInstall(t *testing.T) {
	s := roleServer(t)
	runRoles(t, s)
	// The backend creates its schema at start (pgcrypto is a trusted extension: the owner may create it).
	execAs(t, s, "litemaas_db", roleBackend, "CREATE EXTENSION IF NOT EXISTS pgcrypto", pgtest.SchemaSQL, pgtest.RunbookSQL)
	execAs(t, s, "litellm_db", roleLiteLLM, liteLLMSchema, `INSERT INTO "LiteLLM_ProxyModelTable" VALUES ('m1', 'granite-8b-agent', '{}')`)
	runRoles(t, s) // a restart changes nothing
	for db, want := range map[string]string{"litemaas_db": roleBackend, "litellm_db": roleLiteLLM} {
		for what, owner := range owners(t, s, db) {
			assert.Equal(t, want, owner, "%s: %s", db, what)
		}
	}
	checkRoleAttributes(t, s)
	t.Logf("role check on a fresh install:\n%s", roleMatrix(t, s))
	checkRoleWork(t, s)
}

func checkRoleAttributes(t *testing.T, s *pgtest.Server) {
	t.Helper()
	conn := connect(t, s.URL("postgres"))
	for _, role := range []string{roleBackend, roleLiteLLM, roleReader, roleBackup} {
		var super, createRole, createDB, login bool
		require.NoError(t, conn.QueryRow(context.Background(), `SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = $1`, role).
			Scan(&super, &createRole, &createDB, &login), role)
		assert.False(t, super, "%s is not superuser", role)
		assert.False(t, createRole, "%s cannot create roles", role)
		assert.False(t, createDB, "%s cannot create databases", role)
		assert.True(t, login, "%s can log in", role)
	}
}

// checkRoleWork: each role does its component's work and nothing else.
func checkRoleWork(t *testing.T, s *pgtest.Server) {
	t.Helper()
	// A login role that is none of ours: another tenant of the server.
	execAs(t, s, "postgres", "postgres", "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'intruder') THEN CREATE ROLE intruder LOGIN; END IF; END $$")
	const denied = "42501" // insufficient_privilege, also for CONNECT
	tests := []struct {
		name, db, role, stmt string
		wantState            string // "" = succeeds
	}{
		// The backend and the job (same role): their own database, schema changes included.
		{"backend reads users", "litemaas_db", roleBackend, "SELECT count(*) FROM users", ""},
		{"the job's migration", "litemaas_db", roleBackend, "ALTER TABLE users ALTER COLUMN oauth_id DROP NOT NULL", ""},
		{"the job's upsert", "litemaas_db", roleBackend, "UPDATE models SET description = description", ""},
		{"backend start-up replaces its function", "litemaas_db", roleBackend, pgtest.SchemaSQL, ""},
		{"backend adds a table", "litemaas_db", roleBackend, "CREATE TABLE IF NOT EXISTS audit_logs (id uuid PRIMARY KEY DEFAULT gen_random_uuid())", ""},
		{"backend cannot connect to litellm_db", "litellm_db", roleBackend, "SELECT 1", denied},
		{"backend cannot create roles", "litemaas_db", roleBackend, "CREATE ROLE x", denied},
		// LiteLLM: its own database only.
		{"litellm writes its tables", "litellm_db", roleLiteLLM, `INSERT INTO "LiteLLM_SpendLogs" (request_id) VALUES ('r9')`, ""},
		{"litellm migrates its schema", "litellm_db", roleLiteLLM, `ALTER TABLE "LiteLLM_ProxyModelTable" ADD COLUMN IF NOT EXISTS model_info jsonb`, ""},
		{"litellm cannot connect to litemaas_db", "litemaas_db", roleLiteLLM, "SELECT 1", denied},
		// The backend's cross-check: one table, read-only.
		{"reader reads the model table", "litellm_db", roleReader, `SELECT model_name FROM "LiteLLM_ProxyModelTable"`, ""},
		{"reader cannot read keys", "litellm_db", roleReader, `SELECT * FROM "LiteLLM_VerificationToken"`, denied},
		{"reader cannot write", "litellm_db", roleReader, `DELETE FROM "LiteLLM_ProxyModelTable"`, denied},
		{"reader cannot connect to litemaas_db", "litemaas_db", roleReader, "SELECT 1", denied},
		// Backups: read everything, write nothing.
		{"backup reads litemaas_db", "litemaas_db", roleBackup, "SELECT count(*) FROM users", ""},
		{"backup reads litellm_db", "litellm_db", roleBackup, `SELECT count(*) FROM "LiteLLM_VerificationToken"`, ""},
		{"backup cannot write", "litemaas_db", roleBackup, "UPDATE users SET email = email", denied},
		{"backup cannot change the schema", "litellm_db", roleBackup, `CREATE TABLE x (i int)`, denied},
		// Anyone else: no connection at all.
		{"another role cannot connect to litemaas_db", "litemaas_db", "intruder", "SELECT 1", denied},
		{"another role cannot connect to litellm_db", "litellm_db", "intruder", "SELECT 1", denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tryAs(s, tt.db, tt.role, tt.stmt)
			if tt.wantState == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.wantState, sqlState(err), "%v", err)
		})
	}
	// pg_dump as the backup role, as the backup CronJob runs it.
	if pgDump, err := s.Bin("pg_dump"); err == nil {
		for _, db := range []string{"litemaas_db", "litellm_db"} {
			out, err := exec.Command(pgDump, "--format=custom", "--file", filepath.Join(t.TempDir(), db+".dump"), "--dbname", asRole(s, db, roleBackup)).CombinedOutput()
			assert.NoError(t, err, "pg_dump %s as %s: %s", db, roleBackup, out)
		}
	} else {
		t.Errorf("pg_dump: %v", err)
	}
}

// roleMatrix prints what each role may do in each database, from PostgreSQL's own privilege functions.
func roleMatrix(t *testing.T, s *pgtest.Server) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%-22s %-12s %-8s %-9s %-8s %-6s %s\n", "role", "database", "connect", "superuser", "owner", "read", "write")
	for _, role := range []string{roleBackend, roleLiteLLM, roleReader, roleBackup} {
		for _, db := range []string{"litemaas_db", "litellm_db"} {
			conn := connect(t, s.URL(db))
			var canConnect, super, owner bool
			var read, write string
			require.NoError(t, conn.QueryRow(context.Background(), `
SELECT has_database_privilege($1, current_database(), 'CONNECT'),
       (SELECT rolsuper FROM pg_roles WHERE rolname = $1),
       pg_get_userbyid((SELECT datdba FROM pg_database WHERE datname = current_database())) = $1,
       (SELECT count(*) FILTER (WHERE has_table_privilege($1, c.oid, 'SELECT')) || '/' || count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'),
       (SELECT count(*) FILTER (WHERE has_table_privilege($1, c.oid, 'INSERT,UPDATE,DELETE')) || '/' || count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r')`,
				role).Scan(&canConnect, &super, &owner, &read, &write))
			if !canConnect {
				read, write = "-", "-"
			}
			fmt.Fprintf(&b, "%-22s %-12s %-8t %-9t %-8t %-6s %s\n", role, db, canConnect, super, owner, read, write)
		}
	}
	return b.String()
}
