package store

import (
	"context"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/redact"
)

var srv *pgtest.Server

func TestMain(m *testing.M) {
	srv = pgtest.MustStart(m)
	code := m.Run()
	if err := srv.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "store tests:", err)
	}
	os.Exit(code)
}

// recorder is a Tracer that records the SQL of every statement and can act when one ends.
type recorder struct {
	mu    sync.Mutex
	sqls  []string
	onEnd func(sql string)
}

type sqlKey struct{}

func (r *recorder) TraceStatementStart(ctx context.Context, sql string) context.Context {
	r.mu.Lock()
	r.sqls = append(r.sqls, sql)
	r.mu.Unlock()
	return context.WithValue(ctx, sqlKey{}, sql)
}

func (r *recorder) TraceStatementEnd(ctx context.Context, _ error) {
	r.mu.Lock()
	onEnd := r.onEnd
	r.mu.Unlock()
	if onEnd != nil {
		onEnd(ctx.Value(sqlKey{}).(string))
	}
}

// take returns the statements recorded since the last call, each reduced to its first word.
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var verbs []string
	for _, sql := range r.sqls {
		verbs = append(verbs, strings.ToUpper(strings.Fields(sql)[0]))
	}
	r.sqls = nil
	return verbs
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openStore(t *testing.T, url string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opts...)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(testContext(t), url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func mustExec(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	_, err := conn.Exec(testContext(t), sql, args...)
	require.NoError(t, err)
}

func updatedAt(t *testing.T, conn *pgx.Conn) map[string]time.Time {
	t.Helper()
	rows, err := conn.Query(testContext(t), `SELECT id, updated_at FROM models`)
	require.NoError(t, err)
	out := map[string]time.Time{}
	var id string
	var at time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &at}, func() error { out[id] = at; return nil })
	require.NoError(t, err)
	return out
}

// chatRow is a row as the job writes it for a chat-only model.
func chatRow(id string) modelsync.Row {
	return modelsync.Row{
		ID:                id,
		Name:              "Model " + id,
		Provider:          "vLLM",
		Description:       new("description of " + id),
		Category:          new("chat"),
		ContextLength:     new(int32(16384)),
		MaxTokens:         new(int32(16384)),
		SupportsStreaming: true,
		Features:          []string{"chat"},
		Availability:      "available",
		Version:           new("1.0"),
		APIBase:           new("http://" + id + "-predictor.private-ai.svc.cluster.local:8080/v1"),
		LiteLLMModelID:    new("litellm-" + id),
		BackendModelName:  new(id),
		Metadata:          []byte(`{"litellm_params": {"model": "openai/` + id + `"}}`),
	}
}

func TestCheckReady(t *testing.T) {
	tests := []struct {
		name    string
		schema  bool
		setup   string
		wantErr string
	}{
		{name: "no tables", wantErr: "tables public.users and public.models do not exist yet: the LiteMaaS backend creates them at start-up; is the backend running with its database?"},
		{name: "models missing", setup: `CREATE TABLE users (id uuid)`, wantErr: "table public.models does not exist yet: the LiteMaaS backend creates it at start-up; is the backend running with its database?"},
		{name: "users missing", setup: `CREATE TABLE models (id text)`, wantErr: "table public.users does not exist yet"},
		{name: "tables in another schema only", setup: `CREATE SCHEMA other; CREATE TABLE other.users (id uuid); CREATE TABLE other.models (id text)`, wantErr: "tables public.users and public.models do not exist yet"},
		{name: "backend schema", schema: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := srv.NewDatabase(t, tt.schema)
			if tt.setup != "" {
				mustExec(t, connect(t, url), tt.setup)
			}
			err := openStore(t, url).CheckReady(testContext(t))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestCheckReadyUnreachableServerHidesPassword(t *testing.T) {
	t.Parallel()
	// A port from a listener that is closed at once: nothing answers there.
	s := openStore(t, "postgres://litemaas:hunter2-s3cret@127.0.0.1:1/litemaas_db?sslmode=disable&connect_timeout=2")
	err := s.CheckReady(testContext(t))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot query the LiteMaaS database")
	assert.NotContains(t, err.Error(), "hunter2")
}

func TestOpenRedactsPasswordFromParseErrors(t *testing.T) {
	tests := []struct {
		name   string
		url    string
		secret string
	}{
		{name: "bad port", url: "postgres://litemaas:pw-Secret1@db:notaport/litemaas_db", secret: "pw-Secret1"},
		{name: "port out of range", url: "postgres://litemaas:pw-Secret2@db:99999/litemaas_db", secret: "pw-Secret2"},
		{name: "bad sslmode", url: "postgres://litemaas:pw-Secret3@db/litemaas_db?sslmode=sometimes", secret: "pw-Secret3"},
		{name: "unescaped at sign", url: "postgres://litemaas:pw@Secret4@db:x/litemaas_db", secret: "pw@Secret4"},
		{name: "percent-encoded", url: "postgres://litemaas:pw%2FSecret5@db:x/litemaas_db", secret: "pw/Secret5"},
		{name: "bad percent escape", url: "postgres://litemaas:pw%zzSecret6@db/litemaas_db", secret: "Secret6"},
		{name: "password in query", url: "postgres://litemaas@db:x/litemaas_db?password=pw-Secret7", secret: "pw-Secret7"},
		{name: "keyword/value", url: "host=db port=x user=litemaas password=pw-Secret8", secret: "pw-Secret8"},
		{name: "keyword/value quoted", url: "host=db port=x user=litemaas password='pw Secret9'", secret: "Secret9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(context.Background(), tt.url)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "invalid database URL")
			assert.NotContains(t, err.Error(), tt.secret)
		})
	}
}

func TestOpenRejectsEmptyURL(t *testing.T) {
	_, err := Open(context.Background(), " ")
	require.ErrorContains(t, err, "the database URL is empty")
}

// The password is kept out of errors by the project's one redactor, which leaves a 1-character
// password alone inside other words (it used to turn "dial tcp" into "dial tcxxxxx").
func TestShortPasswordDoesNotGarbleErrors(t *testing.T) {
	s, err := Open(context.Background(), "postgres://u:p@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	defer s.Close()
	err = s.CheckReady(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "dial tcp")
	assert.NotContains(t, err.Error(), redact.Mark)
	assert.True(t, IsTransient(err), "the chain is kept: %v", err)
}

func TestMigrateOAuthID(t *testing.T) {
	tests := []struct {
		name        string
		setup       string
		wantChanged bool
		wantSQL     []string
	}{
		{name: "NOT NULL as the backend creates it", wantChanged: true, wantSQL: []string{"SELECT", "BEGIN", "SET", "ALTER", "COMMIT"}},
		{name: "already nullable (runbook migration)", setup: pgtest.RunbookMigrationSQL, wantChanged: false, wantSQL: []string{"SELECT"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			url := srv.NewDatabase(t, true)
			conn := connect(t, url)
			if tt.setup != "" {
				mustExec(t, conn, tt.setup)
			}
			rec := &recorder{}
			s := openStore(t, url, WithTracer(rec))

			changed, err := s.MigrateOAuthID(ctx)
			require.NoError(t, err)
			assert.Equal(t, tt.wantChanged, changed)
			assert.Equal(t, tt.wantSQL, rec.take())

			var nullable string
			require.NoError(t, conn.QueryRow(ctx, `SELECT is_nullable FROM information_schema.columns
				WHERE table_name = 'users' AND column_name = 'oauth_id'`).Scan(&nullable))
			assert.Equal(t, "YES", nullable)
			// kube:admin has no uid: its login inserts a NULL oauth_id.
			mustExec(t, conn, `INSERT INTO users (username, email, oauth_provider) VALUES ('kube:admin', 'kubeadmin@example.com', 'openshift')`)

			changed, err = s.MigrateOAuthID(ctx)
			require.NoError(t, err)
			assert.False(t, changed, "a second run finds the column nullable")
			assert.Equal(t, []string{"SELECT"}, rec.take(), "no ALTER when already nullable")
		})
	}
}

func TestMigrateOAuthIDGivesUpOnLockedTable(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	blocker := connect(t, url)
	tx, err := blocker.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(ctx, `SELECT count(*) FROM users`) // holds a lock that conflicts with ALTER TABLE
	require.NoError(t, err)

	s := openStore(t, url)
	s.lockTimeout = 200 * time.Millisecond
	start := time.Now()
	changed, err := s.MigrateOAuthID(ctx)
	require.Error(t, err)
	assert.False(t, changed)
	assert.Contains(t, err.Error(), "table users stayed locked for 200ms")
	assert.Less(t, time.Since(start), 5*time.Second)

	require.NoError(t, tx.Rollback(ctx))
	changed, err = s.MigrateOAuthID(ctx)
	require.NoError(t, err)
	assert.True(t, changed)
}

func TestMigrateOAuthIDWithoutSchema(t *testing.T) {
	t.Parallel()
	_, err := openStore(t, srv.NewDatabase(t, false)).MigrateOAuthID(testContext(t))
	require.ErrorContains(t, err, "column public.users.oauth_id does not exist")
}

// A role that does not own users cannot make oauth_id nullable: the error says so, whether or not the
// role may read the table (information_schema would hide the column from a role without privileges).
func TestMigrateOAuthIDNeedsTheTablesOwner(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	admin := connect(t, url)
	for _, tc := range []struct {
		name, grant string
	}{
		{"no privilege on users", ""},
		{"may read users", "GRANT SELECT ON public.users TO %s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := neturl.Parse(url)
			require.NoError(t, err)
			// Roles are per server: name them after this test's database, so that re-runs against a
			// kept server (TEST_DATABASE_URL) do not collide.
			db := strings.TrimPrefix(u.Path, "/")
			role := "not_owner_" + db[strings.LastIndex(db, "_")+1:] + "_" + strings.ReplaceAll(tc.name, " ", "_")
			t.Cleanup(func() {
				_, _ = admin.Exec(context.Background(), fmt.Sprintf("REVOKE ALL ON public.users FROM %s", role))
				_, _ = admin.Exec(context.Background(), fmt.Sprintf("DROP ROLE IF EXISTS %s", role))
			})
			_, err = admin.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD 'not-owner-pw'", role))
			require.NoError(t, err)
			if tc.grant != "" {
				_, err = admin.Exec(ctx, fmt.Sprintf(tc.grant, role))
				require.NoError(t, err)
			}
			u.User = neturl.UserPassword(role, "not-owner-pw")
			changed, err := openStore(t, u.String()).MigrateOAuthID(ctx)
			require.Error(t, err)
			assert.False(t, changed)
			assert.Contains(t, err.Error(), "only the owner of public.users")
			assert.Contains(t, err.Error(), "the job connects as "+role)
			assert.NotContains(t, err.Error(), "not-owner-pw")
		})
	}
}

func TestApplyCreateUpdateNoop(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	conn := connect(t, url)
	rec := &recorder{}
	s := openStore(t, url, WithTracer(rec))
	rows := []modelsync.Row{chatRow("b-model"), chatRow("a-model")}

	applied, err := s.Apply(ctx, rows, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{Inserted: []string{"a-model", "b-model"}}, applied)
	assert.Equal(t, []string{"BEGIN", "SELECT", "SAVEPOINT", "INSERT", "COMMIT"}, rec.take())
	created := updatedAt(t, conn)

	applied, err = s.Apply(ctx, rows, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{}, applied, "the same rows again change nothing")
	assert.Equal(t, created, updatedAt(t, conn), "an identical row keeps its updated_at")

	rows[0].Name = "B renamed"
	rows[0].Features = []string{"function_calling", "chat"}
	applied, err = s.Apply(ctx, rows, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{Updated: []string{"b-model"}}, applied)
	after := updatedAt(t, conn)
	assert.Equal(t, created["a-model"], after["a-model"])
	assert.True(t, after["b-model"].After(created["b-model"]))

	got, err := s.Models(ctx, []string{"a-model", "b-model"})
	require.NoError(t, err)
	assert.Equal(t, "B renamed", got["b-model"].Name)
	assert.Equal(t, []string{"function_calling", "chat"}, got["b-model"].Features)
}

// The job's first run meets the runbook's rows: it must complete them without touching what it does not own.
func TestApplyOverRunbookRows(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	conn := connect(t, url)
	mustExec(t, conn, pgtest.RunbookSQL)
	mustExec(t, conn, `UPDATE models SET encrypted_api_key = 'enc:abc' WHERE id = 'devstral-2'`)
	var createdBefore time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT created_at FROM models WHERE id = 'devstral-2'`).Scan(&createdBefore))

	s := openStore(t, url)
	row := chatRow("devstral-2")
	applied, err := s.Apply(ctx, []modelsync.Row{row, chatRow("new-model")}, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{Inserted: []string{"new-model"}, Updated: []string{"devstral-2"}}, applied)

	var key string
	var createdAfter time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT encrypted_api_key, created_at FROM models WHERE id = 'devstral-2'`).Scan(&key, &createdAfter))
	assert.Equal(t, "enc:abc", key)
	assert.Equal(t, createdBefore, createdAfter)

	got, err := s.Models(ctx, []string{"devstral-2", "gpt-oss-20b", "absent"})
	require.NoError(t, err)
	require.Len(t, got, 2, "ids without a row are absent from the map")
	assertRowEqual(t, row, got["devstral-2"])
	assert.Equal(t, "GPT-OSS-20B", got["gpt-oss-20b"].Name, "rows not given are left alone")
	assert.Nil(t, got["gpt-oss-20b"].Features)
}

// Models reads a NULL boolean as its default and names it, and Apply still sees the NULL and repairs it:
// the backend's sync would otherwise rewrite the row.
func TestApplyRepairsNullBooleans(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	s := openStore(t, url)
	row := chatRow("m")
	_, err := s.Apply(ctx, []modelsync.Row{row}, nil)
	require.NoError(t, err)
	mustExec(t, connect(t, url), `UPDATE models SET supports_vision = NULL, restricted_access = NULL`)

	got, err := s.Models(ctx, []string{"m"})
	require.NoError(t, err)
	assert.Equal(t, []string{"supports_vision", "restricted_access"}, got["m"].NullColumns, "the NULLs are named")
	read := got["m"]
	read.NullColumns = nil
	assertRowEqual(t, row, read)
	applied, err := s.Apply(ctx, []modelsync.Row{row}, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{Updated: []string{"m"}}, applied)
	got, err = s.Models(ctx, []string{"m"})
	require.NoError(t, err)
	assert.Nil(t, got["m"].NullColumns, "repaired")
}

func TestMarkUnavailableKeepsRowAndSubscription(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	conn := connect(t, url)
	mustExec(t, conn, pgtest.RunbookSQL)
	mustExec(t, conn, pgtest.RunbookMigrationSQL)
	var userID, keyID string
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO users (username, email, oauth_provider)
		VALUES ('alice', 'alice@example.com', 'openshift') RETURNING id`).Scan(&userID))
	mustExec(t, conn, `INSERT INTO subscriptions (user_id, model_id) VALUES ($1, 'gpt-oss-20b')`, userID)
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO api_keys (user_id, name, key_hash)
		VALUES ($1, 'k', 'hash') RETURNING id`, userID).Scan(&keyID))
	mustExec(t, conn, `INSERT INTO api_key_models (api_key_id, model_id) VALUES ($1, 'gpt-oss-20b')`, keyID)

	rec := &recorder{}
	s := openStore(t, url, WithTracer(rec))
	applied, err := s.Apply(ctx, nil, []string{"gpt-oss-20b", "not-in-table"})
	require.NoError(t, err)
	assert.Equal(t, Applied{MarkedUnavailable: []string{"gpt-oss-20b"}}, applied)
	assert.Equal(t, []string{"BEGIN", "SELECT", "UPDATE", "COMMIT"}, rec.take())

	var availability, status string
	var links int
	require.NoError(t, conn.QueryRow(ctx, `SELECT availability FROM models WHERE id = 'gpt-oss-20b'`).Scan(&availability))
	require.NoError(t, conn.QueryRow(ctx, `SELECT status FROM subscriptions WHERE model_id = 'gpt-oss-20b'`).Scan(&status))
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM api_key_models WHERE model_id = 'gpt-oss-20b'`).Scan(&links))
	assert.Equal(t, "unavailable", availability)
	assert.Equal(t, "active", status)
	assert.Equal(t, 1, links)

	before := updatedAt(t, conn)
	applied, err = s.Apply(ctx, nil, []string{"gpt-oss-20b"})
	require.NoError(t, err)
	assert.Equal(t, Applied{}, applied, "already unavailable")
	assert.Equal(t, before, updatedAt(t, conn))
}

func TestApplyStatementCountIsConstant(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	rec := &recorder{}
	s := openStore(t, srv.NewDatabase(t, true), WithTracer(rec))
	var rows []modelsync.Row
	var gone []string
	for i := range 200 {
		rows = append(rows, chatRow(fmt.Sprintf("model-%03d", i)))
		gone = append(gone, fmt.Sprintf("gone-%03d", i))
	}
	applied, err := s.Apply(ctx, rows, gone)
	require.NoError(t, err)
	assert.Len(t, applied.Inserted, 200)
	assert.Equal(t, []string{"BEGIN", "SELECT", "SAVEPOINT", "INSERT", "UPDATE", "COMMIT"}, rec.take(), "the lock re-taken, one statement per kind of change")

	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	got, err := s.Models(ctx, ids)
	require.NoError(t, err)
	assert.Len(t, got, 200)
	assert.Equal(t, []string{"SELECT"}, rec.take())

	_, err = s.Apply(ctx, nil, nil)
	require.NoError(t, err)
	_, err = s.Models(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, rec.take(), "nothing to do, no statement")
}

func TestApplyRejectsContradictoryInput(t *testing.T) {
	tests := []struct {
		name        string
		upserts     []modelsync.Row
		unavailable []string
		wantErr     string
	}{
		{name: "duplicate id", upserts: []modelsync.Row{chatRow("a"), chatRow("a")}, wantErr: `model "a" is given twice`},
		{name: "written and unavailable", upserts: []modelsync.Row{chatRow("a")}, unavailable: []string{"a"}, wantErr: `model "a" is both written and marked unavailable`},
		{name: "empty id", upserts: []modelsync.Row{chatRow("")}, wantErr: "empty id"},
		{name: "bad metadata", upserts: []modelsync.Row{func() modelsync.Row { r := chatRow("a"); r.Metadata = []byte("{"); return r }()}, wantErr: "metadata is not valid JSON"},
	}
	s := openStore(t, srv.NewDatabase(t, true))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Apply(testContext(t), tt.upserts, tt.unavailable)
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestRoundTripEveryColumn(t *testing.T) {
	t.Parallel()
	full := modelsync.Row{
		ID:                              "full",
		Name:                            "Full Model",
		Provider:                        "vLLM",
		Description:                     new("every column set"),
		Category:                        new("coding"),
		ContextLength:                   new(int32(131072)),
		MaxTokens:                       new(int32(8192)),
		TPM:                             new(int32(100000)),
		RPM:                             new(int32(60)),
		InputCostPerToken:               new(1.234e-7),
		OutputCostPerToken:              new(0.0000025),
		SupportsVision:                  true,
		SupportsFunctionCalling:         true,
		SupportsToolChoice:              true,
		SupportsParallelFunctionCalling: true,
		SupportsStreaming:               true,
		// The backend compares this order: it must survive as written.
		Features:         []string{"function_calling", "parallel_function_calling", "tool_choice", "vision", "chat", "tokenize"},
		Availability:     "available",
		Version:          new("1.0"),
		APIBase:          new("http://full-predictor.private-ai.svc.cluster.local:8080/v1"),
		LiteLLMModelID:   new("0b6d8e1c-6f8e-4c36-9a3b-0e1b8f1f2a11"),
		BackendModelName: new("full"),
		RestrictedAccess: true,
		Metadata:         []byte(`{"litellm_params":{"model":"openai/full","tpm":100000},"litellm_model_info":{"id":"x","max_tokens":8192,"supports_vision":true},"tags":["a","b"]}`),
	}
	nulls := modelsync.Row{ID: "nulls", Name: "Nulls", Provider: "vLLM", Availability: "unavailable"}
	emptyFeatures := modelsync.Row{ID: "empty-features", Name: "Empty", Provider: "vLLM", Availability: "available",
		Features: []string{}, Metadata: []byte(`{}`), InputCostPerToken: new(0.0), OutputCostPerToken: new(99999.9999999999)}

	ctx := testContext(t)
	s := openStore(t, srv.NewDatabase(t, true))
	_, err := s.Apply(ctx, []modelsync.Row{full, nulls, emptyFeatures}, nil)
	require.NoError(t, err)
	got, err := s.Models(ctx, []string{"full", "nulls", "empty-features"})
	require.NoError(t, err)
	for _, want := range []modelsync.Row{full, nulls, emptyFeatures} {
		t.Run(want.ID, func(t *testing.T) {
			assertRowEqual(t, want, got[want.ID])
		})
	}
	assert.NotNil(t, got["empty-features"].Features, "an empty array is not NULL")
	assert.Nil(t, got["nulls"].Features)
	assert.Nil(t, got["nulls"].Metadata)

	applied, err := s.Apply(ctx, []modelsync.Row{full, nulls, emptyFeatures}, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{}, applied, "rows read back compare equal in SQL too (NULLs, costs, jsonb)")
}

func TestCostsAreRoundedToTheColumnScale(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := openStore(t, srv.NewDatabase(t, true))
	row := chatRow("priced")
	row.InputCostPerToken = new(1.23456789012345e-7)
	_, err := s.Apply(ctx, []modelsync.Row{row}, nil)
	require.NoError(t, err)
	got, err := s.Models(ctx, []string{"priced"})
	require.NoError(t, err)
	assert.Equal(t, 1.235e-7, *got["priced"].InputCostPerToken, "decimal(15,10) keeps 10 decimals")

	applied, err := s.Apply(ctx, []modelsync.Row{row}, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{}, applied, "compared after rounding, so no rewrite at every run")
}

func assertRowEqual(t *testing.T, want, got modelsync.Row) {
	t.Helper()
	wantMeta, gotMeta := want.Metadata, got.Metadata
	want.Metadata, got.Metadata = nil, nil
	assert.Equal(t, want, got)
	if wantMeta == nil {
		assert.Nil(t, gotMeta)
	} else {
		assert.JSONEq(t, string(wantMeta), string(gotMeta))
	}
}

func TestLockSerializesTwoJobs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, false)
	first, second := openStore(t, url), openStore(t, url)

	release1, err := first.Lock(ctx)
	require.NoError(t, err)

	acquired := make(chan func(), 1)
	go func() {
		release2, err := second.Lock(ctx)
		assert.NoError(t, err)
		acquired <- release2
	}()
	select {
	case <-acquired:
		t.Fatal("the second job took the lock while the first held it")
	case <-time.After(300 * time.Millisecond):
	}

	release1()
	release1() // harmless
	select {
	case release2 := <-acquired:
		require.NotNil(t, release2)
		release2()
	case <-time.After(5 * time.Second):
		t.Fatal("the second job did not get the lock after the first released it")
	}
}

// A failed upsert names the model PostgreSQL refused, and writes nothing.
func TestApplyNamesTheModelARowFailsOn(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	conn := connect(t, url)
	mustExec(t, conn, `ALTER TABLE models ADD CONSTRAINT name_not_bad CHECK (name <> 'bad')`)
	s := openStore(t, url)
	bad := chatRow("model-b")
	bad.Name = "bad"
	_, err := s.Apply(ctx, []modelsync.Row{chatRow("model-a"), bad, chatRow("model-c")}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "upserting model model-b, constraint name_not_bad:")
	var n int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM models`).Scan(&n))
	assert.Zero(t, n, "nothing written")
}

// The write re-takes the lock in its transaction: with the session lock lost (its connection gone, as
// when the server restarts) and another run holding it, the write waits instead of running beside it;
// on the session that holds it, it is granted at once.
func TestApplyRetakesTheLock(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	first, second := openStore(t, url), openStore(t, url)

	release, err := first.Lock(ctx)
	require.NoError(t, err)
	_, err = first.Apply(ctx, []modelsync.Row{chatRow("model-a")}, nil)
	require.NoError(t, err, "granted at once on the session holding the lock")

	// The first run's lock connection dies; the second run takes the lock.
	admin := connect(t, url)
	var pid int
	require.NoError(t, admin.QueryRow(ctx, `SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
		WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`).Scan(&pid))
	mustExec(t, admin, `SELECT pg_terminate_backend($1)`, pid)
	require.Eventually(t, func() bool {
		var n int
		_ = admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, pid).Scan(&n)
		return n == 0
	}, 5*time.Second, 20*time.Millisecond)
	release2, err := second.Lock(ctx)
	require.NoError(t, err)
	defer release2()

	_, err = first.Apply(ctx, []modelsync.Row{chatRow("model-b")}, nil)
	require.Error(t, err, "the first run's write fails: its lock is gone")
	release()
	// Without a lock of its own, a write waits for the run that holds it.
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err = first.Apply(wctx, []modelsync.Row{chatRow("model-b")}, nil)
	require.Error(t, err, "waited for the second run's lock")
	got, err := first.Models(ctx, []string{"model-b"})
	require.NoError(t, err)
	assert.Empty(t, got, "nothing written beside the run holding the lock")
}

func TestLockGivesUpWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, false)
	holder, waiter := openStore(t, url), openStore(t, url)
	release, err := holder.Lock(ctx)
	require.NoError(t, err)

	waitCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = waiter.Lock(waitCtx)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "another run holds it")
	assert.Less(t, time.Since(start), 2*time.Second, "a cancelled wait returns promptly")

	// The abandoned wait must not linger on the server, where it would take the lock once free.
	conn := connect(t, url)
	assert.Eventually(t, func() bool {
		var waiting int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting)
		return err == nil && waiting == 0
	}, 3*time.Second, 50*time.Millisecond)

	release()
	quick, cancelQuick := context.WithTimeout(ctx, 2*time.Second)
	defer cancelQuick()
	release2, err := waiter.Lock(quick)
	require.NoError(t, err)
	release2()
}

// A SIGTERM between the statements of Apply: the INSERT has run, the COMMIT never comes.
func TestApplyCancelledBetweenStatementsWritesNothing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	url := srv.NewDatabase(t, true)
	rec := &recorder{onEnd: func(sql string) {
		if strings.Contains(sql, "INSERT INTO public.models") {
			cancel()
		}
	}}
	s := openStore(t, url, WithTracer(rec))

	_, err := s.Apply(ctx, []modelsync.Row{chatRow("a"), chatRow("b")}, []string{"c"})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "nothing was written")

	var n int
	require.NoError(t, connect(t, url).QueryRow(testContext(t), `SELECT count(*) FROM models`).Scan(&n))
	assert.Zero(t, n)
}

// A SIGTERM while the INSERT itself waits (here on a row another transaction locked).
func TestApplyCancelledMidStatementWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	blocker := connect(t, url)
	mustExec(t, blocker, pgtest.RunbookSQL)
	tx, err := blocker.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(ctx, `SELECT 1 FROM models WHERE id = 'devstral-2' FOR UPDATE`)
	require.NoError(t, err)

	s := openStore(t, url)
	applyCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Apply(applyCtx, []modelsync.Row{chatRow("new-model"), chatRow("devstral-2")}, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 3*time.Second)
	require.NoError(t, tx.Rollback(ctx))

	conn := connect(t, url)
	assert.Eventually(t, func() bool {
		var running int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = 'litemaas-sync' AND state <> 'idle'`).Scan(&running)
		return err == nil && running == 0
	}, 3*time.Second, 50*time.Millisecond, "the server-side statement was cancelled too")
	var n int
	var name string
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM models WHERE id = 'new-model'`).Scan(&n))
	require.NoError(t, conn.QueryRow(ctx, `SELECT name FROM models WHERE id = 'devstral-2'`).Scan(&name))
	assert.Zero(t, n)
	assert.Equal(t, "Devstral-2", name)
}

// The store must work again after PostgreSQL restarted under it, as it can during a run.
func TestStoreRecoversAfterServerRestart(t *testing.T) {
	if os.Getenv(pgtest.EnvURL) != "" {
		t.Skip("restart needs a throwaway cluster")
	}
	// Not parallel: the restart disconnects every test's sessions.
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	s := openStore(t, url)
	_, err := s.Apply(ctx, []modelsync.Row{chatRow("a")}, nil)
	require.NoError(t, err)

	require.NoError(t, srv.Restart(ctx))

	// The pool's old connection is dead; pgx discards it and the next call may fail once.
	require.Eventually(t, func() bool { return s.CheckReady(ctx) == nil }, 10*time.Second, 100*time.Millisecond)
	applied, err := s.Apply(ctx, []modelsync.Row{chatRow("a"), chatRow("b")}, nil)
	require.NoError(t, err)
	assert.Equal(t, Applied{Inserted: []string{"b"}}, applied)
}

func TestLockKeyIsStable(t *testing.T) {
	// Changing the key would let an old and a new version of the job run at once.
	assert.Equal(t, int64(1625175312986367079), lockKey)
}

// The readiness probe polls beside the rest of the run: concurrent calls take turns on the store's
// connection instead of failing on a connection that is busy.
func TestConcurrentCallsTakeTurns(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := openStore(t, srv.NewDatabase(t, true))
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 10 {
		wg.Go(func() { errs <- s.CheckReady(ctx) })
		wg.Go(func() {
			_, err := s.Apply(ctx, []modelsync.Row{chatRow(fmt.Sprintf("m%d", i))}, nil)
			errs <- err
		})
		wg.Go(func() {
			_, err := s.Models(ctx, []string{"m0", "m1"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.Models(ctx, []string{"m0", "m9", "absent"})
	require.NoError(t, err)
	assert.Len(t, got, 2)
}

func TestClosedStoreRefusesCalls(t *testing.T) {
	t.Parallel()
	s, err := Open(context.Background(), srv.NewDatabase(t, true))
	require.NoError(t, err)
	require.NoError(t, s.CheckReady(testContext(t)))
	s.Close()
	assert.ErrorIs(t, s.CheckReady(testContext(t)), errClosed)
	_, err = s.Apply(testContext(t), []modelsync.Row{chatRow("a")}, nil)
	assert.ErrorIs(t, err, errClosed)
}

// Costs are read back in float8's text form. With fewer digits than exact (a database or URL setting
// extra_float_digits below 1), a cost would read back rounded, differ from the catalog's, and be
// rewritten at every run; the store sets the digits itself.
func TestCostsReadBackExactlyWhateverTheServersFloatDigits(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	url := srv.NewDatabase(t, true)
	conn := connect(t, url)
	var db string
	require.NoError(t, conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db))
	mustExec(t, conn, fmt.Sprintf(`ALTER DATABASE %q SET extra_float_digits = -10`, db))
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for _, u := range []string{url, url + sep + "extra_float_digits=-12"} {
		s := openStore(t, u)
		row := chatRow("priced")
		row.InputCostPerToken, row.OutputCostPerToken = new(1.235e-7), new(12345.6789012345)
		_, err := s.Apply(ctx, []modelsync.Row{row}, nil)
		require.NoError(t, err)
		got, err := s.Models(ctx, []string{"priced"})
		require.NoError(t, err)
		assert.Equal(t, 1.235e-7, *got["priced"].InputCostPerToken)
		assert.Equal(t, 12345.6789012345, *got["priced"].OutputCostPerToken)
		applied, err := s.Apply(ctx, []modelsync.Row{row}, nil)
		require.NoError(t, err)
		assert.Equal(t, Applied{}, applied, "the second write finds the row as it is")
	}
}
