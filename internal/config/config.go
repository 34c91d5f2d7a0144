// Package config reads the settings of litemaas-sync's commands from the environment. The variable names are the
// contract between the manifests, the README and the code.
package config

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/litemaas-gitops/litemaas-gitops/internal/readiness"
	"github.com/litemaas-gitops/litemaas-gitops/internal/rollout"
)

// Reconcile is the configuration of `litemaas-sync reconcile`.
type Reconcile struct {
	// ModelsFile is the catalog file (the Job mounts the models ConfigMap here).
	ModelsFile string `env:"MODELS_FILE" help:"the catalog file (the Job mounts the models ConfigMap at /etc/litemaas-sync/models.yaml)"`
	// ModelsConfigMap, for runs outside the Job, reads the catalog straight from a ConfigMap:
	// NAME or NAME/KEY (default key models.yaml), in Namespace.
	ModelsConfigMap string `env:"MODELS_CONFIGMAP" help:"instead of a file: read the catalog from this ConfigMap (NAME or NAME/KEY, key models.yaml) in NAMESPACE"`
	DatabaseURL     string `env:"DATABASE_URL, required" help:"the backend's database, e.g. postgresql://user:pass@postgres:5432/litemaas_db?sslmode=disable"`
	LiteLLMURL      string `env:"LITELLM_URL, required" help:"LiteLLM's admin API inside the cluster, e.g. http://litellm:4000"`
	MasterKey       string `env:"LITELLM_MASTER_KEY, required" help:"LiteLLM's master key (sk-...)"`
	// WaitTimeout bounds the wait for the stack; past it the job exits 124.
	WaitTimeout time.Duration `env:"WAIT_TIMEOUT, default=10m" help:"how long to wait for the stack; then exit 124"`
	// WaitFor lists the workloads to wait for, e.g. statefulset/postgres,deployment/litellm.
	// Empty: no Kubernetes wait (local runs).
	WaitFor   string `env:"WAIT_FOR" help:"workloads to wait for, e.g. statefulset/postgres,deployment/litellm; empty: no Kubernetes wait"`
	Namespace string `env:"NAMESPACE" help:"where the workloads and ConfigMaps are (default: the pod's namespace, else the kubeconfig context's)"`
	DryRun    bool   `env:"DRY_RUN, default=false" help:"print the plan, write nothing (also --dry-run)"`
	Prune     bool   `env:"PRUNE, default=false" help:"delete our deployments of models removed from the catalog"`
	LogFormat string `env:"LOG_FORMAT, default=auto" help:"json, text, or auto (text on a terminal)"`
	// RetryTimeout bounds the retries after the wait (LiteLLM or the database failing transiently).
	RetryTimeout time.Duration `env:"RETRY_TIMEOUT, default=5m" help:"overall deadline of the retries once the stack is ready"`
	// VerifyWiring checks, before any write, the values that must agree across components.
	VerifyWiring bool `env:"VERIFY_WIRING, default=true" help:"check that the values shared across components agree before writing"`
	// BackendLiteLLMAPIKey and BackendAdminAPIKeys are the backend's copies of shared secrets
	// (backend-secret LITELLM_API_KEY and ADMIN_API_KEYS), compared with what LiteLLM has.
	BackendLiteLLMAPIKey string `env:"BACKEND_LITELLM_API_KEY" help:"the backend's copy of the master key, compared with LITELLM_MASTER_KEY"`
	BackendAdminAPIKeys  string `env:"BACKEND_ADMIN_API_KEYS" help:"the backend's ADMIN_API_KEYS, checked for the ltm_admin_ prefix"`
	// StatusConfigMap is where the job publishes its outcome when it talks to Kubernetes ("" disables).
	StatusConfigMap string `env:"STATUS_CONFIGMAP, default=litemaas-sync-status" help:"where the outcome is published; empty: not published"`
	// Concurrency bounds parallel writes to LiteLLM.
	Concurrency int `env:"LITELLM_CONCURRENCY, default=8" help:"parallel LiteLLM writes (1 to 64)"`
}

// LoadReconcile reads the environment through lookuper (envconfig.OsLookuper() in production).
func LoadReconcile(ctx context.Context, l envconfig.Lookuper) (*Reconcile, error) {
	var c Reconcile
	errs, failed := process(ctx, &c, l)
	errs = append(errs, c.validate(failed)...)
	if len(errs) > 0 {
		return nil, &Error{Problems: errs}
	}
	return &c, nil
}

// validate checks the values; a variable already reported as missing or malformed (failed) is not
// reported twice.
func (c *Reconcile) validate(failed map[string]bool) []error {
	var errs []error
	check := func(name string, bad bool, msg string) {
		if bad && !failed[name] {
			errs = append(errs, errors.New(msg))
		}
	}
	if !failed["MODELS_FILE"] && !failed["MODELS_CONFIGMAP"] {
		if c.ModelsFile == "" && c.ModelsConfigMap == "" {
			errs = append(errs, errors.New("set MODELS_FILE (the catalog file) or MODELS_CONFIGMAP (a ConfigMap holding it)"))
		}
		if c.ModelsFile != "" && c.ModelsConfigMap != "" {
			errs = append(errs, errors.New("set only one of MODELS_FILE and MODELS_CONFIGMAP"))
		}
	}
	u, err := url.Parse(c.LiteLLMURL)
	check("LITELLM_URL", err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "", "LITELLM_URL must be an http(s) URL such as http://litellm:4000")
	// LiteLLM itself refuses a master key without this prefix.
	check("LITELLM_MASTER_KEY", !strings.HasPrefix(c.MasterKey, "sk-"), "LITELLM_MASTER_KEY must start with sk-")
	// Never echo the URL: it holds the password.
	u, err = url.Parse(c.DatabaseURL)
	check("DATABASE_URL", err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql"), "DATABASE_URL must be a postgres:// or postgresql:// URL")
	check("WAIT_TIMEOUT", c.WaitTimeout <= 0, "WAIT_TIMEOUT must be positive, e.g. 10m")
	check("RETRY_TIMEOUT", c.RetryTimeout <= 0, "RETRY_TIMEOUT must be positive, e.g. 5m")
	check("LITELLM_CONCURRENCY", c.Concurrency < 1 || c.Concurrency > 64, "LITELLM_CONCURRENCY must be between 1 and 64")
	// CloudNativePG Clusters (cluster.postgresql.cnpg.io/<name>) first, then the workloads.
	if _, rest, err := readiness.SplitCNPGClusters(c.WaitFor); err != nil && !failed["WAIT_FOR"] {
		errs = append(errs, fmt.Errorf("WAIT_FOR: %w", err))
	} else if _, err := rollout.ParseWorkloads(rest); err != nil && !failed["WAIT_FOR"] {
		errs = append(errs, fmt.Errorf("WAIT_FOR: %w", err))
	}
	if err := checkLogFormat(c.LogFormat); err != nil && !failed["LOG_FORMAT"] {
		errs = append(errs, err)
	}
	return errs
}

// ConfigMapRef splits MODELS_CONFIGMAP into name and key.
func (c *Reconcile) ConfigMapRef() (name, key string) {
	name, key, ok := strings.Cut(c.ModelsConfigMap, "/")
	if !ok || key == "" {
		key = "models.yaml"
	}
	return name, key
}

// Error is every problem of a command's configuration, so that one run names them all.
type Error struct {
	Problems []error
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "configuration: " + e.Problems[0].Error()
	}
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return fmt.Sprintf("configuration: %d problems:\n  %s", len(e.Problems), strings.Join(msgs, "\n  "))
}

func (e *Error) Unwrap() []error { return e.Problems }

// process reads every variable of target (a pointer to a struct with env tags) through envconfig, one
// field at a time: envconfig stops at the first problem, and a user should learn of every missing or
// malformed variable from one run. It returns the problems, each naming its variable, and the names
// of the variables that failed.
func process(ctx context.Context, target any, l envconfig.Lookuper) ([]error, map[string]bool) {
	v := reflect.ValueOf(target).Elem()
	t := v.Type()
	var errs []error
	failed := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			continue
		}
		one := reflect.New(reflect.StructOf([]reflect.StructField{{Name: f.Name, Type: f.Type, Tag: f.Tag}}))
		err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: one.Interface(), Lookuper: l})
		switch {
		case errors.Is(err, envconfig.ErrMissingRequired):
			errs = append(errs, fmt.Errorf("%s is not set (required)", name))
			failed[name] = true
		case err != nil:
			// envconfig names the Go field; the user sets the variable.
			msg := strings.TrimPrefix(err.Error(), f.Name+": ")
			errs = append(errs, fmt.Errorf("%s: %s", name, msg))
			failed[name] = true
		default:
			v.Field(i).Set(one.Elem().Field(0))
		}
	}
	return errs, failed
}

// Variable is one environment variable a command reads, for its --help.
type Variable struct {
	Name     string
	Default  string
	Required bool
	Help     string
}

// Variables lists the environment variables of a configuration struct (Reconcile or Secrets), in
// declaration order, from the same tags the loader reads.
func Variables(target any) []Variable {
	t := reflect.TypeOf(target)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Variable
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name == "" {
			continue
		}
		v := Variable{Name: name, Help: f.Tag.Get("help")}
		for _, o := range strings.Split(opts, ",") {
			o = strings.TrimSpace(o)
			switch {
			case o == "required":
				v.Required = true
			case strings.HasPrefix(o, "default="):
				v.Default = strings.TrimPrefix(o, "default=")
			}
		}
		out = append(out, v)
	}
	return out
}

// Describe formats Variables for a --help text.
func Describe(target any) string {
	var b strings.Builder
	width := 0
	vars := Variables(target)
	for _, v := range vars {
		width = max(width, len(v.Name))
	}
	for _, v := range vars {
		note := ""
		switch {
		case v.Required:
			note = "; required"
		case v.Default != "":
			note = "; default " + v.Default
		}
		fmt.Fprintf(&b, "  %-*s  %s%s\n", width, v.Name, v.Help, note)
	}
	return b.String()
}

// Secrets is the configuration of `litemaas-sync secrets`, the PreSync hook that generates the
// stack's Secrets.
type Secrets struct {
	// Namespace holds the Secrets; empty: the pod's namespace (or the kubeconfig context's).
	Namespace string `env:"NAMESPACE" help:"where the Secrets are (default: the pod's namespace)"`
	// OAuthMode: oauthclient (an OAuthClient made by a cluster admin), serviceaccount or oidc.
	OAuthMode string `env:"OAUTH_MODE, default=oauthclient" help:"oauthclient (an OAuthClient made by a cluster admin), serviceaccount or oidc"`
	// OAuthCallbackURL is the backend's OAUTH_CALLBACK_URL (oauthclient mode).
	OAuthCallbackURL    string `env:"OAUTH_CALLBACK_URL" help:"the OAuthClient's redirect URI (oauthclient mode; the overlay fills it in)"`
	OAuthClientName     string `env:"OAUTH_CLIENT_NAME, default=litemaas-oauth-client" help:"the OAuthClient (oauthclient mode)"`
	OAuthServiceAccount string `env:"OAUTH_SERVICE_ACCOUNT, default=litemaas-oauth" help:"the ServiceAccount (serviceaccount mode)"`
	// OIDCClientSecretName is the user's Secret with clientID and clientSecret (oidc mode).
	OIDCClientSecretName string `env:"OIDC_CLIENT_SECRET_NAME, default=oidc-client" help:"the user's Secret with clientID and clientSecret (oidc mode)"`
	// TokenWaitTimeout bounds the wait for the ServiceAccount token (serviceaccount mode).
	TokenWaitTimeout time.Duration `env:"TOKEN_WAIT_TIMEOUT, default=1m" help:"how long to wait for the ServiceAccount token; then exit 124"`
	// Timeout bounds the whole run; it stays below the Job's activeDeadlineSeconds (300) so that the
	// program, not the kubelet, reports what it was waiting for.
	Timeout time.Duration `env:"TIMEOUT, default=4m" help:"the whole run"`
	// The values the database URLs are built from. POSTGRES_USER only applies to a new
	// postgres-secret: an existing POSTGRES_USER is kept.
	PostgresHost    string `env:"POSTGRES_HOST, default=postgres" help:"the database host in the generated URLs"`
	PostgresPort    int    `env:"POSTGRES_PORT, default=5432" help:"the database port in the generated URLs"`
	PostgresUser    string `env:"POSTGRES_USER, default=litemaas_admin" help:"the database owner of a new postgres-secret"`
	BackendDatabase string `env:"BACKEND_DATABASE, default=litemaas_db" help:"the backend's database"`
	LiteLLMDatabase string `env:"LITELLM_DATABASE, default=litellm_db" help:"LiteLLM's database"`
	LogFormat       string `env:"LOG_FORMAT, default=auto" help:"json, text, or auto (text on a terminal)"`
	// DatabaseRoles: also generate the login Secrets of the CloudNativePG managed roles
	// (gitops/components/ha), with URLs pointing at POSTGRES_HOST.
	DatabaseRoles bool `env:"DATABASE_ROLES, default=false" help:"true: also generate the CloudNativePG roles' basic-auth Secrets (production profile)"`
	// PostgresCAFile: the CA (CloudNativePG's <cluster>-ca ca.crt) as the consumers of the role URLs
	// mount it; the URLs then verify the server's certificate and name (production profile).
	PostgresCAFile string `env:"POSTGRES_CA_FILE" help:"the PostgreSQL CA file as the pods mount it: the role URLs verify the server with it (production profile; empty: no TLS parameters)"`
}

// LoadSecrets reads the environment of `litemaas-sync secrets`.
func LoadSecrets(ctx context.Context, l envconfig.Lookuper) (*Secrets, error) {
	var c Secrets
	errs, failed := process(ctx, &c, l)
	if err := checkLogFormat(c.LogFormat); err != nil && !failed["LOG_FORMAT"] {
		errs = append(errs, err)
	}
	if c.Timeout <= 0 && !failed["TIMEOUT"] {
		errs = append(errs, errors.New("TIMEOUT must be positive, e.g. 4m"))
	}
	if c.TokenWaitTimeout <= 0 && !failed["TOKEN_WAIT_TIMEOUT"] {
		errs = append(errs, errors.New("TOKEN_WAIT_TIMEOUT must be positive, e.g. 1m"))
	}
	if c.PostgresCAFile != "" && !c.DatabaseRoles && !failed["DATABASE_ROLES"] {
		errs = append(errs, errors.New("POSTGRES_CA_FILE applies to the role Secrets only: set DATABASE_ROLES=true (production profile) or remove it"))
	}
	if len(errs) > 0 {
		return nil, &Error{Problems: errs}
	}
	return &c, nil
}

func checkLogFormat(f string) error {
	switch f {
	case "auto", "json", "text":
		return nil
	}
	return fmt.Errorf("LOG_FORMAT must be auto, json or text, got %q", f)
}
