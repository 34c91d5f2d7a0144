// Package store reads and writes the LiteMaaS backend's database (litemaas_db) for litemaas-sync.
//
// The backend owns the schema: this package never creates tables, and alters only users.oauth_id. Every write
// is a fixed point: writing a row that is already there changes nothing, not even updated_at.
//
// SQL statements per call, as counted by a pgx.QueryTracer (BEGIN and COMMIT included):
//
//	CheckReady      1
//	MigrateOAuthID  1 when oauth_id is already nullable; 5 when it alters (SELECT, BEGIN, SET LOCAL, ALTER, COMMIT)
//	Lock            1 to acquire (after its own connect), 1 more at release
//	Models          1, whatever the number of ids
//	Apply           at most 4, whatever the number of rows (BEGIN, INSERT, UPDATE, COMMIT); 0 when given nothing
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
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"

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
	maxConns       = 4
	connectTimeout = 10 * time.Second
)

// lockKey is the advisory lock key of litemaas-sync: the first 8 bytes of SHA-256("litemaas-sync"), fixed so
// that every version of the job serializes with every other.
var lockKey = func() int64 {
	sum := sha256.Sum256([]byte("litemaas-sync"))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}()

type config struct {
	tracer pgx.QueryTracer
}

// Option changes how Open sets the store up.
type Option func(*config)

// WithTracer traces every SQL statement, on the pool and on the lock's connection.
func WithTracer(t pgx.QueryTracer) Option {
	return func(c *config) { c.tracer = t }
}

// Store is the job's handle on the backend database. It is safe for concurrent use.
type Store struct {
	pool        *pgxpool.Pool
	connCfg     *pgx.ConnConfig
	red         *redact.Redactor // the password, kept out of every error
	lockTimeout time.Duration

	// lockConn is the connection holding the session lock Lock took, nil when none is held. Apply
	// writes on it, so that its transaction re-takes the lock on the session that holds it.
	lockMu   sync.Mutex
	lockConn *pgx.Conn
}

// Open parses url and creates a connection pool. It does not wait for the server: connections are made on
// first use, and CheckReady tells whether the database is usable.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("the database URL is empty: set it to the LiteMaaS backend's database, e.g. postgres://user:password@host:5432/litemaas_db?sslmode=disable")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password only on a best-effort basis, and its wrapped causes may quote the URL:
		// rebuild the message without any secret and drop the chain, which still holds the original string.
		return nil, errors.New("invalid database URL: " + redactSecrets(err.Error(), url))
	}
	cfg.MaxConns = maxConns
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "litemaas-sync"
	}
	// pgx's default reacts to a cancelled context by cutting the connection, which leaves the server-side
	// statement running (a lock wait, for instance) until it next writes to the socket. Asking the server to
	// cancel it first ends it at once, so a SIGTERM mid-Apply rolls back immediately and an abandoned Lock
	// wait does not grab the lock later.
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: cancelDeadline}
	}
	cfg.ConnConfig.Tracer = c.tracer

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the database connection pool: %w", redact.New(cfg.ConnConfig.Password).Error(err))
	}
	return &Store{pool: pool, connCfg: cfg.ConnConfig.Copy(), red: redact.New(cfg.ConnConfig.Password), lockTimeout: lockTimeout}, nil
}

// Close closes every pooled connection. Locks taken with Lock are held on their own connections: release them.
func (s *Store) Close() {
	s.pool.Close()
}

// CheckReady tells whether the backend has set up its database. A backend that could not reach its database at
// start-up runs without it yet reports ready, so the tables themselves are checked.
func (s *Store) CheckReady(ctx context.Context) (err error) {
	defer func() { err = s.red.Error(err) }()
	var users, models bool
	err = s.pool.QueryRow(ctx,
		`SELECT to_regclass('public.users') IS NOT NULL, to_regclass('public.models') IS NOT NULL`).Scan(&users, &models)
	if err != nil {
		return fmt.Errorf("cannot query the LiteMaaS database: %w", err)
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
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// SET takes no parameters; the value is an integer of milliseconds, not user input.
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", s.lockTimeout.Milliseconds())); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `ALTER TABLE public.users ALTER COLUMN oauth_id DROP NOT NULL`)
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

// Lock takes litemaas-sync's session-level advisory lock, so that two runs started at once (a re-sync during a
// sync) take turns. It waits until the lock is free or ctx ends. The lock lives on a connection of its own,
// outside the pool, until release is called; release may be called more than once. If that connection is lost
// (the server restarts), the server drops the lock with it.
func (s *Store) Lock(ctx context.Context) (release func(), err error) {
	defer func() { err = s.red.Error(err) }()
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return nil, fmt.Errorf("connecting to take the litemaas-sync lock: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, lockKey); err != nil {
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
			_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, lockKey)
			closeConn(conn)
		})
	}, nil
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// modelColumns are the columns the job writes, in modelsync.Row's order. Costs are read as float8: the
// column is decimal(15,10), and Row holds float64.
const modelColumns = `id, name, provider, description, category, context_length, max_tokens, tpm, rpm,
	input_cost_per_token::float8, output_cost_per_token::float8,
	COALESCE(supports_vision, false), COALESCE(supports_function_calling, false), COALESCE(supports_tool_choice, false),
	COALESCE(supports_parallel_function_calling, false), COALESCE(supports_streaming, true),
	features, COALESCE(availability, ''), version, api_base, litellm_model_id, backend_model_name,
	COALESCE(restricted_access, false), metadata`

// Models reads the rows with these ids; ids without a row are absent from the map.
//
// The boolean columns are nullable but Row's fields are not: a NULL reads as the column's default. Apply
// compares with the stored NULL, not with that default, so it still rewrites such a row. A NULL availability
// reads as "". Metadata comes back in PostgreSQL's jsonb text form (keys reordered, spaces added): compare it
// as JSON, not as bytes.
func (s *Store) Models(ctx context.Context, ids []string) (_ map[string]modelsync.Row, err error) {
	defer func() { err = s.red.Error(err) }()
	out := make(map[string]modelsync.Row, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+modelColumns+` FROM public.models WHERE id = ANY($1::text[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("reading models: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r modelsync.Row
		if err := rows.Scan(&r.ID, &r.Name, &r.Provider, &r.Description, &r.Category,
			&r.ContextLength, &r.MaxTokens, &r.TPM, &r.RPM, &r.InputCostPerToken, &r.OutputCostPerToken,
			&r.SupportsVision, &r.SupportsFunctionCalling, &r.SupportsToolChoice,
			&r.SupportsParallelFunctionCalling, &r.SupportsStreaming,
			&r.Features, &r.Availability, &r.Version, &r.APIBase, &r.LiteLLMModelID, &r.BackendModelName,
			&r.RestrictedAccess, &r.Metadata); err != nil {
			return nil, fmt.Errorf("reading models: %w", err)
		}
		out[r.ID] = r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading models: %w", err)
	}
	return out, nil
}

// Applied lists, sorted, the ids that Apply changed; a list is nil when it has none.
type Applied struct {
	Inserted          []string
	Updated           []string
	MarkedUnavailable []string
}

// upsertSQL writes every row in one statement, whatever their number: each column travels as one array
// parameter and unnest turns the arrays back into rows. A pgx.Batch of per-row upserts would also take one
// round trip, but it is still one statement per row, on the server and for any tracer; one statement keeps
// Apply at a constant count that benchmarks can hold it to.
//
// The WHERE leaves a row that already holds these values untouched, so its updated_at (set by the backend's
// trigger) keeps telling when it last really changed. features is the one column that cannot travel as an
// array, since unnest would flatten a text[][]: each row's array goes as a JSON text and is rebuilt in its
// original order, which the backend compares. RETURNING tells inserts from updates by xmax, which is 0 only on
// a freshly inserted row version.
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
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::int4[], $8::int4[],
	$9::int4[], $10::float8[], $11::float8[], $12::bool[], $13::bool[], $14::bool[], $15::bool[], $16::bool[],
	$17::text[], $18::text[], $19::text[], $20::text[], $21::text[], $22::text[], $23::bool[], $24::text[])
	AS u(id, name, provider, description, category, context_length, max_tokens, tpm, rpm, input_cost,
	output_cost, vision, function_calling, tool_choice, parallel_function_calling, streaming, features,
	availability, version, api_base, litellm_model_id, backend_model_name, restricted_access, metadata)
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
WHERE id = ANY($1::text[]) AND availability IS DISTINCT FROM 'unavailable'
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
	args, err := upsertArgs(upserts)
	if err != nil {
		return applied, err
	}

	// The write re-takes the advisory lock inside its transaction (pg_advisory_xact_lock): on the session
	// that holds Lock's lock when there is one, where it is granted at once; a session lock lost with its
	// connection (the server restarted) then fails the write instead of letting it run beside another
	// run. Without Lock, the transaction waits for any run holding it.
	s.lockMu.Lock()
	conn := s.lockConn
	s.lockMu.Unlock()
	var tx pgx.Tx
	if conn != nil {
		tx, err = conn.Begin(ctx)
	} else {
		tx, err = s.pool.Begin(ctx)
	}
	if err != nil {
		return Applied{}, fmt.Errorf("writing models: starting a transaction (on the connection holding the litemaas-sync lock): %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey); err != nil {
		rollback(tx)
		return Applied{}, fmt.Errorf("writing models: re-taking the litemaas-sync lock in the write transaction: %w", err)
	}
	if err := s.applyIn(ctx, tx, upserts, args, unavailable, &applied); err != nil {
		rollback(tx)
		if ctx.Err() != nil {
			return Applied{}, fmt.Errorf("writing models was interrupted and rolled back, nothing was written: %w", ctx.Err())
		}
		return Applied{}, fmt.Errorf("writing models (rolled back, nothing was written): %w", err)
	}
	if ctx.Err() != nil {
		rollback(tx)
		return Applied{}, fmt.Errorf("writing models was interrupted and rolled back, nothing was written: %w", ctx.Err())
	}
	// Past this point the work is done: a cancellation during COMMIT would leave its outcome unknown, so the
	// COMMIT runs to completion on its own deadline.
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := tx.Commit(commitCtx); err != nil {
		return Applied{}, fmt.Errorf("committing the models (whether it took effect is unknown; the next run converges either way): %w", err)
	}
	slices.Sort(applied.Inserted)
	slices.Sort(applied.Updated)
	slices.Sort(applied.MarkedUnavailable)
	return applied, nil
}

func (s *Store) applyIn(ctx context.Context, tx pgx.Tx, upserts []modelsync.Row, args []any, unavailable []string, applied *Applied) error {
	if len(upserts) > 0 {
		if _, err := tx.Exec(ctx, `SAVEPOINT upsert_all`); err != nil {
			return fmt.Errorf("upserting %d models: %w", len(upserts), err)
		}
		err := upsert(ctx, tx, args, applied)
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && ctx.Err() == nil {
			// PostgreSQL refused a row: find which, row by row, so that the error names the model.
			applied.Inserted, applied.Updated = nil, nil
			if _, rerr := tx.Exec(ctx, `ROLLBACK TO SAVEPOINT upsert_all`); rerr != nil {
				return fmt.Errorf("upserting %d models: %w", len(upserts), err)
			}
			for _, r := range upserts {
				one, aerr := upsertArgs([]modelsync.Row{r})
				if aerr != nil {
					return aerr
				}
				if err := upsert(ctx, tx, one, applied); err != nil {
					return fmt.Errorf("upserting model %s%s: %w", r.ID, column(err), err)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("upserting %d models: %w", len(upserts), err)
		}
	}
	if len(unavailable) > 0 {
		rows, err := tx.Query(ctx, markUnavailableSQL, unavailable)
		if err != nil {
			return fmt.Errorf("marking %d models unavailable: %w", len(unavailable), err)
		}
		var id string
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			applied.MarkedUnavailable = append(applied.MarkedUnavailable, id)
			return nil
		})
		if err != nil {
			return fmt.Errorf("marking %d models unavailable: %w", len(unavailable), err)
		}
	}
	return nil
}

func upsert(ctx context.Context, tx pgx.Tx, args []any, applied *Applied) error {
	rows, err := tx.Query(ctx, upsertSQL, args...)
	if err != nil {
		return err
	}
	var id string
	var inserted bool
	_, err = pgx.ForEachRow(rows, []any{&id, &inserted}, func() error {
		if inserted {
			applied.Inserted = append(applied.Inserted, id)
		} else {
			applied.Updated = append(applied.Updated, id)
		}
		return nil
	})
	return err
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

// rollback runs on a fresh context: the caller's may be the one that was cancelled. Should it fail, pgx
// closes the connection, and the server rolls back when the connection goes.
func rollback(tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tx.Rollback(ctx)
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

// upsertArgs turns rows into the 24 column arrays of upsertSQL.
func upsertArgs(rows []modelsync.Row) ([]any, error) {
	var (
		ids, names, providers, availability                               []string
		descriptions, categories, versions, apiBases, litellmIDs, backend []*string
		features, metadata                                                []*string
		contextLengths, maxTokens, tpms, rpms                             []*int32
		inputCosts, outputCosts                                           []*float64
		vision, functionCalling, toolChoice, parallel, streaming, restr   []bool
	)
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
		ids, names, providers = append(ids, r.ID), append(names, r.Name), append(providers, r.Provider)
		descriptions, categories = append(descriptions, r.Description), append(categories, r.Category)
		contextLengths, maxTokens = append(contextLengths, r.ContextLength), append(maxTokens, r.MaxTokens)
		tpms, rpms = append(tpms, r.TPM), append(rpms, r.RPM)
		inputCosts, outputCosts = append(inputCosts, r.InputCostPerToken), append(outputCosts, r.OutputCostPerToken)
		vision = append(vision, r.SupportsVision)
		functionCalling = append(functionCalling, r.SupportsFunctionCalling)
		toolChoice = append(toolChoice, r.SupportsToolChoice)
		parallel = append(parallel, r.SupportsParallelFunctionCalling)
		streaming = append(streaming, r.SupportsStreaming)
		features, availability = append(features, f), append(availability, r.Availability)
		versions, apiBases = append(versions, r.Version), append(apiBases, r.APIBase)
		litellmIDs, backend = append(litellmIDs, r.LiteLLMModelID), append(backend, r.BackendModelName)
		restr, metadata = append(restr, r.RestrictedAccess), append(metadata, m)
	}
	return []any{ids, names, providers, descriptions, categories, contextLengths, maxTokens, tpms, rpms,
		inputCosts, outputCosts, vision, functionCalling, toolChoice, parallel, streaming, features, availability,
		versions, apiBases, litellmIDs, backend, restr, metadata}, nil
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
