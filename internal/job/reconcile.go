package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/config"
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
	// Kube and Dynamic, when set, replace the clients built from in-cluster config or KUBECONFIG.
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// Run waits for the stack, then reconciles. The plan or the changes and the one-line summary go to out.
func (o *ReconcileOptions) Run(ctx context.Context, out io.Writer) (err error) {
	var summary string
	defer func() {
		if err != nil && summary == "" {
			summary = "failed: " + err.Error()
		}
		writeTerminationLog(o.TerminationLog, "litemaas-sync: "+summary)
		recordOutcome(ctx, o.Env, o.Kube, "", "Reconcile", "litemaas-sync: "+summary, err != nil, nil)
	}()
	cfg, err := config.LoadReconcile(ctx, o.Env)
	if err != nil {
		return invalid(err)
	}
	if o.DryRun {
		cfg.DryRun = true
	}
	log := NewLogger(o.Log, cfg.LogFormat)

	namespace := cfg.Namespace
	if namespace == "" {
		namespace = kube.DefaultNamespace()
	}
	// CloudNativePG Clusters (cluster.postgresql.cnpg.io/<name>) are waited for through their status;
	// the other entries are workloads.
	clusters, rest, err := readiness.SplitCNPGClusters(cfg.WaitFor)
	if err != nil {
		return invalid(fmt.Errorf("WAIT_FOR: %w", err))
	}
	workloads, err := rollout.ParseWorkloads(rest)
	if err != nil {
		return invalid(fmt.Errorf("WAIT_FOR: %w", err))
	}
	// Only WAIT_FOR and MODELS_CONFIGMAP need the Kubernetes API: a local run works without it.
	kc, dc := o.Kube, o.Dynamic
	if (kc == nil && (len(workloads) > 0 || cfg.ModelsConfigMap != "")) || (dc == nil && len(clusters) > 0) {
		if kc, dc, err = kubeClients(kc, dc, true); err != nil {
			return invalid(fmt.Errorf("WAIT_FOR or MODELS_CONFIGMAP needs the Kubernetes API: %w", err))
		}
	}

	// The catalog is checked before anything is waited for: a bad one fails at once, and nothing is
	// written anywhere.
	cat, err := loadCatalog(ctx, cfg, kc, namespace)
	if err != nil {
		return err
	}
	apiKeys, err := resolveAPIKeys(cat, o.Env)
	if err != nil {
		return invalid(err)
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

	w := &readiness.Waiter{
		Logger: log,
		Probes: []readiness.Probe{
			{Name: "postgres", Check: st.CheckReady},
			{Name: "litellm", Check: func(ctx context.Context) error { return litellmReady(ctx, llm) }},
		},
	}
	var waits readiness.AllWorkloads
	if len(workloads) > 0 {
		waits = append(waits, &rollout.Waiter{Client: kc, Namespace: namespace, Workloads: workloads, Logger: log})
	}
	if len(clusters) > 0 {
		waits = append(waits, &readiness.CNPGWaiter{Client: dc, Namespace: namespace, Names: clusters, Logger: log})
	}
	if len(waits) > 0 {
		w.Workloads = waits
	}
	log.Info("waiting for the stack", "namespace", namespace, "workloads", cfg.WaitFor, "timeout", cfg.WaitTimeout.String())
	start := time.Now()
	if err := w.Wait(ctx, cfg.WaitTimeout); err != nil {
		// The status says so too: `make verify` must not read the previous run's success.
		if kc != nil && cfg.StatusConfigMap != "" && !cfg.DryRun {
			res := reconcile.NotRun(cat, fmt.Errorf("the stack was not ready: %w", err))
			if perr := publishStatus(ctx, kc, namespace, cfg.StatusConfigMap, res, "failed: nothing written, the stack was not ready: "+err.Error(), err); perr != nil {
				log.Warn("could not publish the status", "error", perr)
			}
		}
		var te *readiness.TimeoutError
		if errors.As(err, &te) {
			return &ExitError{Code: ExitTimeout, Err: err}
		}
		return err
	}
	log.Info("stack ready", "waited", time.Since(start).Round(time.Millisecond).String())

	if cfg.VerifyWiring {
		if err := verifyWiring(ctx, cfg, kc, dc, namespace, log); err != nil {
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
		Logger:       log,
		Out:          out,
	})
	// Also on failure the summary counts what every pass did before it, and models.json says what
	// state each model was left in.
	summary = res.Summary()
	if err != nil {
		summary += ": " + err.Error()
	}
	if kc != nil && cfg.StatusConfigMap != "" && !cfg.DryRun {
		if perr := publishStatus(ctx, kc, namespace, cfg.StatusConfigMap, res, summary, err); perr != nil {
			log.Warn("could not publish the status", "error", perr)
		}
	}
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	fmt.Fprintln(out, summary)
	log.Info("finished", slog.String("summary", summary))
	return nil
}

func loadCatalog(ctx context.Context, cfg *config.Reconcile, kc kubernetes.Interface, namespace string) (*catalog.Catalog, error) {
	if cfg.ModelsFile != "" {
		c, err := catalog.Load(cfg.ModelsFile)
		if err != nil {
			return nil, invalid(err)
		}
		return c, nil
	}
	name, key := cfg.ConfigMapRef()
	data, err := kube.ReadConfigMapKey(ctx, kc, namespace, name, key)
	if err != nil {
		return nil, fmt.Errorf("MODELS_CONFIGMAP: %w", err)
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
	for _, m := range c.Models {
		if m.APIKeyEnv == "" {
			continue
		}
		v, ok := env.Lookup(m.APIKeyEnv)
		if !ok || v == "" {
			missing = append(missing, fmt.Sprintf("model %s: field apiKeyEnv: environment variable %s is not set (expose the Secret key to the job under that name)", m.ID, m.APIKeyEnv))
			continue
		}
		keys[m.ID] = v
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("%s:\n  %s", c.File, strings.Join(missing, "\n  "))
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
func verifyWiring(ctx context.Context, cfg *config.Reconcile, kc kubernetes.Interface, dc dynamic.Interface, namespace string, log *slog.Logger) error {
	problems := wiring.CheckSecrets(wiring.Secrets{
		MasterKey:     cfg.MasterKey,
		BackendAPIKey: cfg.BackendLiteLLMAPIKey,
		AdminAPIKeys:  cfg.BackendAdminAPIKeys,
	})
	if kc != nil && dc != nil && len(workloadsOf(cfg)) > 0 {
		p, skipped, err := wiring.Cluster{Client: kc, Dynamic: dc, Namespace: namespace}.Check(ctx)
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
