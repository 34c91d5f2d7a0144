// Package restore is `litemaas-ops restore`: it restores the database dumps of one backup (the backup
// component's) into a PostgreSQL server, after checking every dump and every target database.
package restore

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/report"
)

// BackupDatabases are the databases every backup holds, one custom-format dump each (<name>.dump).
var BackupDatabases = []string{"litemaas_db", "litellm_db"}

// backupNamePattern is the name backup.sh gives a complete backup directory (UTC time stamp).
var backupNamePattern = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z$`)

// NewCommand is `litemaas-ops restore`.
func NewCommand() *cli.Command {
	return &cli.Command{
		Name: "restore", Args: "--from DUMP_DIR --to-url postgresql://USER[:PASSWORD]@HOST:PORT/postgres [--force] [--pg-restore PATH]",
		Summary: "restore a backup into a PostgreSQL server",
		Help:    "PGPASSWORD is read when the URL has no password.",
		New: func(fs *flag.FlagSet) cli.Runner {
			o := &Options{}
			fs.StringVar(&o.From, "from", "", "backup directory (or the backup volume's root: its newest backup)")
			fs.StringVar(&o.ToURL, "to-url", "", "PostgreSQL server, postgresql://USER[:PASSWORD]@HOST:PORT/postgres (password also from PGPASSWORD)")
			fs.BoolVar(&o.Force, "force", false, "drop and recreate databases that are not empty")
			fs.StringVar(&o.PgRestore, "pg-restore", "", "pg_restore binary (default: the newest found)")
			return o
		},
	}
}

// Options configures Restore; as the command's options, Run restores.
type Options struct {
	// From is a backup directory (holding litemaas_db.dump and litellm_db.dump), or the backup volume's
	// root, in which case its newest backup is used.
	From string
	// ToURL names the PostgreSQL server: postgres[ql]://user:password@host:port/maintenance-db?sslmode=...
	// The databases are created on it if missing. Without a password in the URL, PGPASSWORD is used.
	ToURL string
	// Force drops and recreates databases that already hold tables (e.g. the empty schema a freshly
	// started LiteMaaS backend creates). Without it Restore refuses to touch them.
	Force bool
	// PgRestore is the pg_restore binary; empty finds the newest on PATH or in the usual per-version
	// directories.
	PgRestore string
	Out       io.Writer
}

// Result describes one restored database.
type Result struct {
	Database string
	Action   string // "created", "reused (empty)", "dropped and recreated"
	Tables   int
	Rows     int64
}

// target database: a URL without the password, which goes to pg_restore through PGPASSWORD so that it
// never shows in a process list.
type pgTarget struct {
	u        *url.URL
	password string
	admin    string // maintenance database
}

func parseTarget(raw string) (*pgTarget, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		// The URL may hold a password: never echo it.
		return nil, errors.New("--to-url must look like postgresql://user:password@host:5432/postgres?sslmode=disable")
	}
	t := &pgTarget{u: u, admin: strings.TrimPrefix(u.Path, "/")}
	if t.admin == "" {
		t.admin = "postgres"
	}
	if u.User != nil {
		t.password, _ = u.User.Password()
	}
	if t.password == "" {
		// Keeps the password out of the command line and the shell history.
		t.password = os.Getenv("PGPASSWORD")
	}
	return t, nil
}

// url returns the URL of database db, with the password when withPassword (for pgx, in process).
func (t *pgTarget) url(db string, withPassword bool) string {
	u := *t.u
	u.Path = "/" + db
	u.RawPath = ""
	if u.User != nil {
		u.User = url.User(u.User.Username())
		if withPassword && t.password != "" {
			u.User = url.UserPassword(u.User.Username(), t.password)
		}
	}
	return u.String()
}

func (t *pgTarget) redacted() string { return t.u.Redacted() }

// Run restores the backup.
func (o *Options) Run(ctx context.Context, out io.Writer) error {
	if o.From == "" || o.ToURL == "" {
		return cli.Usagef("restore needs --from and --to-url")
	}
	r := *o
	r.Out = out
	_, err := Restore(ctx, r)
	return err
}

// Restore restores the dumps of one backup into the server at o.ToURL. Before it changes anything it
// checks every dump (checksums, readable by this pg_restore) and every target database (missing or empty,
// unless Force); each database is then restored in a single transaction, so a failure leaves it empty
// rather than half-restored.
func Restore(ctx context.Context, o Options) ([]Result, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.From == "" || o.ToURL == "" {
		return nil, errors.New("restore needs --from DUMP_DIR and --to-url postgresql://...")
	}
	target, err := parseTarget(o.ToURL)
	if err != nil {
		return nil, err
	}
	dir, err := resolveBackupDir(o.From)
	if err != nil {
		return nil, err
	}
	pgRestore, err := checkBackup(ctx, o, dir, target)
	if err != nil {
		return nil, err
	}
	admin, err := pgx.Connect(ctx, target.url(target.admin, true))
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", target.redacted(), err)
	}
	defer admin.Close(context.WithoutCancel(ctx))

	// Decide for every database before touching any.
	actions, err := planActions(ctx, admin, target, o.Force)
	if err != nil {
		return nil, err
	}
	results, err := restoreDatabases(ctx, admin, target, pgRestore, dir, actions)
	if err != nil {
		return results, err
	}
	var table [][]string
	for _, r := range results {
		table = append(table, []string{r.Database, r.Action, fmt.Sprintf("%d tables, %d rows", r.Tables, r.Rows)})
	}
	fmt.Fprintln(o.Out)
	report.PrintTable(o.Out, []string{"DATABASE", "ACTION", "RESTORED"}, table)
	return results, nil
}

// checkBackup finds the pg_restore to use and checks, before anything is changed, that it can read the
// dumps of dir (their pg_dump version, their format) and that they match their checksums; it prints what
// it found and returns the pg_restore.
func checkBackup(ctx context.Context, o Options, dir string, target *pgTarget) (string, error) {
	out := o.Out
	pgRestore, version, err := findPgRestore(ctx, o.PgRestore)
	if err != nil {
		return "", err
	}
	info := readBackupInfo(dir)
	fmt.Fprintf(out, "Restoring %s into %s\n", dir, target.redacted())
	fmt.Fprintf(out, "  pg_restore: %s (PostgreSQL %s)\n", pgRestore, version)
	if v := info["pg_dump"]; v != "" {
		fmt.Fprintf(out, "  dumps made by: %s, server %s, at %s\n", v, report.OrDash(info["server_version"]), report.OrDash(info["created"]))
		if dumpMajor, ok := majorOf(v); ok {
			if restoreMajor, ok := majorOf(version); ok && restoreMajor < dumpMajor {
				return "", fmt.Errorf("pg_restore %s cannot read dumps made by %s: install pg_restore %d or newer (e.g. package postgresql-client-%d) and pass it with --pg-restore if it is not on PATH", version, v, dumpMajor, dumpMajor)
			}
		}
	}
	if err := verifyChecksums(dir); err != nil {
		return "", err
	}
	for _, db := range BackupDatabases {
		file := filepath.Join(dir, db+".dump")
		if err := checkDump(ctx, pgRestore, file); err != nil {
			return "", err
		}
	}
	fmt.Fprintln(out, "  dumps: checksums match, both readable")
	return pgRestore, nil
}

// planActions decides, for every database of the backup, whether it is created (missing), reused
// (empty) or, with force, dropped and recreated; without force, databases that hold relations are refused,
// all of them named.
func planActions(ctx context.Context, admin *pgx.Conn, target *pgTarget, force bool) (map[string]string, error) {
	actions := map[string]string{}
	var refused []string
	for _, db := range BackupDatabases {
		var exists bool
		if err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, db).Scan(&exists); err != nil {
			return nil, fmt.Errorf("looking for database %s: %w", db, err)
		}
		if !exists {
			actions[db] = "create"
			continue
		}
		tables, err := userRelations(ctx, target.url(db, true))
		if err != nil {
			return nil, err
		}
		switch {
		case len(tables) == 0:
			actions[db] = "reuse"
		case force:
			actions[db] = "recreate"
		default:
			refused = append(refused, fmt.Sprintf("%s holds %d relations (%s)", db, len(tables), report.LimitList(tables, 4)))
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("refusing to restore into non-empty databases: %s. Restore into a fresh server, or pass --force to DROP and recreate them (stop LiteMaaS first: see gitops/components/backup/README.md)", strings.Join(refused, "; "))
	}
	return actions, nil
}

// restoreDatabases carries out the actions, one database after the other, and counts what each holds
// afterwards. On an error it returns the databases restored so far.
func restoreDatabases(ctx context.Context, admin *pgx.Conn, target *pgTarget, pgRestore, dir string, actions map[string]string) ([]Result, error) {
	var results []Result
	for _, db := range BackupDatabases {
		ident := pgx.Identifier{db}.Sanitize()
		r := Result{Database: db}
		switch actions[db] {
		case "create":
			r.Action = "created"
		case "reuse":
			r.Action = "reused (empty)"
		case "recreate":
			r.Action = "dropped and recreated"
			// FORCE ends the sessions still open on it (a LiteLLM or backend that was not stopped).
			if _, err := admin.Exec(ctx, "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
				return results, fmt.Errorf("dropping database %s: %w", db, err)
			}
		}
		if actions[db] != "reuse" {
			// template0: a clean database, whatever was added to template1 on this server.
			if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
				return results, fmt.Errorf("creating database %s: %w", db, err)
			}
		}
		if err := runPgRestore(ctx, pgRestore, target, db, filepath.Join(dir, db+".dump")); err != nil {
			return results, err
		}
		tables, rows, err := countRows(ctx, target.url(db, true))
		if err != nil {
			return results, err
		}
		r.Tables, r.Rows = tables, rows
		results = append(results, r)
	}
	return results, nil
}

// resolveBackupDir accepts a backup directory, or a directory of backups (the volume's root), and
// returns the backup directory: the given one, or the newest complete backup in it.
func resolveBackupDir(from string) (string, error) {
	fi, err := os.Stat(from)
	if err != nil {
		return "", fmt.Errorf("backup %s: %w", from, err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("backup %s is not a directory: pass the directory holding litemaas_db.dump and litellm_db.dump", from)
	}
	if hasDumps(from) {
		return from, nil
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && backupNamePattern.MatchString(e.Name()) && hasDumps(filepath.Join(from, e.Name())) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("%s holds neither %s nor backup directories (YYYYMMDDTHHMMSSZ) with them", from, dumpNames())
	}
	sort.Strings(names)
	return filepath.Join(from, names[len(names)-1]), nil
}

func dumpNames() string {
	var n []string
	for _, db := range BackupDatabases {
		n = append(n, db+".dump")
	}
	return strings.Join(n, " and ")
}

func hasDumps(dir string) bool {
	for _, db := range BackupDatabases {
		if fi, err := os.Stat(filepath.Join(dir, db+".dump")); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// readBackupInfo reads the key=value lines backup.sh writes to backup-info; empty when absent.
func readBackupInfo(dir string) map[string]string {
	info := map[string]string{}
	data, err := os.ReadFile(filepath.Join(dir, "backup-info"))
	if err != nil {
		return info
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			info[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return info
}

// verifyChecksums checks the dumps against SHA256SUMS (sha256sum's format) when the backup has one: a
// dump damaged while copied off the cluster is caught before any database is dropped.
func verifyChecksums(dir string) error {
	f, err := os.Open(filepath.Join(dir, "SHA256SUMS"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(strings.TrimSpace(sc.Text()), "  ")
		if !ok {
			continue
		}
		name = strings.TrimPrefix(strings.TrimPrefix(name, "*"), "./")
		data, err := os.ReadFile(filepath.Join(dir, filepath.Base(name)))
		if err != nil {
			return fmt.Errorf("SHA256SUMS lists %s: %w", name, err)
		}
		got := sha256.Sum256(data)
		if hex.EncodeToString(got[:]) != strings.ToLower(sum) {
			return fmt.Errorf("%s does not match its checksum in SHA256SUMS: the file is damaged (copy it again)", filepath.Join(dir, name))
		}
	}
	return sc.Err()
}

// checkDump makes sure file is a custom-format archive this pg_restore can read.
func checkDump(ctx context.Context, pgRestore, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	head := make([]byte, 5)
	_, err = io.ReadFull(f, head)
	f.Close()
	if err != nil || string(head) != "PGDMP" {
		return fmt.Errorf("%s is not a pg_dump custom-format archive (made with pg_dump --format=custom)", file)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, pgRestore, "--list", file)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_restore cannot read %s: %w: %s", file, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// runPgRestore restores file into db. --no-owner/--no-privileges: the objects belong to the restoring
// user, whatever role names the source server had; --single-transaction with --exit-on-error: all or
// nothing.
func runPgRestore(ctx context.Context, pgRestore string, t *pgTarget, db, file string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, pgRestore,
		"--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error", "--no-password",
		"--dbname="+t.url(db, false), file)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	// The caller's PG* variables would override parts of the URL; only the password is passed this way.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if t.password != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+t.password)
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_restore of %s into database %s failed (nothing was committed): %w: %s", filepath.Base(file), db, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// userRelations lists the tables, views and sequences outside the system schemas of a database.
func userRelations(ctx context.Context, dbURL string) ([]string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", redactURL(dbURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `
		SELECT n.nspname || '.' || c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// countRows counts the tables of the public and other user schemas and their rows.
func countRows(ctx context.Context, dbURL string) (int, int64, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, 0, fmt.Errorf("connecting to %s: %w", redactURL(dbURL), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `
		SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
		FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')
		ORDER BY 1`)
	if err != nil {
		return 0, 0, err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, 0, err
	}
	var total int64
	for _, t := range tables {
		var n int64
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+t).Scan(&n); err != nil {
			return 0, 0, fmt.Errorf("counting rows of %s: %w", t, err)
		}
		total += n
	}
	return len(tables), total, nil
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// findPgRestore returns the pg_restore to use and its version: the one given, else the newest among the
// one on PATH and the per-version directories of Debian/Ubuntu (/usr/lib/postgresql/*/bin) and
// RHEL/Fedora (/usr/pgsql-*/bin). Newest, because pg_restore reads archives of its own and older versions
// only, and the dumps come from the cluster's PostgreSQL (16).
func findPgRestore(ctx context.Context, explicit string) (string, string, error) {
	if explicit != "" {
		v, err := pgRestoreVersion(ctx, explicit)
		if err != nil {
			return "", "", fmt.Errorf("--pg-restore %s: %w", explicit, err)
		}
		return explicit, v, nil
	}
	var candidates []string
	if p, err := exec.LookPath("pg_restore"); err == nil {
		candidates = append(candidates, p)
	}
	for _, pattern := range []string{"/usr/lib/postgresql/*/bin/pg_restore", "/usr/pgsql-*/bin/pg_restore"} {
		m, _ := filepath.Glob(pattern)
		candidates = append(candidates, m...)
	}
	best, bestVersion, bestMajor := "", "", -1
	for _, c := range candidates {
		v, err := pgRestoreVersion(ctx, c)
		if err != nil {
			continue
		}
		if major, ok := majorOf(v); ok && major > bestMajor {
			best, bestVersion, bestMajor = c, v, major
		}
	}
	if best == "" {
		return "", "", errors.New("pg_restore not found on PATH nor in /usr/lib/postgresql/*/bin or /usr/pgsql-*/bin: install the PostgreSQL client (version 16 or newer, e.g. package postgresql-client-16 or postgresql16) or pass --pg-restore")
	}
	return best, bestVersion, nil
}

// versionPattern finds the version in `pg_restore --version` or `pg_dump --version` output, e.g.
// "pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": the number after "(PostgreSQL)", else the
// first number.
var versionPattern = regexp.MustCompile(`(?:\(PostgreSQL\)\s+)?(\d+)((?:\.\d+)*)`)

func findVersion(s string) (string, bool) {
	if i := strings.Index(s, "(PostgreSQL)"); i >= 0 {
		s = s[i:]
	}
	m := versionPattern.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return m[1] + m[2], true
}

// pgRestoreVersion runs `pg_restore --version` and returns the version ("16.9").
func pgRestoreVersion(ctx context.Context, bin string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", err
	}
	v, ok := findVersion(string(out))
	if !ok {
		return "", fmt.Errorf("unexpected version output %q", strings.TrimSpace(string(out)))
	}
	return v, nil
}

// majorOf returns the major version in a version string ("pg_dump (PostgreSQL) 16.9" -> 16).
func majorOf(v string) (int, bool) {
	s, ok := findVersion(v)
	if !ok {
		return 0, false
	}
	major, _, _ := strings.Cut(s, ".")
	n, err := strconv.Atoi(major)
	return n, err == nil
}
