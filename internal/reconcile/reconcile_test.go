package reconcile_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/reconcile"
	"github.com/litemaas-gitops/litemaas-gitops/internal/store"
)

const masterKey = "sk-test-master-key"

var pg *pgtest.Server

func TestMain(m *testing.M) {
	pg = pgtest.MustStart(m)
	code := m.Run()
	_ = pg.Stop()
	os.Exit(code)
}

// stack is one test's LiteLLM double and database.
type stack struct {
	t      *testing.T
	proxy  *litellmtest.Proxy
	llm    *litellm.Client
	db     *store.Store
	url    string
	llmURL string
	out    bytes.Buffer
}

func newStack(t *testing.T, opts ...func(*litellmtest.Options)) *stack {
	t.Helper()
	o := litellmtest.Options{MasterKey: masterKey}
	for _, f := range opts {
		f(&o)
	}
	proxy, srv := litellmtest.NewTestServer(t, o)
	url := pg.NewDatabase(t, true)
	db, err := store.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	return &stack{t: t, proxy: proxy, llm: litellm.New(srv.URL, masterKey), db: db, url: url, llmURL: srv.URL}
}

func loadCatalog(t *testing.T, yaml string) *catalog.Catalog {
	t.Helper()
	if yaml == "" {
		c, err := catalog.Load(filepath.Join("testdata", "models.yaml"))
		require.NoError(t, err)
		return c
	}
	c, err := catalog.Parse("inline.yaml", []byte(yaml))
	require.NoError(t, err)
	return c
}

func (s *stack) options(c *catalog.Catalog) reconcile.Options {
	s.out.Reset()
	return reconcile.Options{
		LiteLLM: s.llm, Store: s.db, Catalog: c, MasterKey: masterKey,
		RetryTimeout: 20 * time.Second, ReadInterval: 20 * time.Millisecond, Out: &s.out,
	}
}

func (s *stack) run(c *catalog.Catalog, mutate ...func(*reconcile.Options)) reconcile.Result {
	s.t.Helper()
	o := s.options(c)
	for _, f := range mutate {
		f(&o)
	}
	res, err := reconcile.Run(context.Background(), o)
	require.NoError(s.t, err, s.out.String())
	return res
}

func (s *stack) query(sql string, args ...any) [][]any {
	s.t.Helper()
	conn, err := pgx.Connect(context.Background(), s.url)
	require.NoError(s.t, err)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), sql, args...)
	require.NoError(s.t, err)
	var out [][]any
	for rows.Next() {
		v, err := rows.Values()
		require.NoError(s.t, err)
		out = append(out, v)
	}
	require.NoError(s.t, rows.Err())
	return out
}

func (s *stack) exec(sql string, args ...any) {
	s.t.Helper()
	conn, err := pgx.Connect(context.Background(), s.url)
	require.NoError(s.t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(context.Background(), sql, args...)
	require.NoError(s.t, err)
}

// byName groups what LiteLLM serves, read as the backend reads it.
func (s *stack) served() map[string][]litellm.Deployment {
	s.t.Helper()
	ds, err := s.llm.ListModels(context.Background())
	require.NoError(s.t, err)
	m := map[string][]litellm.Deployment{}
	for _, d := range ds {
		m[d.ModelName] = append(m[d.ModelName], d)
	}
	return m
}

func (s *stack) rows(ids ...string) map[string]modelsync.Row {
	s.t.Helper()
	if len(ids) == 0 {
		for _, r := range s.query(`SELECT id FROM models`) {
			ids = append(ids, r[0].(string))
		}
	}
	rows, err := s.db.Models(context.Background(), ids)
	require.NoError(s.t, err)
	return rows
}

// assertFixedPoint computes the backend's own sync comparison from LiteLLM's /model/info and the
// rows: nothing may be rewritten at the next backend start, and no row LiteLLM lacks may be available.
func (s *stack) assertFixedPoint() {
	s.t.Helper()
	served := s.served()
	for id, r := range s.rows() {
		ds := served[id]
		if len(ds) == 0 {
			assert.Equal(s.t, "unavailable", r.Availability, "row %s: LiteLLM lacks it, the sync marks it unavailable", id)
			continue
		}
		require.Len(s.t, ds, 1, "exactly one deployment of %s", id)
		assert.Empty(s.t, modelsync.Drift(r, ds[0]), "the backend's sync would rewrite %s", id)
		assert.Empty(s.t, modelsync.StartupDrift(r), "the backend's start-up would change %s", id)
	}
}

func (s *stack) updatedAt() map[string]time.Time {
	m := map[string]time.Time{}
	for _, r := range s.query(`SELECT id, updated_at FROM models`) {
		m[r[0].(string)] = r[1].(time.Time)
	}
	return m
}

func TestFirstRunThenNoop(t *testing.T) {
	s := newStack(t)
	c := loadCatalog(t, "")

	res := s.run(c)
	assert.Equal(t, reconcile.Counts{Created: 5}, res.LiteLLM)
	assert.Equal(t, reconcile.Counts{Created: 5}, res.Database)
	assert.True(t, res.Migrated)

	served := s.served()
	require.Len(t, served, 5)
	for _, id := range c.IDs() {
		require.Len(t, served[id], 1)
		d := served[id][0]
		assert.Equal(t, deploymentIDs(t, c, id)[0], d.ID())
		assert.Equal(t, "none", s.stored(id).LiteLLMParams["api_key"], "without apiKeyEnv LiteLLM gets the runbook's placeholder key")
		assert.Equal(t, reconcile.ManagedBy, d.ModelInfo["managed_by"])
		assert.Equal(t, true, d.ModelInfo["db_model"])
	}
	rows := s.rows()
	require.Len(t, rows, 5)
	dev := rows["devstral-2"]
	assert.Equal(t, "Devstral-2", dev.Name)
	assert.Equal(t, "vLLM", dev.Provider)
	assert.Equal(t, "coding", *dev.Category)
	assert.Equal(t, []string{"function_calling", "parallel_function_calling", "tool_choice", "chat"}, dev.Features)
	assert.InDelta(t, 0.0000006, *dev.OutputCostPerToken, 1e-12)
	assert.EqualValues(t, 131072, *dev.ContextLength)
	assert.Equal(t, "devstral-2", *dev.BackendModelName)
	s.assertFixedPoint()
	before := s.updatedAt()

	// Second run: exactly one LiteLLM request (the read), no write, no row touched.
	s.proxy.Reset()
	res = s.run(c)
	assert.Equal(t, reconcile.Counts{Unchanged: 5}, res.LiteLLM)
	assert.Equal(t, reconcile.Counts{Unchanged: 5}, res.Database)
	assert.False(t, res.Migrated)
	assert.Equal(t, 1, s.proxy.Requests(), s.proxy.Counts())
	assert.Equal(t, 0, s.proxy.Writes())
	assert.Equal(t, before, s.updatedAt())
	assert.Contains(t, res.Summary(), "litellm created=0 updated=0 unchanged=5 deleted=0; database created=0 updated=0 unchanged=5 unavailable=0")
}

// A boolean column stored as NULL by some other writer reads as its default, which can be the wanted
// value (supports_streaming's true, supports_vision's false here): the run still rewrites it, naming
// the columns, and the next run finds nothing to do.
func TestNullBooleansAreRepaired(t *testing.T) {
	s := newStack(t)
	c := loadCatalog(t, "")
	s.run(c)
	s.exec(`UPDATE models SET supports_streaming = NULL, supports_vision = NULL WHERE id = 'devstral-2'`)

	res := s.run(c)
	assert.Equal(t, reconcile.Counts{Updated: 1, Unchanged: 4}, res.Database)
	i := slices.IndexFunc(res.Plan.Database, func(r reconcile.RowChange) bool { return r.Model == "devstral-2" })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, []string{"supports_vision", "supports_streaming"}, res.Plan.Database[i].Fields)
	assert.Equal(t, [][]any{{true, false}}, s.query(`SELECT supports_streaming, supports_vision FROM models WHERE id = 'devstral-2'`))

	res = s.run(c)
	assert.Equal(t, reconcile.Counts{Unchanged: 5}, res.Database)
}

func TestEditModelUpdatesBothSides(t *testing.T) {
	s := newStack(t)
	s.run(loadCatalog(t, ""))
	edited := strings.Replace(readCatalog(t), "contextLength: 131072", "contextLength: 65536", 1)
	edited = strings.Replace(edited, "http://devstral-2-predictor", "http://devstral-2-v2-predictor", 1)
	edited = strings.Replace(edited, "name: Devstral-2\n", "name: Devstral 2 (new)\n", 1)
	s.proxy.Reset()
	res := s.run(loadCatalog(t, edited))
	assert.Equal(t, reconcile.Counts{Updated: 1, Unchanged: 4}, res.LiteLLM)
	assert.Equal(t, reconcile.Counts{Updated: 1, Unchanged: 4}, res.Database)
	assert.Equal(t, 1, s.proxy.Count("POST", "/model/new"), "the new version first")
	assert.Equal(t, 1, s.proxy.Count("POST", "/model/delete"), "then the old one goes")
	assert.Equal(t, 2, s.proxy.Writes(), "and no PATCH, which other replicas would never see")
	d := s.served()["devstral-2"]
	require.Len(t, d, 1)
	assert.Equal(t, "http://devstral-2-v2-predictor.private-ai.svc.cluster.local:8080/v1", d[0].LiteLLMParams["api_base"])
	assert.EqualValues(t, 65536, d[0].ModelInfo["max_tokens"])
	r := s.rows("devstral-2")["devstral-2"]
	assert.Equal(t, "Devstral 2 (new)", r.Name)
	assert.EqualValues(t, 65536, *r.MaxTokens)
	s.assertFixedPoint()
}

func TestRemovedLimitReplacesDeployment(t *testing.T) {
	s := newStack(t)
	s.run(loadCatalog(t, ""))
	old := s.served()["gpt-oss-20b"][0].ID()
	c := loadCatalog(t, strings.Replace(readCatalog(t), "    tpm: 100000\n", "", 1))
	res := s.run(c)
	assert.Equal(t, 1, res.LiteLLM.Updated)
	ds := s.served()["gpt-oss-20b"]
	require.Len(t, ds, 1)
	assert.NotEqual(t, old, ds[0].ID())
	assert.Equal(t, deploymentIDs(t, c, "gpt-oss-20b")[0], ds[0].ID())
	assert.NotContains(t, ds[0].LiteLLMParams, "tpm")
	s.assertFixedPoint()
	// And stable afterwards.
	s.proxy.Reset()
	s.run(loadCatalog(t, strings.Replace(readCatalog(t), "    tpm: 100000\n", "", 1)))
	assert.Equal(t, 0, s.proxy.Writes())
}

// The runbook's SQL (ON CONFLICT DO NOTHING) and its curl loop run twice: duplicates, no model_info.
func TestConvergesFromTheRunbook(t *testing.T) {
	s := newStack(t)
	s.exec(pgtest.RunbookSQL)
	for range 2 {
		for _, id := range []string{"mistral-3-int4", "granite-8b-agent", "mistral-3-bf16", "devstral-2", "gpt-oss-20b"} {
			s.proxy.Seed(litellm.Deployment{ModelName: id, LiteLLMParams: map[string]any{
				"model": "openai/" + id, "api_base": "http://" + id + "-predictor.private-ai.svc.cluster.local:8080/v1", "api_key": "none",
			}})
		}
	}
	// A model the catalog does not list, made by hand: never touched.
	s.proxy.Seed(litellm.Deployment{ModelName: "hand-made", LiteLLMParams: map[string]any{"model": "openai/x", "api_base": "http://x/v1"}})
	require.Len(t, s.proxy.Deployments(), 11)

	res := s.run(loadCatalog(t, ""), func(o *reconcile.Options) { o.Prune = true })
	assert.Equal(t, reconcile.Counts{Created: 5, Deleted: 10}, res.LiteLLM)
	assert.Equal(t, 5, res.Database.Updated)
	served := s.served()
	assert.Len(t, served, 6)
	assert.Len(t, served["hand-made"], 1)
	s.assertFixedPoint()

	s.proxy.Reset()
	res = s.run(loadCatalog(t, ""), func(o *reconcile.Options) { o.Prune = true })
	assert.Equal(t, 0, s.proxy.Writes())
	assert.Equal(t, reconcile.Counts{Unchanged: 5}, res.Database)
}

func TestUnavailableKeepsRowAndSubscriptions(t *testing.T) {
	s := newStack(t)
	s.run(loadCatalog(t, ""))
	s.exec(`INSERT INTO users (username, email, oauth_provider, oauth_id) VALUES ('u', 'u@example.com', 'openshift', NULL)`)
	s.exec(`INSERT INTO subscriptions (user_id, model_id) SELECT id, 'mistral-3-bf16' FROM users`)

	edited := strings.Replace(readCatalog(t), "    contextLength: 32768\n    apiBase: http://mistral-3-bf16", "    contextLength: 32768\n    availability: unavailable\n    apiBase: http://mistral-3-bf16", 1)
	res := s.run(loadCatalog(t, edited))
	assert.Equal(t, 1, res.LiteLLM.Deleted)
	assert.Empty(t, s.served()["mistral-3-bf16"])
	r := s.rows("mistral-3-bf16")["mistral-3-bf16"]
	assert.Equal(t, "unavailable", r.Availability)
	assert.Len(t, s.query(`SELECT 1 FROM subscriptions WHERE model_id = 'mistral-3-bf16'`), 1)
	s.assertFixedPoint()
}

func TestPrune(t *testing.T) {
	s := newStack(t)
	s.run(loadCatalog(t, ""))
	s.exec(`INSERT INTO users (username, email, oauth_provider, oauth_id) VALUES ('u', 'u@example.com', 'openshift', 'uid-1')`)
	s.exec(`INSERT INTO subscriptions (user_id, model_id) SELECT id, 'gpt-oss-20b' FROM users`)
	without := loadCatalog(t, readCatalog(t)[:strings.Index(readCatalog(t), "  - id: gpt-oss-20b")])

	res := s.run(without)
	assert.Len(t, s.served()["gpt-oss-20b"], 1, "without PRUNE a removed model stays")
	assert.Equal(t, 0, res.LiteLLM.Deleted)

	res = s.run(without, func(o *reconcile.Options) { o.Prune = true })
	assert.Equal(t, 1, res.LiteLLM.Deleted)
	assert.Equal(t, 1, res.Database.Unavailable)
	assert.Empty(t, s.served()["gpt-oss-20b"])
	assert.Equal(t, "unavailable", s.rows("gpt-oss-20b")["gpt-oss-20b"].Availability)
	assert.Len(t, s.query(`SELECT 1 FROM subscriptions WHERE model_id = 'gpt-oss-20b'`), 1)
	s.assertFixedPoint()
}

func TestDryRunWritesNothing(t *testing.T) {
	s := newStack(t)
	s.proxy.Seed(litellm.Deployment{ModelName: "devstral-2", LiteLLMParams: map[string]any{"model": "openai/devstral-2", "api_base": "http://old/v1"}})
	c := loadCatalog(t, "")
	res := s.run(c, func(o *reconcile.Options) { o.DryRun = true })
	assert.True(t, res.DryRun)
	assert.Equal(t, 0, s.proxy.Writes())
	assert.Empty(t, s.query(`SELECT id FROM models`))
	assert.Len(t, s.query(`SELECT 1 FROM information_schema.columns WHERE table_name='users' AND column_name='oauth_id' AND is_nullable='NO'`), 1)
	out := s.out.String()
	assert.Contains(t, out, "litellm   create    mistral-3-int4 deployment="+deploymentIDs(t, c, "mistral-3-int4")[0])
	assert.Contains(t, out, "litellm   delete    devstral-2")
	assert.Contains(t, out, "database  insert    devstral-2")
	assert.Contains(t, out, "migration make users.oauth_id nullable")
	assert.Contains(t, res.Summary(), "dry run, nothing written")
	t.Log("\n" + out)
}

func TestFaultsAreRetried(t *testing.T) {
	s := newStack(t)
	s.proxy.SaveOnCreateFailure(2)
	s.proxy.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/new", Status: 429, Times: 2})
	s.proxy.InjectFault(litellmtest.Fault{Method: "GET", Path: "/model/info", Status: 503, Times: 1})
	s.proxy.SetReadLag(0, 2)
	s.run(loadCatalog(t, ""))
	assert.Greater(t, s.proxy.Count("POST", "/model/new"), 5, "failed creates were retried")
	served := s.served()
	assert.Len(t, served, 5)
	for id, ds := range served {
		assert.Len(t, ds, 1, id)
	}
	s.assertFixedPoint()
}

func TestPermanentErrorWritesNoRow(t *testing.T) {
	s := newStack(t)
	o := s.options(loadCatalog(t, ""))
	o.LiteLLM = litellm.New(s.llmURL, "sk-wrong")
	_, err := reconcile.Run(context.Background(), o)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "status 401")
	assert.NotContains(t, err.Error(), "sk-wrong")
	assert.Empty(t, s.query(`SELECT id FROM models`))
}

func TestAPIKeyChangeIsApplied(t *testing.T) {
	s := newStack(t)
	c := loadCatalog(t, "")
	s.run(c, func(o *reconcile.Options) { o.APIKeys = map[string]string{"devstral-2": "key-1"} })
	stored := func() any {
		for _, d := range s.proxy.Deployments() {
			if d.ModelName == "devstral-2" {
				return d.LiteLLMParams["api_key"]
			}
		}
		return nil
	}
	assert.Equal(t, "key-1", stored())
	s.proxy.Reset()
	s.run(c, func(o *reconcile.Options) { o.APIKeys = map[string]string{"devstral-2": "key-1"} })
	assert.Equal(t, 0, s.proxy.Writes())
	res := s.run(c, func(o *reconcile.Options) { o.APIKeys = map[string]string{"devstral-2": "key-2"} })
	assert.Equal(t, 1, res.LiteLLM.Updated)
	assert.Equal(t, "key-2", stored())
	for _, r := range s.query(`SELECT metadata::text FROM models`) {
		assert.NotContains(t, r[0], "key-2", "no API key in the database")
	}
}

func TestEmptyProxyAnswering500(t *testing.T) {
	s := newStack(t, func(o *litellmtest.Options) { o.Version = litellmtest.Version1747 })
	s.run(loadCatalog(t, ""))
	assert.Len(t, s.served(), 5)
}

func TestConcurrentRunsSerialize(t *testing.T) {
	s := newStack(t, func(o *litellmtest.Options) { o.WriteDelay = 20 * time.Millisecond })
	c := loadCatalog(t, "")
	errs := make(chan error, 2)
	o := s.options(c)
	o.Out = nil
	for range 2 {
		go func() {
			_, err := reconcile.Run(context.Background(), o)
			errs <- err
		}()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	ds := s.proxy.Deployments()
	names := make([]string, 0, len(ds))
	for _, d := range ds {
		names = append(names, d.ModelName)
	}
	sort.Strings(names)
	assert.Equal(t, []string{"devstral-2", "gpt-oss-20b", "granite-8b-agent", "mistral-3-bf16", "mistral-3-int4"}, names)
	s.assertFixedPoint()
}

func readCatalog(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join("testdata", "models.yaml"))
	require.NoError(t, err)
	return string(b)
}

// Another LiteLLM worker may answer with the state before the last writes: a run right after another
// then plans creates for deployments that exist. The deterministic ids make those creates fail instead
// of duplicating, and the run converges once the worker catches up.
func TestStaleReadsRightAfterWritesConverge(t *testing.T) {
	s := newStack(t)
	c := loadCatalog(t, "")
	s.proxy.SetReadLag(400*time.Millisecond, 0)
	s.run(c)
	s.run(c)
	s.proxy.SetReadLag(0, 0)
	assert.Len(t, s.proxy.Deployments(), 5, "nothing duplicated")
	s.assertFixedPoint()
}

// A change interrupted between its create and its delete leaves both versions of a model; the next
// run keeps the one the catalog asks for and deletes the other, creating nothing.
func TestInterruptedChangeIsCleanedUp(t *testing.T) {
	edited := strings.Replace(readCatalog(t), "    tpm: 100000\n", "", 1)
	tests := []struct {
		name    string
		catalog string
		keeps   int // index in the two versions [original, edited] of the deployment kept
	}{
		{"the change is finished", edited, 1},
		{"the catalog went back", readCatalog(t), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t)
			s.run(loadCatalog(t, ""))
			before := s.served()["gpt-oss-20b"][0].ID()
			// The delete of the old version fails for good: the run stops after the create.
			s.proxy.InjectFault(litellmtest.Fault{Method: "POST", Path: "/model/delete", Status: 400, Times: 1})
			o := s.options(loadCatalog(t, edited))
			_, err := reconcile.Run(context.Background(), o)
			require.Error(t, err)
			require.Len(t, s.served()["gpt-oss-20b"], 2, "both versions served, no gap")
			after := deploymentIDs(t, loadCatalog(t, edited), "gpt-oss-20b")[0]

			c := loadCatalog(t, tt.catalog)
			s.proxy.Reset()
			res := s.run(c)
			assert.Equal(t, 0, s.proxy.Count("POST", "/model/new"))
			assert.Equal(t, 1, res.LiteLLM.Deleted)
			ds := s.served()["gpt-oss-20b"]
			require.Len(t, ds, 1)
			assert.Equal(t, []string{before, after}[tt.keeps], ds[0].ID())
			s.assertFixedPoint()
			s.proxy.Reset()
			s.run(c)
			assert.Equal(t, 0, s.proxy.Writes(), "stable afterwards")
		})
	}
}

// deploymentIDs are the ids of catalog model id as c describes it, with no API key.
func deploymentIDs(t *testing.T, c *catalog.Catalog, id string) [2]string {
	t.Helper()
	for _, m := range c.Models {
		if m.ID == id {
			return reconcile.DeploymentIDs(m, "", masterKey)
		}
	}
	t.Fatalf("no model %s in the catalog", id)
	return [2]string{}
}

// stored is the deployment of model name as LiteLLM's database holds it, api_key included.
func (s *stack) stored(name string) litellm.Deployment {
	s.t.Helper()
	for _, d := range s.proxy.Deployments() {
		if d.ModelName == name {
			return d
		}
	}
	s.t.Fatalf("LiteLLM holds no deployment of %s", name)
	return litellm.Deployment{}
}

// A run that deleted a pruned model's deployment and stopped before the database step (a PostgreSQL
// restart, SIGTERM): LiteLLM no longer tells of the model, yet the next run marks its row unavailable.
func TestPruneReachesTheDatabaseAfterAnInterruptedRun(t *testing.T) {
	s := newStack(t)
	s.run(loadCatalog(t, ""))
	// A row the job did not make, for a name the catalog does not list: never touched.
	s.exec(`INSERT INTO models (id, name, provider, availability) VALUES ('hand-made', 'x', 'y', 'available')`)
	without := loadCatalog(t, readCatalog(t)[:strings.Index(readCatalog(t), "  - id: gpt-oss-20b")])
	// What the interrupted run left: the deployment gone, the row still available.
	require.NoError(t, s.llm.DeleteModel(context.Background(), s.served()["gpt-oss-20b"][0].ID()))
	require.Equal(t, "available", s.rows("gpt-oss-20b")["gpt-oss-20b"].Availability)

	tests := []struct {
		name        string
		prune       bool
		unavailable int
		want        string
	}{
		{"without PRUNE the row stays", false, 0, "available"},
		{"with PRUNE the row becomes unavailable", true, 1, "unavailable"},
		{"and stays so", true, 0, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.run(without, func(o *reconcile.Options) { o.Prune = tt.prune })
			assert.Equal(t, 0, res.LiteLLM.Deleted)
			assert.Equal(t, tt.unavailable, res.Database.Unavailable)
			assert.Equal(t, tt.want, s.rows("gpt-oss-20b")["gpt-oss-20b"].Availability)
			assert.Equal(t, "available", s.rows("hand-made")["hand-made"].Availability)
		})
	}
}
