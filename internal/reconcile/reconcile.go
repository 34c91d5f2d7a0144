// Package reconcile brings LiteLLM and the LiteMaaS database in line with the models catalog:
// LiteLLM first (the backend marks any database model that LiteLLM lacks as unavailable, with its
// subscriptions), the database second, both idempotently, under an advisory lock.
package reconcile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/fault"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/modelsync"
	"github.com/litemaas-gitops/litemaas-gitops/internal/store"
)

// LiteLLM is the part of the LiteLLM admin API the reconcile uses.
type LiteLLM interface {
	ListModels(ctx context.Context) ([]litellm.Deployment, error)
	GetModel(ctx context.Context, id string) (litellm.Deployment, error)
	CreateModel(ctx context.Context, d litellm.Deployment) error
	UpdateModel(ctx context.Context, id string, d litellm.Deployment) error
	DeleteModel(ctx context.Context, id string) error
}

// Store is the part of the backend database the reconcile uses.
type Store interface {
	Lock(ctx context.Context) (release func(), err error)
	OAuthIDNotNull(ctx context.Context) (bool, error)
	MigrateOAuthID(ctx context.Context) (changed bool, err error)
	Models(ctx context.Context, ids []string) (map[string]modelsync.Row, error)
	// ManagedModels lists the ids of the rows not yet unavailable that carry the job's marker.
	ManagedModels(ctx context.Context, marker string) ([]string, error)
	Apply(ctx context.Context, upserts []modelsync.Row, unavailable []string) (store.Applied, error)
}

// Options configure one reconcile.
type Options struct {
	LiteLLM   LiteLLM
	Store     Store
	Catalog   *catalog.Catalog
	MasterKey string
	// APIKeys maps catalog ids to their API keys (resolved from apiKeyEnv by the caller).
	APIKeys map[string]string
	DryRun  bool
	Prune   bool
	// Concurrency bounds parallel LiteLLM writes: LiteLLM encrypts and stores each one, and a large
	// catalog written one by one would take minutes.
	Concurrency int
	// RetryTimeout is one deadline for the whole run, every retried operation and pass included:
	// a LiteLLM that fails everything ends the run after RetryTimeout, whatever the catalog's size.
	RetryTimeout time.Duration
	// VerifyTimeout bounds the re-reads after writing that cover LiteLLM's read-after-write lag: other
	// workers and replicas load new models on their next database poll (10 s in v1.74.7, 30 s from
	// v1.79.1). ReadInterval is the pause between two reads.
	VerifyTimeout time.Duration
	ReadInterval  time.Duration
	Logger        *slog.Logger
	// Out receives the plan (in a dry run) or the changes made.
	Out io.Writer

	// deadlineCause is the error a run's deadline gives, set by Run.
	deadlineCause error
}

// Counts of one side of a run.
type Counts struct {
	Created, Updated, Unchanged, Deleted, Unavailable int
}

// Result is what a run did, over all its passes, and the state it left.
type Result struct {
	Plan Plan
	// LiteLLM and Database count the changes every pass of the run made; Unchanged counts what the
	// last pass found right and no earlier pass had changed.
	LiteLLM  Counts
	Database Counts
	Migrated bool
	DryRun   bool
	// Failed is set when the run ended in an error; the counts then say what it did before.
	Failed bool
	// Passes is how many passes the run made (a transient failure starts a new one).
	Passes int
	// Models is the state of each catalog model after the run, for the status the job publishes.
	// It is set whenever the catalog was loaded, also when the run failed.
	Models []ModelStatus

	// changed and unchanged name the models (LiteLLM side) and rows a pass changed or found right,
	// so that passes add up without counting a model twice.
	changed, unchanged, rowsChanged, rowsUnchanged []string
}

// ModelStatus is one catalog model after a run.
type ModelStatus struct {
	ID                 string `json:"id"`
	Catalog            string `json:"catalog"`
	LiteLLMDeployments int    `json:"litellmDeployments"`
	DeploymentID       string `json:"deploymentId,omitempty"`
	Database           string `json:"database"`
	Error              string `json:"error,omitempty"`
}

// Summary is the one-line outcome printed at the end and written to the termination log.
func (r Result) Summary() string {
	prefix := "done"
	switch {
	case r.DryRun:
		prefix = "dry run, nothing written"
	case r.Failed:
		prefix = "failed"
	}
	migration := "oauth_id already nullable"
	switch {
	case r.Migrated && r.DryRun:
		migration = "oauth_id would be made nullable"
	case r.Migrated:
		migration = "oauth_id made nullable"
	}
	return fmt.Sprintf("%s: litellm created=%d updated=%d unchanged=%d deleted=%d; database created=%d updated=%d unchanged=%d unavailable=%d; %s",
		prefix, r.LiteLLM.Created, r.LiteLLM.Updated, r.LiteLLM.Unchanged, r.LiteLLM.Deleted,
		r.Database.Created, r.Database.Updated, r.Database.Unchanged, r.Database.Unavailable, migration)
}

func (o *Options) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.RetryTimeout <= 0 {
		o.RetryTimeout = 5 * time.Minute
	}
	if o.VerifyTimeout > o.RetryTimeout {
		o.VerifyTimeout = o.RetryTimeout
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 45 * time.Second
	}
	if o.ReadInterval <= 0 {
		o.ReadInterval = 500 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// Run reconciles once. A pass that fails on something transient (a database restart, LiteLLM
// unreachable) is repeated from the start: every pass re-reads both sides, so repeating one is
// always safe. RetryTimeout is the deadline of the whole run. The result adds up every pass and,
// also on failure, says what state each catalog model was left in.
func Run(ctx context.Context, o Options) (Result, error) {
	o.defaults()
	o.deadlineCause = fmt.Errorf("RETRY_TIMEOUT (%s) reached: the run's deadline", o.RetryTimeout)
	ctx, cancel := context.WithTimeoutCause(ctx, o.RetryTimeout, o.deadlineCause)
	defer cancel()
	deadline, _ := ctx.Deadline()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 500 * time.Millisecond
	b.MaxInterval = 10 * time.Second
	b.MaxElapsedTime = 0 // the run's deadline bounds the passes
	var passes []Result
	var last error
	err := backoff.RetryNotify(func() error {
		r, err := pass(ctx, o)
		passes = append(passes, r)
		last = err
		if err == nil {
			return nil
		}
		if ctx.Err() != nil || !transient(err) || time.Until(deadline) < dbReserve(o) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		o.Logger.Warn("reconcile pass failed, starting again", "attempt", len(passes), "retry_in", wait.Round(time.Millisecond), "error", err)
	})
	if err != nil && ctx.Err() != nil {
		cause := context.Cause(ctx)
		switch {
		case last != nil && !errors.Is(last, ctx.Err()):
			err = fmt.Errorf("%w (then gave up: %w)", last, cause)
		case !errors.Is(err, cause):
			err = fmt.Errorf("%w: %w", err, cause)
		}
	}
	res := merge(o.Catalog, passes, err)
	return res, err
}

// merge adds the passes up: the changes of every pass, the state of the last one that got that far.
func merge(c *catalog.Catalog, passes []Result, err error) Result {
	var res Result
	if len(passes) > 0 {
		res = passes[len(passes)-1]
	}
	res.Passes = len(passes)
	res.Failed = err != nil
	res.LiteLLM, res.Database = Counts{}, Counts{}
	changed, rowsChanged := map[string]bool{}, map[string]bool{}
	for _, p := range passes {
		res.Migrated = res.Migrated || p.Migrated
		add(&res.LiteLLM, p.LiteLLM)
		add(&res.Database, p.Database)
		for _, id := range p.changed {
			changed[id] = true
		}
		for _, id := range p.rowsChanged {
			rowsChanged[id] = true
		}
	}
	for _, id := range res.unchanged {
		if !changed[id] {
			res.LiteLLM.Unchanged++
		}
	}
	for _, id := range res.rowsUnchanged {
		if !rowsChanged[id] {
			res.Database.Unchanged++
		}
	}
	if res.Models == nil && c != nil {
		// The last pass failed before it knew the state: say so for every model, with the state an
		// earlier pass left when there was one.
		var earlier []ModelStatus
		for _, p := range passes {
			if p.Models != nil {
				earlier = p.Models
			}
		}
		res.Models = unknownStatuses(c, earlier, err)
	}
	return res
}

// NotRun is the result of a run that failed before reconciling anything (e.g. the stack never became
// ready): nothing written, every catalog model named with the reason.
func NotRun(c *catalog.Catalog, err error) Result {
	return merge(c, nil, err)
}

func add(total *Counts, c Counts) {
	total.Created += c.Created
	total.Updated += c.Updated
	total.Deleted += c.Deleted
	total.Unavailable += c.Unavailable
}

func unknownStatuses(c *catalog.Catalog, earlier []ModelStatus, err error) []ModelStatus {
	prev := map[string]ModelStatus{}
	for _, m := range earlier {
		prev[m.ID] = m
	}
	msg := "not reconciled"
	if err != nil {
		msg = "not reconciled: " + err.Error()
	}
	out := make([]ModelStatus, 0, len(c.Models))
	for _, m := range c.Models {
		st, ok := prev[m.ID]
		if !ok {
			st = ModelStatus{ID: m.ID, Catalog: m.Availability, LiteLLMDeployments: -1, Database: "not written"}
		}
		if st.Error == "" {
			st.Error = msg
		}
		out = append(out, st)
	}
	return out
}

// transient reports whether another pass may succeed. What fault calls permanent (a refused key, an
// untrusted certificate, a wrong password) never is.
func transient(err error) bool {
	if fault.IsPermanent(fault.Unknown, err) {
		return false
	}
	var pe *passError
	if errors.As(err, &pe) {
		return pe.transient
	}
	return litellm.IsTransient(err) || store.IsTransient(err)
}

// passError carries the LiteLLM steps that failed in a pass.
type passError struct {
	failures  []string
	transient bool
}

func (e *passError) Error() string {
	return fmt.Sprintf("%d LiteLLM change(s) failed:\n  %s", len(e.failures), strings.Join(e.failures, "\n  "))
}

// pass is one attempt at the whole reconcile, under the database's advisory lock: the schema fix-up,
// LiteLLM's plan, then either the dry run's report or LiteLLM's writes followed by the database's.
func pass(ctx context.Context, o Options) (Result, error) {
	res := Result{DryRun: o.DryRun}
	release, err := o.Store.Lock(ctx)
	if err != nil {
		return res, fmt.Errorf("taking the reconcile lock in the database: %w", err)
	}
	defer release()

	if err := migrateOAuthID(ctx, o, &res); err != nil {
		return res, err
	}
	current, err := readLiteLLM(ctx, o)
	if err != nil {
		return res, err
	}
	lp := planLiteLLM(o.Catalog, current, o.APIKeys, o.MasterKey, o.Prune)
	res.Plan.LiteLLM = lp.Steps
	if res.Migrated {
		res.Plan.Migration = "make users.oauth_id nullable"
	}
	if o.DryRun {
		return res, planOnly(ctx, o, lp, &res)
	}

	failed := writeLiteLLM(ctx, o, lp, &res)
	if err := writeDatabase(ctx, o, lp, failed, &res); err != nil {
		return res, err
	}
	if len(failed) > 0 {
		return res, newPassError(failed)
	}
	return res, nil
}

// migrateOAuthID makes users.oauth_id nullable when it is not (a dry run only reports it), so that
// OpenShift users without a uid can log in.
func migrateOAuthID(ctx context.Context, o Options, res *Result) error {
	notNull, err := o.Store.OAuthIDNotNull(ctx)
	if err != nil {
		return fmt.Errorf("checking users.oauth_id: %w", err)
	}
	res.Migrated = notNull
	if notNull && !o.DryRun {
		if res.Migrated, err = o.Store.MigrateOAuthID(ctx); err != nil {
			return fmt.Errorf("making users.oauth_id nullable: %w", err)
		}
		o.Logger.Info("made users.oauth_id nullable so that OpenShift users without a uid can log in")
	}
	return nil
}

// readLiteLLM reads LiteLLM's deployments, retrying what may pass on a second try.
func readLiteLLM(ctx context.Context, o Options) ([]litellm.Deployment, error) {
	var current []litellm.Deployment
	err := retry(ctx, o, "reading LiteLLM's models", func() error {
		var err error
		current, err = o.LiteLLM.ListModels(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading LiteLLM's models: %w", err)
	}
	return current, nil
}

// planOnly fills a dry run's result: the counts and the database's plan, printed, nothing written.
func planOnly(ctx context.Context, o Options, lp litellmPlan, res *Result) error {
	res.LiteLLM = countSteps(lp.Steps, nil)
	changes, _, _, err := planDatabase(ctx, o, lp, lp.blocked)
	if err != nil {
		return err
	}
	res.Plan.Database = changes
	res.Database = countRows(changes)
	res.changed, res.unchanged = stepModels(lp.Steps, nil)
	res.rowsChanged, res.rowsUnchanged = rowModels(changes)
	res.Plan.Print(o.Out)
	return nil
}

// writeLiteLLM applies LiteLLM's plan, re-reads what it wrote and prints the steps that took. It
// returns the models that failed (blocked ones included), each with its reason.
func writeLiteLLM(ctx context.Context, o Options, lp litellmPlan, res *Result) map[string]error {
	// LiteLLM's part ends a little before the run's deadline, so that the rows of the models it did
	// register are still written when others keep failing.
	lctx := ctx
	if d, ok := ctx.Deadline(); ok {
		var stop context.CancelFunc
		lctx, stop = context.WithDeadlineCause(ctx, d.Add(-dbReserve(o)), o.deadlineCause)
		defer stop()
	}
	failed := applyLiteLLM(lctx, o, lp)
	for model, err := range lp.blocked {
		if failed[model] == nil {
			failed[model] = err
		}
	}
	res.LiteLLM = countSteps(lp.Steps, failed)
	res.changed, res.unchanged = stepModels(lp.Steps, failed)
	// Nothing to re-read once LiteLLM's time is up: the failures already say what is not done. What
	// the re-read finds wrong is filed under its model, so that models.json shows that model as failed.
	if lp.writes() > 0 && lctx.Err() == nil {
		problems, err := verifyLiteLLM(lctx, o, lp, failed)
		if err != nil {
			// The re-read itself failed: nothing is known of the models written.
			for _, s := range lp.Steps {
				if s.Action != Unchanged && s.Action != Keep && failed[s.Model] == nil {
					failed[s.Model] = err
				}
			}
		}
		for model, problem := range problems {
			failed[model] = problem
		}
	}
	for _, s := range lp.Steps {
		if s.Action != Unchanged && s.Action != Keep && failed[s.Model] == nil {
			fmt.Fprintln(o.Out, stepLine(s))
		}
	}
	return failed
}

// writeDatabase writes the rows of the models LiteLLM holds (failed ones are left as they were) and
// prints the rows that changed. On an error every model's status says so.
func writeDatabase(ctx context.Context, o Options, lp litellmPlan, failed map[string]error, res *Result) error {
	changes, upserts, unavailable, err := planDatabase(ctx, o, lp, failed)
	if err != nil {
		res.Models = modelStatuses(o.Catalog, lp, failed, err)
		return err
	}
	res.Plan.Database = changes
	if len(upserts) > 0 || len(unavailable) > 0 {
		applied, err := o.Store.Apply(ctx, upserts, unavailable)
		if err != nil {
			err = fmt.Errorf("writing the models to the database: %w", err)
			res.Models = modelStatuses(o.Catalog, lp, failed, err)
			return err
		}
		o.Logger.Info("database written", "inserted", len(applied.Inserted), "updated", len(applied.Updated), "unavailable", len(applied.MarkedUnavailable))
	}
	res.Database = countRows(changes)
	res.rowsChanged, res.rowsUnchanged = rowModels(changes)
	res.Models = modelStatuses(o.Catalog, lp, failed, nil)
	var written []RowChange
	for _, c := range changes {
		if c.Action != Unchanged {
			written = append(written, c)
		}
	}
	Plan{Database: written}.Print(o.Out)
	return nil
}

// newPassError lists the failed models by name; the pass is worth another try only when every
// failure is.
func newPassError(failed map[string]error) *passError {
	pe := &passError{transient: true}
	for _, name := range slices.Sorted(maps.Keys(failed)) {
		err := failed[name]
		pe.failures = append(pe.failures, fmt.Sprintf("%s: %v", name, err))
		if !transient(err) {
			pe.transient = false
		}
	}
	return pe
}

// dbReserve is the part of the run's deadline kept for the database step.
func dbReserve(o Options) time.Duration {
	return min(o.RetryTimeout/10, 15*time.Second)
}

func stepLine(s Step) string {
	var b strings.Builder
	Plan{LiteLLM: []Step{s}}.Print(&b)
	return strings.TrimRight(b.String(), "\n")
}

// applyLiteLLM runs the steps, one task per model, at most Concurrency at once. Within a model the
// deployment that stays is created or updated before anything of that name is deleted, so a catalog
// model never drops out of LiteLLM. It returns the failures by model name.
func applyLiteLLM(ctx context.Context, o Options, lp litellmPlan) map[string]error {
	byModel := map[string][]Step{}
	var order []string
	for _, s := range lp.Steps {
		if s.Action == Unchanged || s.Action == Keep || s.Action == Blocked {
			continue
		}
		if _, ok := byModel[s.Model]; !ok {
			order = append(order, s.Model)
		}
		byModel[s.Model] = append(byModel[s.Model], s)
	}
	var mu sync.Mutex
	failed := map[string]error{}
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for _, model := range order {
		steps := byModel[model]
		sem <- struct{}{}
		if ctx.Err() != nil {
			<-sem
			mu.Lock()
			failed[model] = fmt.Errorf("not attempted: %w", context.Cause(ctx))
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := applyModel(ctx, o, steps); err != nil {
				mu.Lock()
				failed[model] = err
				mu.Unlock()
				o.Logger.Error("LiteLLM change failed", "model", model, "error", err)
			}
		}()
	}
	wg.Wait()
	return failed
}

func applyModel(ctx context.Context, o Options, steps []Step) error {
	// Creates, updates and replacements first: deletions follow only once the staying deployment exists.
	// A leftover that blocks a replacement's id is the one exception.
	order := func(s Step) int {
		switch {
		case s.first:
			return 0
		case s.Action != Delete:
			return 1
		}
		return 2
	}
	sort.SliceStable(steps, func(i, j int) bool { return order(steps[i]) < order(steps[j]) })
	for _, s := range steps {
		var err error
		switch s.Action {
		case Create:
			err = create(ctx, o, s)
		case Replace:
			if err = create(ctx, o, s); err == nil {
				err = remove(ctx, o, s.Model, s.OldID)
			}
		case Delete:
			err = remove(ctx, o, s.Model, s.ID)
		}
		if err != nil {
			return fmt.Errorf("%s deployment %s: %w", s.Action, s.ID, err)
		}
	}
	return nil
}

// create posts a deployment with its deterministic id. LiteLLM answers 500 for an id that exists,
// and some versions answer 500 although the row was saved: so after a failure the job looks for the
// deployment before trying again, and a second create can never make a duplicate.
func create(ctx context.Context, o Options, s Step) error {
	return retry(ctx, o, "creating "+s.Model, func() error {
		err := o.LiteLLM.CreateModel(ctx, s.want)
		if err == nil || !litellm.IsTransient(err) {
			return err
		}
		got, gerr := getWithLag(ctx, o, s.ID)
		if gerr != nil {
			return err
		}
		if len(deploymentDiff(s.want, got)) == 0 {
			o.Logger.Info("create answered an error but the deployment was saved", "model", s.Model, "deployment", s.ID)
			return nil
		}
		return o.LiteLLM.UpdateModel(ctx, s.ID, s.want)
	})
}

func remove(ctx context.Context, o Options, model, id string) error {
	err := retry(ctx, o, "deleting "+model, func() error {
		return o.LiteLLM.DeleteModel(ctx, id)
	})
	if errors.Is(err, litellm.ErrNotFound) {
		return nil
	}
	return err
}

// getWithLag reads one deployment, re-reading for a while if it is not found: right after a write,
// another LiteLLM replica may not have loaded it yet.
func getWithLag(ctx context.Context, o Options, id string) (litellm.Deployment, error) {
	var last error
	for i := 0; i < 3; i++ {
		d, err := o.LiteLLM.GetModel(ctx, id)
		if err == nil {
			return d, nil
		}
		last = err
		if !errors.Is(err, litellm.ErrNotFound) {
			return litellm.Deployment{}, err
		}
		if err := sleep(ctx, o.ReadInterval); err != nil {
			return litellm.Deployment{}, err
		}
	}
	return litellm.Deployment{}, last
}

// verifyLiteLLM re-reads LiteLLM after writing, for at most VerifyTimeout, until every served
// catalog model shows exactly its one deployment with the wanted values. It returns what is still
// wrong after the last read, by model, or the error of a re-read that failed.
func verifyLiteLLM(ctx context.Context, o Options, lp litellmPlan, failed map[string]error) (map[string]error, error) {
	var problems map[string]string
	deadline := time.Now().Add(o.VerifyTimeout)
	reads := 0
	for ; reads == 0 || time.Now().Before(deadline); reads++ {
		if reads > 0 {
			if err := sleep(ctx, o.ReadInterval); err != nil {
				return nil, err
			}
		}
		var current []litellm.Deployment
		if err := retry(ctx, o, "re-reading LiteLLM's models", func() error {
			var err error
			current, err = o.LiteLLM.ListModels(ctx)
			return err
		}); err != nil {
			return nil, fmt.Errorf("re-reading LiteLLM's models after writing: %w", err)
		}
		problems = checkServed(o.Catalog, current, lp, failed)
		if len(problems) == 0 {
			return nil, nil
		}
	}
	out := map[string]error{}
	for model, p := range problems {
		out[model] = fmt.Errorf("after %d reads in %s LiteLLM still does not show what was written: %s", reads, o.VerifyTimeout, p)
	}
	return out, nil
}

func checkServed(c *catalog.Catalog, current []litellm.Deployment, lp litellmPlan, failed map[string]error) map[string]string {
	byName := map[string][]litellm.Deployment{}
	for _, d := range current {
		byName[d.ModelName] = append(byName[d.ModelName], d)
	}
	problems := map[string]string{}
	for _, m := range c.Models {
		if failed[m.ID] != nil {
			continue
		}
		got := byName[m.ID]
		if !m.Served() {
			if len(got) > 0 {
				problems[m.ID] = "still served"
			}
			continue
		}
		want := lp.chosen[m.ID]
		switch {
		case len(got) != 1:
			problems[m.ID] = fmt.Sprintf("%d deployments, want 1", len(got))
		case got[0].ID() != want.ID():
			problems[m.ID] = fmt.Sprintf("deployment %s, want %s", got[0].ID(), want.ID())
		default:
			if diff := deploymentDiff(want, got[0]); len(diff) > 0 {
				problems[m.ID] = "differs in " + strings.Join(diff, ",")
			}
		}
	}
	return problems
}

// planDatabase computes the rows to write. Rows are written only for models whose LiteLLM side is
// done: a row for a model LiteLLM lacks would be marked unavailable at the backend's next sync.
func planDatabase(ctx context.Context, o Options, lp litellmPlan, failed map[string]error) ([]RowChange, []modelsync.Row, []string, error) {
	pruned := slices.Clone(lp.pruned)
	if o.Prune {
		// Also the rows whose deployment is already gone from LiteLLM: a run that deleted it and
		// stopped before this step left them available, and LiteLLM no longer tells of them.
		managed, err := o.Store.ManagedModels(ctx, ManagedBy)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("reading the models table: %w", err)
		}
		listed := map[string]bool{}
		for _, id := range o.Catalog.IDs() {
			listed[id] = true
		}
		for _, id := range managed {
			if !listed[id] && !slices.Contains(pruned, id) {
				pruned = append(pruned, id)
			}
		}
		sort.Strings(pruned)
	}
	ids := append(o.Catalog.IDs(), pruned...)
	existing, err := o.Store.Models(ctx, ids)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("reading the models table: %w", err)
	}
	var changes []RowChange
	var upserts []modelsync.Row
	for _, m := range o.Catalog.Models {
		if failed[m.ID] != nil {
			continue
		}
		d, ok := lp.chosen[m.ID]
		if !ok {
			// Not served: the row keeps the primary deployment id, so the backend's start-up fill of a
			// NULL litellm_model_id has nothing to change.
			d = desiredDeployment(m, DeploymentIDs(m, o.APIKeys[m.ID], o.MasterKey)[0], o.APIKeys[m.ID], o.MasterKey)
		}
		want := desiredRow(m, d)
		got, exists := existing[m.ID]
		switch {
		case !exists:
			changes = append(changes, RowChange{Action: Insert, Model: m.ID})
			upserts = append(upserts, want)
		default:
			if diff := RowDiff(want, got); len(diff) > 0 {
				changes = append(changes, RowChange{Action: Update, Model: m.ID, Fields: diff})
				upserts = append(upserts, want)
			} else {
				changes = append(changes, RowChange{Action: Unchanged, Model: m.ID})
			}
		}
	}
	var unavailable []string
	for _, name := range pruned {
		if failed[name] != nil {
			continue
		}
		if r, ok := existing[name]; ok && r.Availability != catalog.Unavailable {
			changes = append(changes, RowChange{Action: MarkUnavailable, Model: name})
			unavailable = append(unavailable, name)
		}
	}
	return changes, upserts, unavailable, nil
}

func countSteps(steps []Step, failed map[string]error) Counts {
	var c Counts
	for _, s := range steps {
		if failed[s.Model] != nil {
			continue
		}
		switch s.Action {
		case Create:
			c.Created++
		case Update, Replace:
			c.Updated++
		case Delete:
			c.Deleted++
		case Unchanged:
			c.Unchanged++
		}
	}
	return c
}

func countRows(changes []RowChange) Counts {
	var c Counts
	for _, r := range changes {
		switch r.Action {
		case Insert:
			c.Created++
		case Update:
			c.Updated++
		case Unchanged:
			c.Unchanged++
		case MarkUnavailable:
			c.Unavailable++
		}
	}
	return c
}

// retry runs op with exponential backoff while it fails transiently, until the run's deadline (ctx).
// When the deadline ends the retries, the error says what the last answered attempt answered: an
// attempt the deadline cut short (likelier on a loaded node) answered nothing.
func retry(ctx context.Context, o Options, what string, op func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 200 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0
	var last error
	err := backoff.RetryNotify(func() error {
		err := op()
		if last == nil || ctx.Err() == nil {
			last = err
		}
		if err != nil && (!litellm.IsTransient(err) || fault.IsPermanent(fault.LiteLLM, err)) {
			return backoff.Permanent(err)
		}
		return err
	}, backoff.WithContext(b, ctx), func(err error, wait time.Duration) {
		o.Logger.Warn("retrying", "what", what, "retry_in", wait.Round(time.Millisecond), "error", err)
	})
	if err != nil && ctx.Err() != nil && last != nil && !errors.Is(last, ctx.Err()) {
		return fmt.Errorf("%w (then gave up: %w)", last, context.Cause(ctx))
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// modelStatuses is the state a pass left; dbErr is set when the database step failed, so that no
// row was written.
func modelStatuses(c *catalog.Catalog, lp litellmPlan, failed map[string]error, dbErr error) []ModelStatus {
	out := make([]ModelStatus, 0, len(c.Models))
	for _, m := range c.Models {
		st := ModelStatus{ID: m.ID, Catalog: m.Availability, Database: m.Availability}
		if err := failed[m.ID]; err != nil {
			st.LiteLLMDeployments = -1
			st.Database = "not written"
			st.Error = err.Error()
		} else if d, ok := lp.chosen[m.ID]; ok {
			st.LiteLLMDeployments = 1
			st.DeploymentID = d.ID()
		}
		if dbErr != nil && st.Error == "" {
			st.Database = "not written"
			st.Error = dbErr.Error()
		}
		out = append(out, st)
	}
	return out
}

// stepModels names the models whose LiteLLM steps were done, changed or found right.
func stepModels(steps []Step, failed map[string]error) (changed, unchanged []string) {
	for _, s := range steps {
		switch {
		case failed[s.Model] != nil || s.Action == Keep:
		case s.Action == Unchanged:
			unchanged = append(unchanged, s.Model)
		default:
			changed = append(changed, s.Model)
		}
	}
	return changed, unchanged
}

func rowModels(changes []RowChange) (changed, unchanged []string) {
	for _, c := range changes {
		if c.Action == Unchanged {
			unchanged = append(unchanged, c.Model)
		} else {
			changed = append(changed, c.Model)
		}
	}
	return changed, unchanged
}
