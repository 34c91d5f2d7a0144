package job

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/config"
	"github.com/litemaas-gitops/litemaas-gitops/internal/fault"
	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/readiness"
	"github.com/litemaas-gitops/litemaas-gitops/internal/reconcile"
	"github.com/litemaas-gitops/litemaas-gitops/internal/rollout"
	"github.com/litemaas-gitops/litemaas-gitops/internal/store"
	"github.com/litemaas-gitops/litemaas-gitops/internal/wiring"
)

// ReconcileOptions configure `litemaas-sync reconcile`.
type ReconcileOptions struct {
	// Env is where the configuration comes from (the process environment in production).
	Env envconfig.Lookuper
	// DryRun is the --dry-run flag; DRY_RUN=true does the same.
	DryRun bool
	// Log receives the structured logs (stderr in production).
	Log io.Writer
	// TerminationLog is written with the one-line outcome when the file exists.
	TerminationLog string
	// Dynamic, when set, replaces the client built from in-cluster config or KUBECONFIG. Served is
	// then the wiring check's discovery probe (kube.GroupVersionServed); nil skips that check.
	Dynamic dynamic.Interface
	Served  func(ctx context.Context, groupVersion string) (bool, error)
}

// Run waits for the stack, then reconciles. The plan or the changes and the one-line summary go to out.
//
// Every end of a run whose configuration was read goes through finish: the termination log, the
// status ConfigMap and the Job's Event all say the same result and reason, so `make verify` never
// reads an earlier run's success after this one failed.
func (o *ReconcileOptions) Run(ctx context.Context, out io.Writer) (err error) {
	cfg, err := config.LoadReconcile(ctx, o.Env)
	if err != nil {
		err = invalid(err)
		msg := "litemaas-sync: failed: " + err.Error()
		writeTerminationLog(o.TerminationLog, msg)
		recordEvent(ctx, o.Env, o.Dynamic, "", "Reconcile", msg, ReasonInvalidConfig, true, nil)
		return err
	}
	if o.DryRun {
		cfg.DryRun = true
	}
	r := &run{opts: o, cfg: cfg, log: NewLogger(o.Log, cfg.LogFormat), namespace: cfg.Namespace}
	if r.namespace == "" {
		r.namespace = kube.DefaultNamespace()
	}
	defer func() { err = r.finish(ctx, out, err) }()
	return r.reconcile(ctx, out)
}

// run is one reconcile: what finish needs to report whatever happened.
type run struct {
	opts      *ReconcileOptions
	cfg       *config.Reconcile
	log       *slog.Logger
	namespace string
	dc        dynamic.Interface
	cat       *catalog.Catalog
	// res is set once the reconcile ran (also when it failed).
	res *reconcile.Result
}

// finish reports the run's end: the summary on out (on success), the termination log, the status
// ConfigMap and the Event. A report that cannot be written is logged; it never changes the exit code.
func (r *run) finish(ctx context.Context, out io.Writer, err error) error {
	ee := classify(err)
	var summary string
	switch {
	case r.res != nil && err == nil:
		summary = r.res.Summary()
	case r.res != nil:
		summary = r.res.Summary() + ": " + ee.Error()
	case ee.Reason == ReasonStopped:
		summary = "failed: nothing written, " + ee.Error()
	case ee.Code == ExitTimeout:
		summary = "failed: nothing written, the stack was not ready: " + ee.Error()
	default:
		summary = "failed: nothing written: " + ee.Error()
	}
	if err == nil {
		fmt.Fprintln(out, summary)
		r.log.Info("finished", slog.String("summary", summary))
	} else {
		r.log.Error("finished", slog.String("summary", summary), slog.String("reason", ee.Reason), slog.Int("exit", ee.Code))
	}
	writeTerminationLog(r.opts.TerminationLog, "litemaas-sync: "+summary)
	if r.dc != nil && r.cfg.StatusConfigMap != "" && !r.cfg.DryRun {
		var res reconcile.Result
		if r.res != nil {
			res = *r.res
		} else if r.cat != nil {
			res = reconcile.NotRun(r.cat, err)
		}
		if perr := publishStatus(ctx, r.dc, r.namespace, r.cfg.StatusConfigMap, res, summary, ee); perr != nil {
			r.log.Warn("could not publish the status", "error", perr)
		}
	}
	// The Event's reason stays Failed or Succeeded (what consoles and alerts filter on); its note starts
	// with the classified reason and, for a catalog problem, where it is, so a truncated note keeps them.
	reason := ReasonSucceeded
	if err != nil {
		reason = ReasonFailed
	}
	recordEvent(ctx, r.opts.Env, r.dc, r.namespace, "Reconcile", eventNote(ee, summary), reason, err != nil, r.log)
	if err == nil {
		return nil
	}
	return ee
}

// eventNote is the Event's text: "litemaas-sync (<reason>, exit <code>[, file F, model M, field X]): <summary>".
func eventNote(ee *ExitError, summary string) string {
	tags := []string{ee.Reason, fmt.Sprintf("exit %d", ee.Code)}
	for _, kv := range [][2]string{{"file", ee.File}, {"model", ee.Model}, {"field", ee.Field}} {
		if kv[1] != "" {
			tags = append(tags, kv[0]+" "+kv[1])
		}
	}
	return "litemaas-sync (" + strings.Join(tags, ", ") + "): " + summary
}

// reconcile is the run's body: the clients and the configuration's checks, the catalog, the wait for
// the stack, then the reconcile itself.
func (r *run) reconcile(ctx context.Context, out io.Writer) error {
	cfg, namespace := r.cfg, r.namespace
	served, err := r.kubeClients()
	if err != nil {
		return err
	}
	dc := r.dc
	clusters, workloads, err := parseWaitFor(cfg.WaitFor)
	if err != nil {
		return err
	}

	// The catalog is checked before anything is waited for: a bad one fails at once, and nothing is
	// written anywhere.
	cat, err := loadCatalog(ctx, cfg, dc, namespace)
	if err != nil {
		return err
	}
	r.cat = cat
	apiKeys, err := resolveAPIKeys(cat, r.opts.Env)
	if err != nil {
		return err
	}

	st, err := store.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return invalid(fmt.Errorf("DATABASE_URL: %w", err))
	}
	defer st.Close()
	keys := make([]string, 0, len(apiKeys))
	for _, k := range apiKeys {
		keys = append(keys, k)
	}
	llm := litellm.New(cfg.LiteLLMURL, cfg.MasterKey, litellm.WithHTTPClient(&http.Client{Timeout: 60 * time.Second}), litellm.WithRedacted(keys...))

	// A Role that does not allow the wait, or an API server the job does not trust, would only show
	// as a wait that never ends: ask once, before waiting.
	if err := checkKubeAccess(ctx, dc, namespace, workloads, clusters); err != nil {
		return err
	}
	if err := r.waitForStack(ctx, st, llm, workloads, clusters); err != nil {
		return err
	}

	if cfg.VerifyWiring {
		if err := verifyWiring(ctx, cfg, dc, served, namespace, r.log); err != nil {
			return err
		}
	}

	res, err := reconcile.Run(ctx, reconcile.Options{
		LiteLLM:      llm,
		Store:        st,
		Catalog:      cat,
		MasterKey:    cfg.MasterKey,
		APIKeys:      apiKeys,
		DryRun:       cfg.DryRun,
		Prune:        cfg.Prune,
		Concurrency:  cfg.Concurrency,
		RetryTimeout: cfg.RetryTimeout,
		Logger:       r.log,
		Out:          out,
	})
	// Also on failure the summary counts what every pass did before it, and models.json says what
	// state each model was left in.
	r.res = &res
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	return nil
}

// kubeClients sets r.dc and returns the discovery probe of the wiring check. Only WAIT_FOR and
// MODELS_CONFIGMAP need the Kubernetes API: a local run works without it. The clients come first, so
// that even a bad WAIT_FOR is reported in the status.
func (r *run) kubeClients() (func(ctx context.Context, groupVersion string) (bool, error), error) {
	dc, served := r.opts.Dynamic, r.opts.Served
	if dc == nil && (strings.TrimSpace(r.cfg.WaitFor) != "" || r.cfg.ModelsConfigMap != "") {
		var err error
		if dc, served, err = kubeClient(nil); err != nil {
			return nil, invalid(fmt.Errorf("WAIT_FOR or MODELS_CONFIGMAP needs the Kubernetes API: %w", err))
		}
	}
	r.dc = dc
	return served, nil
}

// parseWaitFor splits WAIT_FOR: CloudNativePG Clusters (cluster.postgresql.cnpg.io/<name>) are
// waited for through their status; the other entries are workloads.
func parseWaitFor(waitFor string) ([]string, []rollout.Workload, error) {
	clusters, rest, err := readiness.SplitCNPGClusters(waitFor)
	if err != nil {
		return nil, nil, invalid(fmt.Errorf("WAIT_FOR: %w", err))
	}
	workloads, err := rollout.ParseWorkloads(rest)
	if err != nil {
		return nil, nil, invalid(fmt.Errorf("WAIT_FOR: %w", err))
	}
	return clusters, workloads, nil
}

// waitForStack waits, under WAIT_TIMEOUT, for the workloads and Clusters of WAIT_FOR, PostgreSQL and
// LiteLLM, all at once.
func (r *run) waitForStack(ctx context.Context, st *store.Store, llm *litellm.Client, workloads []rollout.Workload, clusters []string) error {
	w := &readiness.Waiter{
		Logger: r.log,
		Probes: []readiness.Probe{
			{Name: "postgres", Check: st.CheckReady},
			{Name: "litellm", Check: func(ctx context.Context) error { return litellmReady(ctx, llm) }},
		},
	}
	var waits readiness.AllWorkloads
	if len(workloads) > 0 {
		waits = append(waits, &rollout.Waiter{Client: r.dc, Namespace: r.namespace, Workloads: workloads, Logger: r.log})
	}
	if len(clusters) > 0 {
		waits = append(waits, &readiness.CNPGWaiter{Client: r.dc, Namespace: r.namespace, Names: clusters, Logger: r.log})
	}
	if len(waits) > 0 {
		w.Workloads = waits
	}
	r.log.Info("waiting for the stack", "namespace", r.namespace, "workloads", r.cfg.WaitFor, "timeout", r.cfg.WaitTimeout.String())
	start := time.Now()
	if err := w.Wait(ctx, r.cfg.WaitTimeout); err != nil {
		return err
	}
	r.log.Info("stack ready", "waited", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// checkKubeAccess reads each workload of WAIT_FOR once, as the wait will: a 401, a 403
// or an untrusted certificate fails the run at once, naming what to fix. Other errors (the API
// server restarting) are left to the wait.
func checkKubeAccess(ctx context.Context, dc dynamic.Interface, namespace string, workloads []rollout.Workload, clusters []string) error {
	one := metav1.ListOptions{Limit: 1}
	check := func(what string, err error) error {
		if p := fault.Classify(fault.Kubernetes, err); p != nil {
			return &fault.Permanent{Reason: p.Reason, Setting: p.Setting, Err: fmt.Errorf("WAIT_FOR %s in namespace %s: %w", what, namespace, err)}
		}
		return nil
	}
	for _, w := range workloads {
		if dc == nil {
			break
		}
		o := one
		o.FieldSelector = "metadata.name=" + w.Name
		_, err := dc.Resource(w.Resource()).Namespace(namespace).List(ctx, o)
		if err := check(w.String(), err); err != nil {
			return err
		}
	}
	for _, c := range clusters {
		if dc == nil {
			break
		}
		o := one
		o.FieldSelector = "metadata.name=" + c
		_, err := dc.Resource(readiness.CNPGClusters).Namespace(namespace).List(ctx, o)
		if err := check(readiness.CNPGClusterKind+"/"+c, err); err != nil {
			return err
		}
	}
	return nil
}

func loadCatalog(ctx context.Context, cfg *config.Reconcile, dc dynamic.Interface, namespace string) (*catalog.Catalog, error) {
	if cfg.ModelsFile != "" {
		c, err := catalog.Load(cfg.ModelsFile)
		if err != nil {
			return nil, invalid(err)
		}
		return c, nil
	}
	name, key := cfg.ConfigMapRef()
	data, err := kube.ReadConfigMapKey(ctx, dc, namespace, name, key)
	if err != nil {
		err = fmt.Errorf("MODELS_CONFIGMAP: %w", err)
		if p := fault.Classify(fault.Kubernetes, err); p != nil {
			return nil, p
		}
		return nil, err
	}
	c, err := catalog.Parse(fmt.Sprintf("configmap %s/%s key %s", namespace, name, key), data)
	if err != nil {
		return nil, invalid(err)
	}
	return c, nil
}

// resolveAPIKeys reads each model's API key from the variable its catalog entry names.
func resolveAPIKeys(c *catalog.Catalog, env envconfig.Lookuper) (map[string]string, error) {
	keys := map[string]string{}
	var missing []string
	first := ""
	for _, m := range c.Models {
		if m.APIKeyEnv == "" {
			continue
		}
		v, ok := env.Lookup(m.APIKeyEnv)
		if !ok || v == "" {
			missing = append(missing, fmt.Sprintf("model %s: field apiKeyEnv: environment variable %s is not set (expose the Secret key to the job under that name)", m.ID, m.APIKeyEnv))
			if first == "" {
				first = m.ID
			}
			continue
		}
		keys[m.ID] = v
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, invalidInput(c.File, first, "apiKeyEnv", fmt.Errorf("%s:\n  %s", c.File, strings.Join(missing, "\n  ")))
	}
	return keys, nil
}

func litellmReady(ctx context.Context, c *litellm.Client) error {
	r, err := c.Readiness(ctx)
	if err != nil {
		return err
	}
	if !r.DBConnected() {
		return fmt.Errorf("proxy up but its database is %q (LiteLLM needs DATABASE_URL and STORE_MODEL_IN_DB=True)", r.DB)
	}
	return nil
}

// verifyWiring refuses to write anything while values that must agree across components disagree.
func verifyWiring(ctx context.Context, cfg *config.Reconcile, dc dynamic.Interface, served served, namespace string, log *slog.Logger) error {
	problems := wiring.CheckSecrets(wiring.Secrets{
		MasterKey:     cfg.MasterKey,
		BackendAPIKey: cfg.BackendLiteLLMAPIKey,
		AdminAPIKeys:  cfg.BackendAdminAPIKeys,
	})
	if dc != nil && served != nil && len(workloadsOf(cfg)) > 0 {
		p, skipped, err := wiring.Cluster{Dynamic: dc, Served: served, Namespace: namespace}.Check(ctx)
		if err != nil {
			return fmt.Errorf("checking the backend's settings against the routes: %w", err)
		}
		if skipped != "" {
			log.Info(skipped)
		}
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		return invalid(fmt.Errorf("the stack's settings disagree (nothing was written):\n  %s", strings.Join(problems, "\n  ")))
	}
	return nil
}

func workloadsOf(cfg *config.Reconcile) []rollout.Workload {
	_, rest, _ := readiness.SplitCNPGClusters(cfg.WaitFor)
	w, _ := rollout.ParseWorkloads(rest)
	return w
}
