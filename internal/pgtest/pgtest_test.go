package pgtest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

var srv *pgtest.Server

func TestMain(m *testing.M) {
	srv = pgtest.MustStart(m)
	code := m.Run()
	if err := srv.Stop(); err != nil {
		os.Stderr.WriteString("pgtest: " + err.Error() + "\n")
	}
	os.Exit(code)
}

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func TestNewDatabase(t *testing.T) {
	tests := []struct {
		name       string
		schema     bool
		wantTables []string
	}{
		{name: "empty", schema: false, wantTables: nil},
		{name: "fixture", schema: true, wantTables: []string{"api_key_models", "api_keys", "models", "subscriptions", "users"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := srv.NewDatabase(t, tt.schema)
			assert.Contains(t, url, "sslmode=disable")
			conn := connect(t, url)

			rows, err := conn.Query(context.Background(),
				`SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1`)
			require.NoError(t, err)
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			if tt.wantTables == nil {
				assert.Empty(t, tables)
			} else {
				assert.Equal(t, tt.wantTables, tables)
			}
		})
	}
}

func TestNewDatabaseIsDroppedAtCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		conn := connect(t, srv.NewDatabase(t, false))
		require.NoError(t, conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name))
	})
	conn := connect(t, srv.URL("postgres"))
	var exists bool
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists))
	assert.False(t, exists, "database %s should be dropped when its test ends", name)
}

// The fixture must reproduce what the job has to cope with: oauth_id NOT NULL, the updated_at trigger, the
// subscription foreign key without cascade, and the runbook's rows.
func TestFixtureBehavesLikeTheBackendSchema(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, srv.NewDatabase(t, true))

	_, err := conn.Exec(ctx, `INSERT INTO users (username, email, oauth_provider) VALUES ('kube:admin', 'a@example.com', 'openshift')`)
	require.ErrorContains(t, err, `null value in column "oauth_id"`)

	_, err = conn.Exec(ctx, pgtest.RunbookSQL)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, pgtest.RunbookSQL)
	require.NoError(t, err, "the runbook's INSERT is idempotent")
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM models").Scan(&n))
	assert.Equal(t, 5, n)

	var features []string
	var metadata string
	var restricted bool
	require.NoError(t, conn.QueryRow(ctx,
		`SELECT features, metadata::text, restricted_access FROM models WHERE id = 'devstral-2'`).Scan(&features, &metadata, &restricted))
	assert.Nil(t, features)
	assert.Equal(t, "{}", metadata)
	assert.False(t, restricted)

	var before, after time.Time
	require.NoError(t, conn.QueryRow(ctx, `SELECT updated_at FROM models WHERE id = 'devstral-2'`).Scan(&before))
	require.NoError(t, conn.QueryRow(ctx,
		`UPDATE models SET name = 'Devstral 2' WHERE id = 'devstral-2' RETURNING updated_at`).Scan(&after))
	assert.True(t, after.After(before), "the trigger sets updated_at")

	_, err = conn.Exec(ctx, pgtest.RunbookMigrationSQL)
	require.NoError(t, err)
	var userID string
	require.NoError(t, conn.QueryRow(ctx,
		`INSERT INTO users (username, email, oauth_provider) VALUES ('kube:admin', 'a@example.com', 'openshift') RETURNING id`).Scan(&userID))
	_, err = conn.Exec(ctx, `INSERT INTO subscriptions (user_id, model_id) VALUES ($1, 'devstral-2')`, userID)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `DELETE FROM models WHERE id = 'devstral-2'`)
	require.ErrorContains(t, err, "violates foreign key constraint")
	_, err = conn.Exec(ctx, `INSERT INTO subscriptions (user_id, model_id) VALUES ($1, 'missing')`, userID)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, `Key (model_id)=(missing) is not present in table "models".`, pgErr.Detail)
}

func TestRestartKeepsURLAndData(t *testing.T) {
	if os.Getenv(pgtest.EnvURL) != "" {
		t.Skip("restart needs a throwaway cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	url := srv.NewDatabase(t, true)
	before, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer before.Close(context.Background())
	_, err = before.Exec(ctx, pgtest.RunbookSQL)
	require.NoError(t, err)

	require.NoError(t, srv.Restart(ctx))

	assert.Error(t, before.Ping(ctx), "a restart disconnects clients")
	after := connect(t, url)
	var n int
	require.NoError(t, after.QueryRow(ctx, "SELECT count(*) FROM models").Scan(&n))
	assert.Equal(t, 5, n)
}
