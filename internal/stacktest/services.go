// Package stacktest stands in for what the LiteMaaS stack's own containers do when they start (the
// `postgres`, `backend` and `litellm` containers of gitops/base), so that the tree's hooks, run by
// internal/kubelettest's Kubelet, meet real servers: a real PostgreSQL (internal/pgtest) and the LiteLLM
// double (internal/litellm/litellmtest). Services plugs into the Kubelet as its Options.Start and
// Options.Rewrite.
//
// What each container does follows its upstream: the postgres image's entrypoint (docker-library/postgres
// docker-entrypoint.sh: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB on an empty volume) and the tree's
// start.sh running roles.sql at every start (gitops/base/postgres), the LiteMaaS
// backend's start-up (its tables, the schema fixture of internal/pgtest), and LiteLLM's start-up
// migration connecting with Prisma's reading of DATABASE_URL (see prismaToPgx).
package stacktest

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kubelettest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

// Services plays what the stack's own pods do when they start, so that the hooks meet real servers:
//   - a `postgres` container creates its POSTGRES_USER (with POSTGRES_PASSWORD) and POSTGRES_DB in a
//     throwaway PostgreSQL, as the image's entrypoint does on an empty volume;
//   - a `backend` container creates the backend's tables in the database of its DATABASE_URL (the
//     LiteMaaS schema fixture), as the backend does at start-up;
//   - a `litellm` container starts the LiteLLM double with its LITELLM_MASTER_KEY; when its
//     DATABASE_URL names a CloudNativePG Cluster's Service it first connects to that database as Prisma
//     reads the URL (see prismaToPgx), as LiteLLM's start-up migration does, and crash-loops until it
//     can.
//
// Rewrite points the in-cluster addresses of these services (http://litellm:4000,
// @postgres:5432/<db>, also in their .<namespace>.svc forms) at the local servers. Each namespace
// gets its own databases (named with a per-harness prefix) and its own double.
type Services struct {
	PG *pgtest.Server

	mu      sync.Mutex
	litellm map[string]*liteLLM
	// litellmTLS: namespace -> the TLS mode of LiteLLM's last database connection, in libpq's words.
	litellmTLS map[string]string
	dbs        map[string]bool
	clusters   func(ns, cluster string) string // CloudNativePG Cluster -> its instances' address
}

type liteLLM struct {
	key    string
	server *litellmtest.Server
}

// NewServices returns the stand-ins, backed by pg.
func NewServices(pg *pgtest.Server) *Services {
	return &Services{PG: pg, litellm: map[string]*liteLLM{}, litellmTLS: map[string]string{}, dbs: map[string]bool{}}
}

// Start is a kubelettest.Options.Start.
func (s *Services) Start(ctx context.Context, pod *corev1.Pod, c *corev1.Container, env, mounts map[string]string) error {
	image := kubelettest.ImageName(c.Image)
	switch {
	case c.Name == "postgres" && strings.Contains(image, "postgres"):
		return s.startPostgres(ctx, pod.Namespace, env, mounts)
	case c.Name == "backend":
		return s.startBackend(ctx, pod.Namespace, env, mounts)
	case c.Name == "litellm":
		if err := s.connectLiteLLM(ctx, pod.Namespace, env, mounts); err != nil {
			return err
		}
		return s.startLiteLLM(pod.Namespace, env)
	}
	return nil
}

// Database is the local name of database db of namespace ns: the same, since the setup scripts the
// tree ships name their databases (one namespace at a time shares the server).
func (s *Services) Database(ns, db string) string { return db }

// DatabaseURL is the superuser URL of database db of namespace ns.
func (s *Services) DatabaseURL(ns, db string) string { return s.PG.URL(s.Database(ns, db)) }

// LiteLLM is the double serving namespace ns, nil before its litellm pod started.
func (s *Services) LiteLLM(ns string) *litellmtest.Proxy {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.litellm[ns]; l != nil {
		return l.server.Proxy()
	}
	return nil
}

// LiteLLMURL is the URL of the double serving namespace ns, "" before its litellm pod started.
func (s *Services) LiteLLMURL(ns string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.litellm[ns]; l != nil {
		return l.server.URL()
	}
	return ""
}

func (s *Services) pgHost() string {
	u, err := url.Parse(s.PG.URL("postgres"))
	if err != nil {
		return ""
	}
	return u.Host
}

var (
	litellmAddr  = regexp.MustCompile(`https?://litellm((\.[a-z0-9-]+)(\.svc(\.cluster\.local)?)?)?:4000`)
	postgresAddr = regexp.MustCompile(`@postgres((\.[a-z0-9-]+)(\.svc(\.cluster\.local)?)?)?:5432/([A-Za-z0-9_]+)`)
	// A CloudNativePG Cluster's Services: <cluster>-rw, -ro, -r.
	clusterAddr = regexp.MustCompile(`@([a-z0-9-]+)-(rw|ro|r)((\.[a-z0-9-]+)(\.svc(\.cluster\.local)?)?)?:5432/([A-Za-z0-9_]+)`)
)

// SetClusters points the Service names of CloudNativePG Clusters at addr(ns, cluster) (the
// CloudNativePG stand-in's instances, openshifttest.CNPG.Addr).
func (s *Services) SetClusters(addr func(ns, cluster string) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clusters = addr
}

// TrackDatabase records a database created for a namespace (by the CloudNativePG stand-in), dropped by
// Forget and Close.
func (s *Services) TrackDatabase(db string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dbs[db] = true
}

// Rewrite is a kubelettest.Options.Rewrite.
func (s *Services) Rewrite(ns, v string) string {
	if u := s.LiteLLMURL(ns); u != "" {
		v = litellmAddr.ReplaceAllStringFunc(v, func(m string) string {
			if sub := litellmAddr.FindStringSubmatch(m); sub[2] != "" && sub[2] != "."+ns {
				return m
			}
			return u
		})
	}
	s.mu.Lock()
	clusters := s.clusters
	s.mu.Unlock()
	if clusters != nil {
		v = clusterAddr.ReplaceAllStringFunc(v, func(m string) string {
			sub := clusterAddr.FindStringSubmatch(m)
			if sub[4] != "" && sub[4] != "."+ns {
				return m
			}
			addr := clusters(ns, sub[1])
			if addr == "" {
				return m
			}
			return "@" + addr + "/" + s.Database(ns, sub[7])
		})
	}
	host := s.pgHost()
	return postgresAddr.ReplaceAllStringFunc(v, func(m string) string {
		sub := postgresAddr.FindStringSubmatch(m)
		if sub[2] != "" && sub[2] != "."+ns {
			return m
		}
		return "@" + host + "/" + s.Database(ns, sub[5])
	})
}

func (s *Services) admin(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.PG.URL("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}

func literal(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// rolesScript is what the tree's postgres container runs at every start (gitops/base/postgres).
const rolesScript = "/etc/litemaas/postgres/roles.sql"

func (s *Services) startPostgres(ctx context.Context, ns string, env, mounts map[string]string) error {
	user := env["POSTGRES_USER"]
	if user == "" {
		user = "postgres"
	}
	db := env["POSTGRES_DB"]
	if db == "" {
		db = user
	}
	role := pgx.Identifier{user}.Sanitize()
	if err := s.admin(ctx, fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %[1]s) THEN CREATE ROLE %[2]s LOGIN CREATEDB PASSWORD %[3]s;
  ELSE ALTER ROLE %[2]s PASSWORD %[3]s; END IF; END $$`, literal(user), role, literal(env["POSTGRES_PASSWORD"]))); err != nil {
		return fmt.Errorf("postgres: creating role %s: %w", user, err)
	}
	name := s.Database(ns, db)
	s.mu.Lock()
	exists := s.dbs[name]
	s.mu.Unlock()
	if dir, ok := mounts[filepath.Dir(rolesScript)]; ok {
		// The container's start script runs roles.sql with psql as the superuser: so does this.
		return s.runRolesScript(ctx, filepath.Join(dir, filepath.Base(rolesScript)), env)
	}
	if exists {
		return nil
	}
	err := s.admin(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", pgx.Identifier{name}.Sanitize(), role))
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("postgres: creating database %s: %w", db, err)
	}
	s.mu.Lock()
	s.dbs[name] = true
	s.mu.Unlock()
	return nil
}

func (s *Services) runRolesScript(ctx context.Context, script string, env map[string]string) error {
	before, err := s.databases(ctx)
	if err != nil {
		return err
	}
	psql, err := pgtest.Binary("psql")
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, psql, "--no-psqlrc", "--quiet", "-d", s.PG.URL("postgres"), "-f", script)
	for k, v := range env {
		if strings.HasPrefix(k, "LITEMAAS_") || strings.HasPrefix(k, "POSTGRES_") {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("postgres: %s: %w: %s", filepath.Base(script), err, out)
	}
	after, err := s.databases(ctx)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range after {
		if !before[name] {
			s.dbs[name] = true
		}
	}
	return nil
}

func (s *Services) databases(ctx context.Context) (map[string]bool, error) {
	conn, err := pgx.Connect(ctx, s.PG.URL("postgres"))
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database`)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m, nil
}

func (s *Services) startBackend(ctx context.Context, ns string, env, mounts map[string]string) error {
	raw := env["DATABASE_URL"]
	if raw == "" {
		return fmt.Errorf("backend: DATABASE_URL is not set")
	}
	conn, err := pgx.Connect(ctx, s.Rewrite(ns, localFiles(raw, mounts)))
	if err != nil {
		// The database is not there yet: the backend crash-loops until it is.
		return fmt.Errorf("backend: connecting to its database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('public.models') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, pgtest.SchemaSQL); err != nil {
		return fmt.Errorf("backend: creating its tables: %w", err)
	}
	return nil
}

// connectLiteLLM connects to LiteLLM's database at a CloudNativePG Service (the production profile) the
// way Prisma would with its DATABASE_URL, and records the TLS mode it ended up with.
func (s *Services) connectLiteLLM(ctx context.Context, ns string, env, mounts map[string]string) error {
	raw := env["DATABASE_URL"]
	if !strings.Contains(raw, "-rw:5432/") && !strings.Contains(raw, "-rw."+ns) {
		return nil
	}
	pgURL, mode, err := prismaToPgx(localFiles(raw, mounts))
	if err != nil {
		return fmt.Errorf("litellm: DATABASE_URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, s.Rewrite(ns, pgURL))
	if err != nil {
		return fmt.Errorf("litellm: connecting to its database (Prisma's TLS mode %s): %w", mode, err)
	}
	_ = conn.Close(context.WithoutCancel(ctx))
	s.mu.Lock()
	s.litellmTLS[ns] = mode
	s.mu.Unlock()
	return nil
}

// LiteLLMDatabaseTLS is the TLS mode, in libpq's words (verify-full, require, prefer, disable), of the
// last database connection of namespace ns's LiteLLM at a CloudNativePG Service; "" when none was made.
func (s *Services) LiteLLMDatabaseTLS(ns string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.litellmTLS[ns]
}

// prismaToPgx translates a Prisma PostgreSQL URL into the pgx URL that connects the same way, and names
// the TLS mode. It follows Prisma's connector (prisma-engines, quaint's PostgreSQL URL parameters, as
// Prisma's documentation lists them): sslmode is disable, prefer (the default, also for any value it
// does not know, such as libpq's verify-full) or require; sslcert is the root certificate the server's
// is checked against; sslaccept is accept_invalid_certs (the default: any certificate, any host name)
// or strict (the certificate against sslcert or the system's roots, and the host name). Other
// parameters (schema, connection_limit, ...) are Prisma's own and dropped.
func prismaToPgx(raw string) (pgURL, mode string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", err
	}
	q := u.Query()
	mode = "prefer"
	switch q.Get("sslmode") {
	case "disable", "require":
		mode = q.Get("sslmode")
	}
	strict := false
	switch a := q.Get("sslaccept"); a {
	case "", "accept_invalid_certs":
	case "strict":
		strict = true
	default:
		return "", "", fmt.Errorf("sslaccept=%s: Prisma knows strict and accept_invalid_certs", a)
	}
	out := url.Values{}
	if mode == "require" && strict {
		mode = "verify-full"
		if ca := q.Get("sslcert"); ca != "" {
			out.Set("sslrootcert", ca)
		}
	}
	out.Set("sslmode", mode)
	u.RawQuery = out.Encode()
	return u.String(), mode, nil
}

func (s *Services) startLiteLLM(ns string, env map[string]string) error {
	key := env["LITELLM_MASTER_KEY"]
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.litellm[ns]
	if cur != nil && cur.key == key {
		return nil
	}
	addr := "127.0.0.1:0"
	if cur != nil {
		// A new master key: the proxy restarts with it, on the same address.
		addr = cur.server.Addr()
		_ = cur.server.Stop()
	}
	srv := litellmtest.NewServer(litellmtest.New(litellmtest.Options{MasterKey: key}))
	if err := srv.Start(addr); err != nil {
		return fmt.Errorf("litellm: starting the double: %w", err)
	}
	s.litellm[ns] = &liteLLM{key: key, server: srv}
	return nil
}

// LiteLLMDown stops namespace ns's double as a crashed or restarting LiteLLM pod would be (connections
// refused, the pod still Ready until its probe notices); up starts it again on the same address.
func (s *Services) LiteLLMDown(ns string) (up func() error, err error) {
	s.mu.Lock()
	l := s.litellm[ns]
	s.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("no LiteLLM double runs for namespace %s", ns)
	}
	if err := l.server.Stop(); err != nil {
		return nil, err
	}
	return func() error { return l.server.Start("") }, nil
}

// Forget stops namespace ns's double and drops its databases, as deleting the namespace (and the
// volumes of its database) does.
func (s *Services) Forget(ns string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l := s.litellm[ns]; l != nil {
		_ = l.server.Stop()
		delete(s.litellm, ns)
	}
	delete(s.litellmTLS, ns)
	for name := range s.dbs {
		_ = s.admin(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		delete(s.dbs, name)
	}
}

// Close stops the doubles and drops the databases.
func (s *Services) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.litellm {
		_ = l.server.Stop()
	}
	for name := range s.dbs {
		_ = s.admin(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	}
}

// localFiles points the files a database URL's query names (sslrootcert=, Prisma's sslcert=) at the
// local copies of the container's volumes (mounts: mount path -> local directory).
func localFiles(raw string, mounts map[string]string) string {
	for path, local := range mounts {
		raw = strings.ReplaceAll(raw, "="+path+"/", "="+local+"/")
	}
	return raw
}
