package reconcile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/store"
)

// fakeLiteLLM is an in-memory LiteLLM admin API for the plan's edge cases; the behaviour that
// matters against the real API is covered by the tests with the litellmtest double.
type fakeLiteLLM struct {
	mu sync.Mutex
	ds []litellm.Deployment
	// hidden model names are written but never listed, as a replica that never loads them.
	hidden map[string]bool
}

func (f *fakeLiteLLM) ListModels(context.Context) ([]litellm.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []litellm.Deployment
	for _, d := range f.ds {
		if !f.hidden[d.ModelName] {
			out = append(out, d)
		}
	}
	return out, nil
}

func (f *fakeLiteLLM) GetModel(_ context.Context, id string) (litellm.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, d := range f.ds {
		if d.ID() == id {
			return d, nil
		}
	}
	return litellm.Deployment{}, fmt.Errorf("deployment %s: %w", id, litellm.ErrNotFound)
}

func (f *fakeLiteLLM) CreateModel(_ context.Context, d litellm.Deployment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	d = wire(d)
	d.ModelInfo["db_model"] = true
	f.ds = append(f.ds, d)
	return nil
}

func (f *fakeLiteLLM) UpdateModel(_ context.Context, id string, d litellm.Deployment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.ds {
		if f.ds[i].ID() == id {
			f.ds[i] = wire(d)
			return nil
		}
	}
	return litellm.ErrNotFound
}

// DeleteModel answers as LiteLLM does for a deployment it does not have in its database: 400.
func (f *fakeLiteLLM) DeleteModel(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, d := range f.ds {
		if d.ID() == id && !fromConfigFile(d) {
			f.ds = slices.Delete(f.ds, i, i+1)
			return nil
		}
	}
	return &litellm.APIError{Method: "POST", Path: "/model/delete", StatusCode: 400, Body: "Model with id=" + id + " not found in db"}
}

// wire is d as it comes back from the API: through JSON (numbers as float64).
func wire(d litellm.Deployment) litellm.Deployment {
	b, err := json.Marshal(d)
	if err != nil {
		panic(err)
	}
	var out litellm.Deployment
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// fakeStore is an in-memory models table.
type fakeStore struct {
	mu   sync.Mutex
	rows map[string]modelsync.Row
}

func (s *fakeStore) Lock(context.Context) (func(), error)                    { return func() {}, nil }
func (s *fakeStore) OAuthIDNotNull(context.Context) (bool, error)            { return false, nil }
func (s *fakeStore) MigrateOAuthID(context.Context) (bool, error)            { return false, nil }
func (s *fakeStore) ManagedModels(context.Context, string) ([]string, error) { return nil, nil }

func (s *fakeStore) Models(_ context.Context, ids []string) (map[string]modelsync.Row, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]modelsync.Row{}
	for _, id := range ids {
		if r, ok := s.rows[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

func (s *fakeStore) Apply(_ context.Context, upserts []modelsync.Row, unavailable []string) (store.Applied, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a store.Applied
	for _, r := range upserts {
		if _, ok := s.rows[r.ID]; ok {
			a.Updated = append(a.Updated, r.ID)
		} else {
			a.Inserted = append(a.Inserted, r.ID)
		}
		s.rows[r.ID] = r
	}
	for _, id := range unavailable {
		r := s.rows[id]
		r.Availability = catalog.Unavailable
		s.rows[id] = r
		a.MarkedUnavailable = append(a.MarkedUnavailable, id)
	}
	return a, nil
}

const fakeMasterKey = "sk-fake-master-key"

func modelByID(c *catalog.Catalog, id string) catalog.Model {
	for _, m := range c.Models {
		if m.ID == id {
			return m
		}
	}
	panic("no model " + id)
}

func fakeCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Load("testdata/models.yaml")
	require.NoError(t, err)
	return c
}

func fakeRun(t *testing.T, c *catalog.Catalog, llm *fakeLiteLLM, st *fakeStore, prune bool) (Result, error, string) {
	t.Helper()
	var out bytes.Buffer
	res, err := Run(context.Background(), Options{LiteLLM: llm, Store: st, Catalog: c, MasterKey: fakeMasterKey, Prune: prune,
		RetryTimeout: 5 * time.Second, VerifyTimeout: 100 * time.Millisecond, ReadInterval: 10 * time.Millisecond, Out: &out})
	return res, err, out.String()
}

func statusOf(res Result, id string) ModelStatus {
	for _, m := range res.Models {
		if m.ID == id {
			return m
		}
	}
	return ModelStatus{}
}

// ours is the deployment a first run makes for m.
func ours(c *catalog.Catalog, id string) litellm.Deployment {
	m := modelByID(c, id)
	d := wire(desiredDeployment(m, DeploymentIDs(m, "", fakeMasterKey)[0], "", fakeMasterKey))
	d.ModelInfo["db_model"] = true
	return d
}

func TestPlanLiteLLM(t *testing.T) {
	c := fakeCatalog(t)
	all := c.IDs()
	withAll := func(extra ...litellm.Deployment) []litellm.Deployment {
		var ds []litellm.Deployment
		for _, id := range all {
			ds = append(ds, ours(c, id))
		}
		return append(ds, extra...)
	}
	foreign := func(name, id string, dbModel bool) litellm.Deployment {
		return litellm.Deployment{ModelName: name, LiteLLMParams: map[string]any{"model": "openai/" + name}, ModelInfo: map[string]any{"id": id, "db_model": dbModel}}
	}
	edited := ours(c, "devstral-2")
	edited.LiteLLMParams = maps.Clone(edited.LiteLLMParams)
	edited.LiteLLMParams["api_base"] = "http://elsewhere/v1"
	leftover := ours(c, "devstral-2")
	leftover.ModelName = "retired"
	leftover.ModelInfo = maps.Clone(leftover.ModelInfo)
	leftover.ModelInfo["id"] = "retired-id"

	tests := []struct {
		name    string
		current []litellm.Deployment
		prune   bool
		// want maps "action model" to how many steps of it; models not named are unchanged.
		want    map[string]int
		blocked []string
		pruned  []string
	}{
		{name: "empty LiteLLM", want: map[string]int{"create *": len(all)}},
		{name: "already right", current: withAll()},
		{name: "runbook duplicate not made by the job", current: withAll(foreign("devstral-2", "runbook-1", true)),
			want: map[string]int{"delete devstral-2": 1}},
		{name: "config-file deployment under a catalog name", current: withAll(foreign("devstral-2", "cfg-1", false)),
			want: map[string]int{"blocked devstral-2": 1}, blocked: []string{"devstral-2"}},
		{name: "edited by hand", current: append(withAll()[:3], append([]litellm.Deployment{edited}, withAll()[4:]...)...),
			want: map[string]int{"replace devstral-2": 1}},
		{name: "removed from the catalog, no prune", current: withAll(leftover), want: map[string]int{"keep retired": 1}},
		{name: "removed from the catalog, prune", current: withAll(leftover), prune: true,
			want: map[string]int{"delete retired": 1}, pruned: []string{"retired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, "devstral-2", all[3], "the cases index the catalog")
			p := planLiteLLM(c, tt.current, nil, fakeMasterKey, tt.prune)
			got := map[string]int{}
			for _, s := range p.Steps {
				if s.Action == Unchanged {
					continue
				}
				key := string(s.Action) + " " + s.Model
				if s.Action == Create && tt.want["create *"] > 0 {
					key = "create *"
				}
				got[key]++
			}
			want := tt.want
			if want == nil {
				want = map[string]int{}
			}
			assert.Equal(t, want, got)
			assert.ElementsMatch(t, tt.blocked, slices.Collect(maps.Keys(p.blocked)))
			for _, err := range p.blocked {
				assert.ErrorContains(t, err, "defined in LiteLLM's config file")
			}
			assert.ElementsMatch(t, tt.pruned, p.pruned)
			for _, m := range c.Models {
				if m.Served() && p.blocked[m.ID] == nil {
					assert.Contains(t, p.chosen, m.ID, "every served model ends with one deployment")
				}
			}
		})
	}
}

func TestRowDiff(t *testing.T) {
	c := fakeCatalog(t)
	m := modelByID(c, "devstral-2")
	base := desiredRow(m, ours(c, "devstral-2"))
	f := func(v float64) *float64 { return &v }
	s := func(v string) *string { return &v }
	tests := []struct {
		name string
		edit func(r *modelsync.Row)
		want []string
	}{
		{"same", func(*modelsync.Row) {}, nil},
		{"name", func(r *modelsync.Row) { r.Name = "x" }, []string{"name"}},
		{"cost below the column's precision", func(r *modelsync.Row) { r.InputCostPerToken = f(*base.InputCostPerToken + 1e-12) }, nil},
		{"cost one unit of the last decimal", func(r *modelsync.Row) { r.InputCostPerToken = f(*base.InputCostPerToken + 1e-10) }, []string{"input_cost_per_token"}},
		{"NULL description", func(r *modelsync.Row) { r.Description = nil }, []string{"description"}},
		{"api_base", func(r *modelsync.Row) { r.APIBase = s("http://x/v1") }, []string{"api_base"}},
		{"metadata reordered is the same", func(r *modelsync.Row) { r.Metadata = reorderJSON(t, r.Metadata) }, nil},
		{"features reordered differ", func(r *modelsync.Row) { r.Features = append([]string{"x"}, r.Features...) }, []string{"features"}},
		{"availability and tpm", func(r *modelsync.Row) { r.Availability = "unavailable"; v := int32(5); r.TPM = &v }, []string{"tpm", "availability"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := base
			got.Features = slices.Clone(base.Features)
			tt.edit(&got)
			assert.Equal(t, tt.want, RowDiff(base, got))
		})
	}
}

func reorderJSON(t *testing.T, b []byte) []byte {
	t.Helper()
	s := strings.TrimSpace(string(b))
	require.True(t, strings.HasPrefix(s, "{"), "metadata is a JSON object")
	// PostgreSQL's jsonb text form: a space after each separator.
	return []byte(strings.ReplaceAll(strings.ReplaceAll(s, `":`, `": `), `,"`, `, "`))
}

func TestFakesFirstRunThenNoop(t *testing.T) {
	c := fakeCatalog(t)
	llm, st := &fakeLiteLLM{}, &fakeStore{rows: map[string]modelsync.Row{}}
	res, err, _ := fakeRun(t, c, llm, st, false)
	require.NoError(t, err)
	assert.Equal(t, len(c.Models), res.Database.Created)
	res, err, _ = fakeRun(t, c, llm, st, false)
	require.NoError(t, err)
	assert.Zero(t, res.LiteLLM.Created+res.LiteLLM.Updated+res.LiteLLM.Deleted)
	assert.Equal(t, len(c.Models), res.Database.Unchanged)
}

// What the re-read after writing finds wrong is filed under its model, not under a pseudo-model:
// models.json then shows that model failed and the others fine.
func TestVerifyProblemIsFiledUnderItsModel(t *testing.T) {
	c := fakeCatalog(t)
	llm, st := &fakeLiteLLM{hidden: map[string]bool{"devstral-2": true}}, &fakeStore{rows: map[string]modelsync.Row{}}
	res, err, _ := fakeRun(t, c, llm, st, false)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "(verify)")
	assert.Contains(t, err.Error(), "devstral-2: after ")
	assert.Contains(t, statusOf(res, "devstral-2").Error, "LiteLLM still does not show what was written: 0 deployments, want 1")
	assert.Equal(t, "not written", statusOf(res, "devstral-2").Database)
	for _, m := range res.Models {
		if m.ID != "devstral-2" {
			assert.Empty(t, m.Error, m.ID)
		}
	}
	_, ok := st.rows["devstral-2"]
	assert.False(t, ok, "no row for a model LiteLLM does not show")
	assert.Len(t, st.rows, len(c.Models)-1)
}

// A deployment of LiteLLM's config file under a catalog name cannot be deleted through the API; the
// run says so for that model instead of failing verify forever without a cause.
func TestConfigFileDeploymentIsNamed(t *testing.T) {
	c := fakeCatalog(t)
	cfg := litellm.Deployment{ModelName: "devstral-2", LiteLLMParams: map[string]any{"model": "openai/devstral"}, ModelInfo: map[string]any{"id": "from-config", "db_model": false}}
	llm, st := &fakeLiteLLM{ds: []litellm.Deployment{cfg}}, &fakeStore{rows: map[string]modelsync.Row{}}

	// The plan names it.
	var out bytes.Buffer
	_, err := Run(context.Background(), Options{LiteLLM: llm, Store: st, Catalog: c, MasterKey: fakeMasterKey, DryRun: true, Out: &out})
	require.NoError(t, err)
	assert.Contains(t, out.String(), "litellm   blocked   devstral-2 deployment=from-config (defined in LiteLLM's config file: remove it there)")

	res, err, _ := fakeRun(t, c, llm, st, false)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "devstral-2: deployment from-config is defined in LiteLLM's config file")
	assert.Contains(t, statusOf(res, "devstral-2").Error, "remove it from LiteLLM's config file")
	for _, m := range res.Models {
		if m.ID != "devstral-2" {
			assert.Empty(t, m.Error, m.ID)
		}
	}
	assert.Equal(t, 1, res.Passes, "not retried: waiting cannot remove it")
}
