// Package store reads and writes the LiteMaaS backend's database (litemaas_db) for litemaas-sync.
//
// The backend owns the schema: this package never creates tables, and alters only users.oauth_id. Every write
// is a fixed point: writing a row that is already there changes nothing, not even updated_at.
//
// It speaks to PostgreSQL through pgconn, pgx's low-level layer, with every value in text form: the
// parameters travel as JSON that PostgreSQL decodes (jsonb_to_recordset), and results are read as text.
// pgx's own layer would bring its registry of every PostgreSQL type, 2.8 MiB of the job's binary and
// of its memory, for the five types the job reads.
//
// SQL statements per call, as counted by a Tracer (BEGIN and COMMIT included):
//
//	CheckReady      1
//	MigrateOAuthID  1 when oauth_id is already nullable; 5 when it alters (SELECT, BEGIN, SET LOCAL, ALTER, COMMIT)
//	Lock            1 to acquire (after its own connect), 1 more at release
//	Models          1, whatever the number of ids
//	Apply           6 when every row is accepted, whatever their number (BEGIN, the lock's SELECT, SAVEPOINT,
//	                INSERT, UPDATE, COMMIT); 0 when given nothing. A refused row adds a ROLLBACK TO
//	                SAVEPOINT and one INSERT per row, to name the model.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/redact"
)

const (
	// lockTimeout bounds how long the oauth_id ALTER waits for its exclusive lock on users: while it waits,
	// every login queues behind it.
	lockTimeout = 5 * time.Second
	// cancelDeadline is how long a query may take to stop after its context ends, once the server was asked
	// to cancel it, before the connection is cut.
	cancelDeadline = 2 * time.Second
	commitTimeout  = 10 * time.Second
	connectTimeout = 10 * time.Second
)

var (
	errClosed  = errors.New("the database store is closed")
	errNull    = errors.New("unexpected NULL")
	errNotBool = errors.New("not a boolean")
)

// lockKey is the advisory lock key of litemaas-sync: the first 8 bytes of SHA-256("litemaas-sync"), fixed so
// that every version of the job serializes with every other.
var lockKey = func() int64 {
	sum := sha256.Sum256([]byte("litemaas-sync"))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}()

// lockParam is lockKey as the text parameter of pg_advisory_lock and friends.
var lockParam = []byte(strconv.FormatInt(lockKey, 10))

type config struct {
	tracer Tracer
}

// Option changes how Open sets the store up.
type Option func(*config)

// WithTracer traces every SQL statement, on the store's connection and on the lock's.
func WithTracer(t Tracer) Option {
	return func(c *config) { c.tracer = t }
}

// Store is the job's handle on the backend database. It is safe for concurrent use.
type Store struct {
	cfg         *pgconn.Config
	tracer      Tracer
	red         *redact.Redactor // the password, kept out of every error
	lockTimeout time.Duration

	connMu sync.Mutex // held while work is in use
	work   *pgconn.PgConn
	closed bool

	// lockConn is the connection holding the session lock Lock took, nil when none is held. Apply
	// writes on it, so that its transaction re-takes the lock on the session that holds it.
	lockMu   sync.Mutex
	lockConn *pgconn.PgConn
}

// Open parses url. It does not wait for the server: the connection is made on first use, and CheckReady tells
// whether the database is usable.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("the database URL is empty: set it to the LiteMaaS backend's database, e.g. postgres://user:password@host:5432/litemaas_db?sslmode=disable")
	}
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		// pgx redacts the password only on a best-effort basis, and its wrapped causes may quote the URL:
		// rebuild the message without any secret and drop the chain, which still holds the original string.
		return nil, errors.New("invalid database URL: " + redactSecrets(err.Error(), url))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = connectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "litemaas-sync"
	}
	// float8 is read in text form: any value above 0 makes PostgreSQL 12 and later print the shortest text
	// that reads back exactly, and 3 makes older servers print enough digits to. It is set whatever the URL
	// or the database says: a rounded cost could differ from the catalog's at every run, and every run
	// would rewrite it.
	cfg.RuntimeParams["extra_float_digits"] = "3"
	// pgx's default reacts to a cancelled context by cutting the connection, which leaves the server-side
	// statement running (a lock wait, for instance) until it next writes to the socket. Asking the server to
	// cancel it first ends it at once, so a SIGTERM mid-Apply rolls back immediately and an abandoned Lock
	// wait does not grab the lock later.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
	}
	return &Store{cfg: cfg, tracer: c.tracer, red: redact.New(cfg.Password), lockTimeout: lockTimeout}, nil
}

// Close closes the store's connection, waiting for a call using it to end. Locks taken with Lock are held on
// their own connections: release them.
func (s *Store) Close() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.closed = true
	if s.work != nil {
		closeConn(s.work)
		s.work = nil
	}
}

// CheckReady tells whether the backend has set up its database. A backend that could not reach its database at
// start-up runs without it yet reports ready, so the tables themselves are checked.
func (s *Store) CheckReady(ctx context.Context) (err error) {
	defer func() { err = s.red.Error(err) }()
	res, err := s.query(ctx, `SELECT to_regclass('public.users') IS NOT NULL, to_regclass('public.models') IS NOT NULL`)
	if err == nil && len(res) != 1 {
		err = fmt.Errorf("expected one row, got %d", len(res))
	}
	if err != nil {
		return fmt.Errorf("cannot query the LiteMaaS database: %w", err)
	}
	var users, models bool
	var v textValue
	v.boolean("users", res[0][0], &users)
	v.boolean("models", res[0][1], &models)
	if v.err != nil {
		return fmt.Errorf("cannot query the LiteMaaS database: %w", v.err)
	}
	const hint = "the LiteMaaS backend creates %s at start-up; is the backend running with its database?"
	switch {
	case !users && !models:
		return fmt.Errorf("tables public.users and public.models do not exist yet: "+hint, "them")
	case !users:
		return fmt.Errorf("table public.users does not exist yet: "+hint, "it")
	case !models:
		return fmt.Errorf("table public.models does not exist yet: "+hint, "it")
	}
	return nil
}

// MigrateOAuthID makes users.oauth_id nullable, which OpenShift users without a uid (kube:admin) need in order
// to log in. The backend never re-adds NOT NULL, so this alters at most once per database; it reports whether
// it did. The check comes first and outside any transaction, so the usual run takes no lock on users at all.
func (s *Store) MigrateOAuthID(ctx context.Context) (changed bool, err error) {
	notNull, err := s.OAuthIDNotNull(ctx)
	if err != nil || !notNull {
		return false, err
	}
	defer func() { err = s.red.Error(err) }()

	// The ALTER needs an exclusive lock on users; a bounded wait keeps a long backend transaction from
	// queueing every login behind us. Were another job to alter in between, DROP NOT NULL is harmless twice.
	err = s.inTx(ctx, func(c *pgconn.PgConn) error {
		// SET takes no parameters; the value is an integer of milliseconds, not user input.
		if _, _, err := s.exec(ctx, c, fmt.Sprintf("SET LOCAL lock_timeout = %d", s.lockTimeout.Milliseconds())); err != nil {
			return err
		}
		_, _, err := s.exec(ctx, c, `ALTER TABLE public.users ALTER COLUMN oauth_id DROP NOT NULL`)
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "55P03" {
		return false, fmt.Errorf("making users.oauth_id nullable: table users stayed locked for %s (a long backend transaction?); the next run retries: %w", s.lockTimeout, err)
	}
	if err != nil {
		return false, fmt.Errorf("making users.oauth_id nullable: %w", err)
	}
	return true, nil
}

// inTx runs fn in a transaction on the store's connection, committing when fn succeeds.
func (s *Store) inTx(ctx context.Context, fn func(c *pgconn.PgConn) error) error {
	c, done, err := s.conn(ctx)
	if err != nil {
		return err
	}
	defer done()
	if _, _, err := s.exec(ctx, c, "BEGIN"); err != nil {
		return err
	}
	if err := fn(c); err != nil {
		s.rollback(c)
		return err
	}
	return s.commit(ctx, c)
}

// Lock takes litemaas-sync's session-level advisory lock, so that two runs started at once (a re-sync during a
// sync) take turns. It waits until the lock is free or ctx ends. The lock lives on a connection of its own,
// outside the pool, until release is called; release may be called more than once. If that connection is lost
// (the server restarts), the server drops the lock with it.
func (s *Store) Lock(ctx context.Context) (release func(), err error) {
	defer func() { err = s.red.Error(err) }()
	conn, err := pgconn.ConnectConfig(ctx, s.cfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("connecting to take the litemaas-sync lock: %w", err)
	}
	if _, _, err := s.exec(ctx, conn, `SELECT pg_advisory_lock($1::int8)`, lockParam); err != nil {
		closeConn(conn)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("gave up waiting for the litemaas-sync lock (another run holds it): %w", ctx.Err())
		}
		return nil, fmt.Errorf("taking the litemaas-sync lock: %w", err)
	}
	s.lockMu.Lock()
	s.lockConn = conn
	s.lockMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.lockMu.Lock()
			if s.lockConn == conn {
				s.lockConn = nil
			}
			s.lockMu.Unlock()
			// Unlocking explicitly hands the lock over at once; closing alone would leave the handover to the
			// server noticing the disconnection.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, _, _ = s.exec(ctx, conn, `SELECT pg_advisory_unlock($1::int8)`, lockParam)
			closeConn(conn)
		})
	}, nil
}

// modelColumns are the columns the job writes, in modelsync.Row's order. Costs are read as float8: the
// column is decimal(15,10), and Row holds float64. features is read as JSON, which encoding/json reads.
const modelColumns = `id, name, provider, description, category, context_length, max_tokens, tpm, rpm,
	input_cost_per_token::float8, output_cost_per_token::float8,
	supports_vision, supports_function_calling, supports_tool_choice, supports_parallel_function_calling,
	supports_streaming, to_jsonb(features), COALESCE(availability, ''), version, api_base, litellm_model_id,
	backend_model_name, restricted_access, metadata`

// Models reads the rows with these ids; ids without a row are absent from the map.
//
// The boolean columns are nullable but Row's fields are not: a NULL reads as the column's default (the
// backend's: false, and true for supports_streaming) and is listed in the row's NullColumns, so that a plan
// rewrites it; Apply compares with the stored NULL, not with that default. A NULL availability reads as "". Metadata comes back in PostgreSQL's jsonb text form (keys reordered, spaces added): compare it
// as JSON, not as bytes.
func (s *Store) Models(ctx context.Context, ids []string) (_ map[string]modelsync.Row, err error) {
	defer func() { err = s.red.Error(err) }()
	out := make(map[string]modelsync.Row, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	param, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("reading models: %w", err)
	}
	res, err := s.query(ctx, `SELECT `+modelColumns+` FROM public.models
		WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb))`, param)
	if err != nil {
		return nil, fmt.Errorf("reading models: %w", err)
	}
	for _, cols := range res {
		r, err := readRow(cols)
		if err != nil {
			return nil, fmt.Errorf("reading models: %w", err)
		}
		out[r.ID] = r
	}
	return out, nil
}

// readRow reads one row of modelColumns.
func readRow(c [][]byte) (modelsync.Row, error) {
	var (
		r modelsync.Row
		v textValue
	)
	if len(c) != 24 {
		return r, fmt.Errorf("expected 24 columns, got %d", len(c))
	}
	v.str("id", c[0], &r.ID)
	v.str("name", c[1], &r.Name)
	v.str("provider", c[2], &r.Provider)
	v.optStr(c[3], &r.Description)
	v.optStr(c[4], &r.Category)
	v.optInt32("context_length", c[5], &r.ContextLength)
	v.optInt32("max_tokens", c[6], &r.MaxTokens)
	v.optInt32("tpm", c[7], &r.TPM)
	v.optInt32("rpm", c[8], &r.RPM)
	v.optFloat64("input_cost_per_token", c[9], &r.InputCostPerToken)
	v.optFloat64("output_cost_per_token", c[10], &r.OutputCostPerToken)
	v.nullableBool("supports_vision", c[11], &r.SupportsVision, false, &r.NullColumns)
	v.nullableBool("supports_function_calling", c[12], &r.SupportsFunctionCalling, false, &r.NullColumns)
	v.nullableBool("supports_tool_choice", c[13], &r.SupportsToolChoice, false, &r.NullColumns)
	v.nullableBool("supports_parallel_function_calling", c[14], &r.SupportsParallelFunctionCalling, false, &r.NullColumns)
	v.nullableBool("supports_streaming", c[15], &r.SupportsStreaming, true, &r.NullColumns)
	if c[16] != nil {
		if err := json.Unmarshal(c[16], &r.Features); err != nil {
			v.fail("features", c[16], err)
		}
	}
	v.str("availability", c[17], &r.Availability)
	v.optStr(c[18], &r.Version)
	v.optStr(c[19], &r.APIBase)
	v.optStr(c[20], &r.LiteLLMModelID)
	v.optStr(c[21], &r.BackendModelName)
	v.nullableBool("restricted_access", c[22], &r.RestrictedAccess, false, &r.NullColumns)
	r.Metadata = c[23]
	if v.err != nil {
		return r, fmt.Errorf("model %s: %w", r.ID, v.err)
	}
	return r, nil
}

// Applied lists, sorted, the ids that Apply changed; a list is nil when it has none.
type Applied struct {
	Inserted          []string
	Updated           []string
	MarkedUnavailable []string
}

// upsertSQL writes every row in one statement, whatever their number: the rows travel as one JSON array
// parameter and jsonb_to_recordset turns it back into rows, PostgreSQL doing the decoding. Per-row upserts
// pipelined in one round trip would still be one statement per row, on the server and for any tracer; one
// statement keeps Apply at a constant count that benchmarks can hold it to.
//
// The WHERE leaves a row that already holds these values untouched, so its updated_at (set by the backend's
// trigger) keeps telling when it last really changed. features and metadata travel as JSON texts (a JSON
// null would read as SQL NULL, and the text keeps "null" a jsonb null as before); features is rebuilt in its
// original order, which the backend compares. RETURNING tells inserts from updates by xmax, which is 0 only
// on a freshly inserted row version.
const upsertSQL = `
INSERT INTO public.models AS m (id, name, provider, description, category, context_length, max_tokens, tpm, rpm,
	input_cost_per_token, output_cost_per_token, supports_vision, supports_function_calling, supports_tool_choice,
	supports_parallel_function_calling, supports_streaming, features, availability, version, api_base,
	litellm_model_id, backend_model_name, restricted_access, metadata)
SELECT u.id, u.name, u.provider, u.description, u.category, u.context_length, u.max_tokens, u.tpm, u.rpm,
	u.input_cost, u.output_cost, u.vision, u.function_calling, u.tool_choice, u.parallel_function_calling,
	u.streaming,
	CASE WHEN u.features IS NULL THEN NULL ELSE ARRAY(
		SELECT f.value FROM jsonb_array_elements_text(u.features::jsonb) WITH ORDINALITY AS f(value, n) ORDER BY f.n
	) END,
	u.availability, u.version, u.api_base, u.litellm_model_id, u.backend_model_name, u.restricted_access,
	u.metadata::jsonb
FROM jsonb_to_recordset($1::jsonb) AS u(id text, name text, provider text, description text, category text,
	context_length int4, max_tokens int4, tpm int4, rpm int4, input_cost float8, output_cost float8,
	vision bool, function_calling bool, tool_choice bool, parallel_function_calling bool, streaming bool,
	features text, availability text, version text, api_base text, litellm_model_id text,
	backend_model_name text, restricted_access bool, metadata text)
ON CONFLICT (id) DO UPDATE SET
	name = EXCLUDED.name, provider = EXCLUDED.provider, description = EXCLUDED.description,
	category = EXCLUDED.category, context_length = EXCLUDED.context_length, max_tokens = EXCLUDED.max_tokens,
	tpm = EXCLUDED.tpm, rpm = EXCLUDED.rpm, input_cost_per_token = EXCLUDED.input_cost_per_token,
	output_cost_per_token = EXCLUDED.output_cost_per_token, supports_vision = EXCLUDED.supports_vision,
	supports_function_calling = EXCLUDED.supports_function_calling,
	supports_tool_choice = EXCLUDED.supports_tool_choice,
	supports_parallel_function_calling = EXCLUDED.supports_parallel_function_calling,
	supports_streaming = EXCLUDED.supports_streaming, features = EXCLUDED.features,
	availability = EXCLUDED.availability, version = EXCLUDED.version, api_base = EXCLUDED.api_base,
	litellm_model_id = EXCLUDED.litellm_model_id, backend_model_name = EXCLUDED.backend_model_name,
	restricted_access = EXCLUDED.restricted_access, metadata = EXCLUDED.metadata
WHERE (m.name, m.provider, m.description, m.category, m.context_length, m.max_tokens, m.tpm, m.rpm,
	m.input_cost_per_token, m.output_cost_per_token, m.supports_vision, m.supports_function_calling,
	m.supports_tool_choice, m.supports_parallel_function_calling, m.supports_streaming, m.features,
	m.availability, m.version, m.api_base, m.litellm_model_id, m.backend_model_name, m.restricted_access,
	m.metadata)
IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.provider, EXCLUDED.description, EXCLUDED.category,
	EXCLUDED.context_length, EXCLUDED.max_tokens, EXCLUDED.tpm, EXCLUDED.rpm, EXCLUDED.input_cost_per_token,
	EXCLUDED.output_cost_per_token, EXCLUDED.supports_vision, EXCLUDED.supports_function_calling,
	EXCLUDED.supports_tool_choice, EXCLUDED.supports_parallel_function_calling, EXCLUDED.supports_streaming,
	EXCLUDED.features, EXCLUDED.availability, EXCLUDED.version, EXCLUDED.api_base, EXCLUDED.litellm_model_id,
	EXCLUDED.backend_model_name, EXCLUDED.restricted_access, EXCLUDED.metadata)
RETURNING m.id, (m.xmax = 0)`

// markUnavailableSQL skips rows already unavailable so that they, too, keep their updated_at.
const markUnavailableSQL = `
UPDATE public.models SET availability = 'unavailable'
WHERE id IN (SELECT jsonb_array_elements_text($1::jsonb)) AND availability IS DISTINCT FROM 'unavailable'
RETURNING id`

// Apply upserts rows and marks the models in unavailable as unavailable, in one transaction: a cancelled ctx
// (SIGTERM) leaves the database as it was. It never deletes a row (subscriptions reference models) and never
// touches encrypted_api_key or created_at. Ids absent from the table are ignored in unavailable.
//
// A row's nil Features and Metadata are written as NULL; a non-nil empty Features as an empty array.
func (s *Store) Apply(ctx context.Context, upserts []modelsync.Row, unavailable []string) (_ Applied, err error) {
	defer func() { err = s.red.Error(err) }()
	var applied Applied
	if err := validate(upserts, unavailable); err != nil {
		return applied, err
	}
	if len(upserts) == 0 && len(unavailable) == 0 {
		return applied, nil
	}
	param, err := upsertParam(upserts)
	if err != nil {
		return applied, err
	}

	// The write re-takes the advisory lock inside its transaction (pg_advisory_xact_lock): on the session
	// that holds Lock's lock when there is one, where it is granted at once; a session lock lost with its
	// connection (the server restarted) then fails the write instead of letting it run beside another
	// run. Without Lock, the transaction waits for any run holding it.
	s.lockMu.Lock()
	c := s.lockConn
	s.lockMu.Unlock()
	if c == nil {
		var done func()
		if c, done, err = s.conn(ctx); err != nil {
			return Applied{}, fmt.Errorf("writing models: %w", err)
		}
		defer done()
	}
	if _, _, err := s.exec(ctx, c, "BEGIN"); err != nil {
		return Applied{}, fmt.Errorf("writing models: starting a transaction (on the connection holding the litemaas-sync lock): %w", err)
	}
	if _, _, err := s.exec(ctx, c, `SELECT pg_advisory_xact_lock($1::int8)`, lockParam); err != nil {
		s.rollback(c)
		return Applied{}, fmt.Errorf("writing models: re-taking the litemaas-sync lock in the write transaction: %w", err)
	}
	if err := s.applyIn(ctx, c, upserts, param, unavailable, &applied); err != nil {
		s.rollback(c)
		if ctx.Err() != nil {
			return Applied{}, fmt.Errorf("writing models was interrupted and rolled back, nothing was written: %w", ctx.Err())
		}
		return Applied{}, fmt.Errorf("writing models (rolled back, nothing was written): %w", err)
	}
	if ctx.Err() != nil {
		s.rollback(c)
		return Applied{}, fmt.Errorf("writing models was interrupted and rolled back, nothing was written: %w", ctx.Err())
	}
	// Past this point the work is done: a cancellation during COMMIT would leave its outcome unknown, so the
	// COMMIT runs to completion on its own deadline.
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := s.commit(commitCtx, c); err != nil {
		return Applied{}, fmt.Errorf("committing the models (whether it took effect is unknown; the next run converges either way): %w", err)
	}
	slices.Sort(applied.Inserted)
	slices.Sort(applied.Updated)
	slices.Sort(applied.MarkedUnavailable)
	return applied, nil
}

func (s *Store) applyIn(ctx context.Context, c *pgconn.PgConn, upserts []modelsync.Row, param []byte, unavailable []string, applied *Applied) error {
	if len(upserts) > 0 {
		if _, _, err := s.exec(ctx, c, `SAVEPOINT upsert_all`); err != nil {
			return fmt.Errorf("upserting %d models: %w", len(upserts), err)
		}
		err := s.upsert(ctx, c, param, applied)
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && ctx.Err() == nil {
			// PostgreSQL refused a row: find which, row by row, so that the error names the model.
			applied.Inserted, applied.Updated = nil, nil
			if _, _, rerr := s.exec(ctx, c, `ROLLBACK TO SAVEPOINT upsert_all`); rerr != nil {
				return fmt.Errorf("upserting %d models: %w", len(upserts), err)
			}
			for _, r := range upserts {
				one, aerr := upsertParam([]modelsync.Row{r})
				if aerr != nil {
					return aerr
				}
				if err := s.upsert(ctx, c, one, applied); err != nil {
					return fmt.Errorf("upserting model %s%s: %w", r.ID, column(err), err)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("upserting %d models: %w", len(upserts), err)
		}
	}
	if len(unavailable) > 0 {
		param, err := json.Marshal(unavailable)
		if err != nil {
			return fmt.Errorf("marking %d models unavailable: %w", len(unavailable), err)
		}
		res, _, err := s.exec(ctx, c, markUnavailableSQL, param)
		if err != nil {
			return fmt.Errorf("marking %d models unavailable: %w", len(unavailable), err)
		}
		for _, cols := range res {
			applied.MarkedUnavailable = append(applied.MarkedUnavailable, string(cols[0]))
		}
	}
	return nil
}

func (s *Store) upsert(ctx context.Context, c *pgconn.PgConn, param []byte, applied *Applied) error {
	res, _, err := s.exec(ctx, c, upsertSQL, param)
	if err != nil {
		return err
	}
	for _, cols := range res {
		var inserted bool
		var v textValue
		if v.boolean("inserted", cols[1], &inserted); v.err != nil {
			return v.err
		}
		if inserted {
			applied.Inserted = append(applied.Inserted, string(cols[0]))
		} else {
			applied.Updated = append(applied.Updated, string(cols[0]))
		}
	}
	return nil
}

// column names the column or constraint PostgreSQL reported, when it did.
func column(err error) string {
	var pgErr *pgconn.PgError
	switch {
	case !errors.As(err, &pgErr):
	case pgErr.ColumnName != "":
		return ", column " + pgErr.ColumnName
	case pgErr.ConstraintName != "":
		return ", constraint " + pgErr.ConstraintName
	}
	return ""
}

// validate rejects input that PostgreSQL would reject less clearly (a row upserted twice makes ON CONFLICT
// fail) or that contradicts itself.
func validate(upserts []modelsync.Row, unavailable []string) error {
	seen := make(map[string]bool, len(upserts))
	for _, r := range upserts {
		if r.ID == "" {
			return errors.New("a model to write has an empty id")
		}
		if seen[r.ID] {
			return fmt.Errorf("model %q is given twice to write", r.ID)
		}
		seen[r.ID] = true
		if r.Metadata != nil && !json.Valid(r.Metadata) {
			return fmt.Errorf("model %q: metadata is not valid JSON", r.ID)
		}
	}
	for _, id := range unavailable {
		if seen[id] {
			return fmt.Errorf("model %q is both written and marked unavailable: write it with availability %q instead", id, "unavailable")
		}
	}
	return nil
}

// upsertRow is one element of upsertSQL's JSON parameter, named as its recordset's columns. A nil pointer
// is a JSON null, which PostgreSQL reads as NULL.
type upsertRow struct {
	ID                      string   `json:"id"`
	Name                    string   `json:"name"`
	Provider                string   `json:"provider"`
	Description             *string  `json:"description"`
	Category                *string  `json:"category"`
	ContextLength           *int32   `json:"context_length"`
	MaxTokens               *int32   `json:"max_tokens"`
	TPM                     *int32   `json:"tpm"`
	RPM                     *int32   `json:"rpm"`
	InputCost               *float64 `json:"input_cost"`
	OutputCost              *float64 `json:"output_cost"`
	Vision                  bool     `json:"vision"`
	FunctionCalling         bool     `json:"function_calling"`
	ToolChoice              bool     `json:"tool_choice"`
	ParallelFunctionCalling bool     `json:"parallel_function_calling"`
	Streaming               bool     `json:"streaming"`
	Features                *string  `json:"features"`
	Availability            string   `json:"availability"`
	Version                 *string  `json:"version"`
	APIBase                 *string  `json:"api_base"`
	LiteLLMModelID          *string  `json:"litellm_model_id"`
	BackendModelName        *string  `json:"backend_model_name"`
	RestrictedAccess        bool     `json:"restricted_access"`
	Metadata                *string  `json:"metadata"`
}

// upsertParam encodes rows as upsertSQL's parameter. encoding/json writes every float64 in the shortest
// form that reads back exactly, so a cost reaches the float8 column unchanged.
func upsertParam(rows []modelsync.Row) ([]byte, error) {
	out := make([]upsertRow, 0, len(rows))
	for _, r := range rows {
		var f, m *string
		if r.Features != nil {
			b, err := json.Marshal(r.Features)
			if err != nil {
				return nil, fmt.Errorf("model %q: encoding features: %w", r.ID, err)
			}
			f = new(string(b))
		}
		if r.Metadata != nil {
			m = new(string(r.Metadata))
		}
		out = append(out, upsertRow{
			ID: r.ID, Name: r.Name, Provider: r.Provider, Description: r.Description, Category: r.Category,
			ContextLength: r.ContextLength, MaxTokens: r.MaxTokens, TPM: r.TPM, RPM: r.RPM,
			InputCost: r.InputCostPerToken, OutputCost: r.OutputCostPerToken,
			Vision: r.SupportsVision, FunctionCalling: r.SupportsFunctionCalling, ToolChoice: r.SupportsToolChoice,
			ParallelFunctionCalling: r.SupportsParallelFunctionCalling, Streaming: r.SupportsStreaming,
			Features: f, Availability: r.Availability, Version: r.Version, APIBase: r.APIBase,
			LiteLLMModelID: r.LiteLLMModelID, BackendModelName: r.BackendModelName,
			RestrictedAccess: r.RestrictedAccess, Metadata: m,
		})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("encoding the models to write: %w", err)
	}
	return b, nil
}

var (
	// urlUserinfo captures a URL's userinfo; greedy up to the last '@' before the host, since an unescaped
	// password may itself contain '@'.
	urlUserinfo = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*://([^/?#]*)@`)
	// kvPassword captures password and sslpassword values in keyword/value strings and URL queries.
	kvPassword = regexp.MustCompile(`(?:ssl)?password\s*=\s*('(?:[^'\\]|\\.)*'|[^\s&]*)`)
)

// redactSecrets removes from msg every password that connString holds, raw or percent-decoded, for strings
// that failed to parse and so cannot be trusted to split cleanly.
func redactSecrets(msg, connString string) string {
	var secrets []string
	if m := urlUserinfo.FindStringSubmatch(connString); m != nil {
		if _, pw, ok := strings.Cut(m[1], ":"); ok {
			secrets = append(secrets, pw)
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(connString, -1) {
		secrets = append(secrets, m[1], strings.Trim(m[1], "'"))
	}
	for _, s := range slices.Clone(secrets) {
		if dec, err := url.PathUnescape(s); err == nil {
			secrets = append(secrets, dec)
		}
		if dec, err := url.QueryUnescape(s); err == nil {
			secrets = append(secrets, dec)
		}
	}
	return redact.New(secrets...).String(msg)
}
