// Package pgtest runs a real PostgreSQL server for tests: either the one named by TEST_DATABASE_URL, or a
// throwaway cluster created in a temporary directory from the system's PostgreSQL server binaries.
//
// A test package starts one server in TestMain and gives each test its own database:
//
//	var srv *pgtest.Server
//
//	func TestMain(m *testing.M) {
//		srv = pgtest.MustStart(m)
//		code := m.Run()
//		_ = srv.Stop()
//		os.Exit(code)
//	}
//
//	func TestX(t *testing.T) {
//		url := srv.NewDatabase(t, true) // fresh database holding the LiteMaaS fixture schema
//		...
//	}
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// SchemaSQL creates the LiteMaaS backend's tables that the job touches (users with oauth_id NOT NULL, models,
// subscriptions, api_keys, api_key_models). It is a test fixture: the job itself never creates tables.
//
//go:embed testdata/litemaas-schema.sql
var SchemaSQL string

// RunbookSQL is the model INSERT of the manual runbook that litemaas-sync replaces, verbatim: five models
// inserted with ON CONFLICT (id) DO NOTHING. Convergence tests load it to start from a database that the
// runbook set up.
//
//go:embed testdata/runbook-models.sql
var RunbookSQL string

// RunbookMigrationSQL is the runbook's manual fix for OpenShift users without a uid. It is kept apart from
// RunbookSQL so that tests can start from the NOT NULL column that the backend creates.
const RunbookMigrationSQL = `ALTER TABLE users ALTER COLUMN oauth_id DROP NOT NULL;`

// EnvURL names the environment variable that points the tests at an existing server instead of a throwaway
// cluster. Its role needs CREATEDB: every test gets its own database.
const EnvURL = "TEST_DATABASE_URL"

const (
	superuser = "postgres"
	// startTimeout bounds pg_ctl's wait for the server to accept connections.
	startTimeout = 60 * time.Second
)

// Server is a running PostgreSQL server. Its methods are safe for concurrent use, except that Restart and
// Stop must not race with tests that expect the server to be up.
type Server struct {
	// external is the parsed TEST_DATABASE_URL; nil for a throwaway cluster.
	external *url.URL

	binDir  string
	dir     string // temporary directory holding the data, socket and log
	dataDir string
	sockDir string
	logFile string
	port    int
	cred    *syscall.Credential // non-nil when the server must run as the postgres system user

	mu      sync.Mutex
	stopped bool

	// template is a database holding SchemaSQL that schema databases are copied from, which is cheaper than
	// running the script each time. Only a throwaway cluster has one: on a shared server it would outlive the
	// tests and race with other test processes.
	templateOnce sync.Once
	template     string
	templateErr  error
}

// Start returns a running server: the one named by TEST_DATABASE_URL when set, otherwise a new throwaway
// cluster listening on 127.0.0.1 at a free port, which Stop shuts down and deletes.
func Start() (*Server, error) {
	if raw := os.Getenv(EnvURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			// The URL may hold a password: never echo it.
			return nil, fmt.Errorf("%s is not a postgres:// URL", EnvURL)
		}
		return &Server{external: u}, nil
	}
	return startCluster()
}

// MustStart is Start for TestMain: no test of a package that needs PostgreSQL can run without it, so when the
// server cannot start it prints why and exits with status 1. Call Stop after m.Run. The *testing.M only ties
// it to TestMain, the one place where exiting the test binary is right.
func MustStart(m *testing.M) *Server {
	s, err := Start()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: cannot start PostgreSQL for the tests: %v\n", err)
		os.Exit(1)
	}
	return s
}

// URL returns the URL of database db on this server, with sslmode=disable unless TEST_DATABASE_URL chose
// an sslmode.
func (s *Server) URL(db string) string {
	if s.external != nil {
		u := *s.external
		u.Path = "/" + db
		u.RawPath = ""
		q := u.Query()
		if q.Get("sslmode") == "" {
			q.Set("sslmode", "disable")
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User(superuser),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// adminDB is the database used to create and drop the tests' databases.
func (s *Server) adminDB() string {
	if s.external != nil {
		if db := strings.TrimPrefix(s.external.Path, "/"); db != "" {
			return db
		}
	}
	return "postgres"
}

// Stop shuts a throwaway cluster down and deletes its files; it leaves a TEST_DATABASE_URL server alone.
// Calling it again does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.external != nil || s.stopped {
		return nil
	}
	s.stopped = true
	// Immediate mode skips the shutdown checkpoint: the files are deleted right after.
	stopErr := s.pgCtl(context.Background(), "stop", "-m", "immediate")
	if err := os.RemoveAll(s.dir); err != nil && stopErr == nil {
		return fmt.Errorf("removing the test cluster's directory: %w", err)
	}
	return stopErr
}

// Restart stops the server in fast mode (clients are disconnected, as in a real restart) and starts it again
// on the same port, so that existing URLs keep working. Only a throwaway cluster can be restarted.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.external != nil {
		return fmt.Errorf("restart needs a throwaway cluster: unset %s", EnvURL)
	}
	if s.stopped {
		return errors.New("restart: the server was stopped")
	}
	if err := s.pgCtl(ctx, "stop", "-m", "fast"); err != nil {
		return err
	}
	return s.pgCtlStart(ctx)
}

// NewDatabase creates a database with a unique name, loads SchemaSQL into it when schema is true, and drops it
// when the test ends. It returns the database's URL.
func (s *Server) NewDatabase(t testing.TB, schema bool) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	name := databaseName(t.Name())
	create := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	loadSchema := schema
	if schema && s.external == nil {
		template, err := s.schemaTemplate(ctx)
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		create += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
		loadSchema = false
	}
	if err := s.exec(ctx, s.adminDB(), create); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE ends sessions the test left open (pools not closed, a server restarted under them).
		stmt := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
		if err := s.exec(ctx, s.adminDB(), stmt); err != nil {
			t.Errorf("pgtest: dropping database %s: %v", name, err)
		}
	})
	if loadSchema {
		if err := s.exec(ctx, name, SchemaSQL); err != nil {
			t.Fatalf("pgtest: loading the LiteMaaS fixture schema into %s: %v", name, err)
		}
	}
	return s.URL(name)
}

func (s *Server) schemaTemplate(ctx context.Context) (string, error) {
	s.templateOnce.Do(func() {
		const name = "pgtest_litemaas_schema"
		if err := s.exec(ctx, s.adminDB(), "CREATE DATABASE "+name); err != nil {
			s.templateErr = fmt.Errorf("creating the fixture template database: %w", err)
			return
		}
		if err := s.exec(ctx, name, SchemaSQL); err != nil {
			s.templateErr = fmt.Errorf("loading the LiteMaaS fixture schema: %w", err)
			return
		}
		s.template = name
	})
	return s.template, s.templateErr
}

// exec runs sql on database db over a short-lived connection. Without arguments pgx uses the simple protocol,
// which accepts a script of several statements.
func (s *Server) exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// databaseName derives a readable name from the test's name, made unique by a random suffix since other test
// processes may share a TEST_DATABASE_URL server. It stays under PostgreSQL's 63-byte identifier limit.
func databaseName(testName string) string {
	base := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	if len(base) > 40 {
		base = base[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "pgtest_" + base + "_" + hex.EncodeToString(b[:])
}

func startCluster() (_ *Server, err error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	s := &Server{binDir: binDir}

	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root; the postgres system user comes with the server packages.
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		s.cred = cred
	}

	s.dir, err = os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("creating a temporary directory for the test cluster: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(s.dir)
		}
	}()
	s.dataDir = filepath.Join(s.dir, "data")
	s.sockDir = filepath.Join(s.dir, "sock")
	s.logFile = filepath.Join(s.dir, "server.log")
	// The kernel limits a unix socket path to about 107 bytes, socket file name included.
	if len(s.sockDir)+len("/.s.PGSQL.65535") > 100 {
		return nil, fmt.Errorf("temporary directory %s is too long for a unix socket path: set TMPDIR to a shorter directory", s.dir)
	}
	if err := os.Mkdir(s.sockDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating the socket directory: %w", err)
	}
	if s.cred != nil {
		for _, p := range []string{s.dir, s.sockDir} {
			if err := os.Chown(p, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
				return nil, fmt.Errorf("handing the test cluster's directory to the postgres user: %w", err)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
	defer cancel()
	initdb := s.command(ctx, filepath.Join(s.binDir, "initdb"),
		"-D", s.dataDir, "-U", superuser, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		hint := ""
		if s.cred != nil {
			hint = fmt.Sprintf(" (it runs as the %s user, who must be able to reach %s: if TMPDIR is private to root, point it elsewhere)", superuser, s.dir)
		}
		return nil, fmt.Errorf("initdb failed%s: %w\n%s", hint, err, bytes.TrimSpace(out))
	}

	// Durability is worthless for a cluster deleted after the tests, and skipping it makes each write cheap.
	settings := fmt.Sprintf(`
# pgtest: throwaway cluster for tests
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
shared_buffers = 32MB
max_connections = 200
`, s.sockDir)
	conf, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("configuring the test cluster: %w", err)
	}
	_, err = conf.WriteString(settings)
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("configuring the test cluster: %w", err)
	}

	// Another process can take the free port between the probe and the server's bind: try a few ports.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.pgCtlStart(ctx)
		if err == nil {
			return s, nil
		}
		if attempt == 4 || !strings.Contains(s.logTail(), "could not bind") {
			return nil, err
		}
	}
}

// pgCtlStart starts the server on s.port and waits until it accepts connections.
func (s *Server) pgCtlStart(ctx context.Context) error {
	return s.pgCtl(ctx, "start", "-l", s.logFile, "-t", strconv.Itoa(int(startTimeout.Seconds())),
		"-o", "-p "+strconv.Itoa(s.port))
}

func (s *Server) pgCtl(ctx context.Context, action string, args ...string) error {
	cmd := s.command(ctx, filepath.Join(s.binDir, "pg_ctl"), append([]string{action, "-D", s.dataDir, "-w"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl %s failed: %w\n%s\nserver log:\n%s", action, err, bytes.TrimSpace(out), s.logTail())
	}
	return nil
}

// command prepares a server binary to run as the cluster's owner, from a directory that owner can read, and
// without the caller's PG* variables, which would otherwise steer initdb and pg_ctl.
func (s *Server) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = s.dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LC_ALL=C")
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logFile)
	if err != nil {
		return "(no server log)"
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(bytes.TrimSpace(b))
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup(superuser)
	if err != nil {
		return nil, fmt.Errorf("tests run as root, which PostgreSQL refuses, and there is no %q system user to run it as "+
			"(install Debian package postgresql, which creates it, or set %s): %w", superuser, EnvURL, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s has a non-numeric uid %q", superuser, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s has a non-numeric gid %q", superuser, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

var serverBinaries = []string{"initdb", "pg_ctl", "postgres"}

// findBinDir looks for a directory holding initdb, pg_ctl and postgres together: next to pg_ctl on PATH
// (symlinks resolved, since pg_ctl finds postgres beside its real file), then pg_config --bindir, then the
// per-version directories where Debian and Ubuntu install the server outside PATH, newest version first.
func findBinDir() (string, error) {
	var candidates []string
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
		candidates = append(candidates, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(versioned, func(i, j int) bool { return majorVersion(versioned[i]) > majorVersion(versioned[j]) })
	candidates = append(candidates, versioned...)

	for _, dir := range candidates {
		if hasBinaries(dir) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL server binaries not found (%s, looked on PATH, in pg_config --bindir "+
		"and in the Debian layout): install Debian package postgresql, or set %s to an existing server",
		strings.Join(serverBinaries, ", "), EnvURL)
}

func hasBinaries(dir string) bool {
	for _, name := range serverBinaries {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// majorVersion reads the version from a .../<version>/bin path; 0 when it is not a number.
func majorVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port for the test cluster: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Bin returns the path of a PostgreSQL client program (psql, pg_dump): the one next to the throwaway
// cluster's server binaries, else the one on PATH.
func (s *Server) Bin(name string) (string, error) {
	if s.binDir != "" {
		if p := filepath.Join(s.binDir, name); hasBinaries(s.binDir) {
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found next to the server binaries nor on PATH: %w", name, err)
	}
	return p, nil
}

// External reports whether the server is the one named by TEST_DATABASE_URL.
func (s *Server) External() bool { return s.external != nil }
