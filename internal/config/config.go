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
)

// Reconcile is the configuration of `litemaas-sync reconcile`.
type Reconcile struct {
	// ModelsFile is the catalog file (the Job mounts the models ConfigMap here).
	ModelsFile string `env:"MODELS_FILE"`
	// ModelsConfigMap, for runs outside the Job, reads the catalog straight from a ConfigMap:
	// NAME or NAME/KEY (default key models.yaml), in Namespace.
	ModelsConfigMap string `env:"MODELS_CONFIGMAP"`
	DatabaseURL     string `env:"DATABASE_URL, required"`
	LiteLLMURL      string `env:"LITELLM_URL, required"`
	MasterKey       string `env:"LITELLM_MASTER_KEY, required"`
	// WaitTimeout bounds the wait for the stack; past it the job exits 124.
	WaitTimeout time.Duration `env:"WAIT_TIMEOUT, default=10m"`
	// WaitFor lists the workloads to wait for, e.g. statefulset/postgres,deployment/litellm.
	// Empty: no Kubernetes wait (local runs).
	WaitFor   string `env:"WAIT_FOR"`
	Namespace string `env:"NAMESPACE"`
	DryRun    bool   `env:"DRY_RUN, default=false"`
	Prune     bool   `env:"PRUNE, default=false"`
	LogFormat string `env:"LOG_FORMAT, default=auto"`
	// RetryTimeout bounds the retries after the wait (LiteLLM or the database failing transiently).
	RetryTimeout time.Duration `env:"RETRY_TIMEOUT, default=5m"`
	// VerifyWiring checks, before any write, the values that must agree across components.
	VerifyWiring bool `env:"VERIFY_WIRING, default=true"`
	// BackendLiteLLMAPIKey and BackendAdminAPIKeys are the backend's copies of shared secrets
	// (backend-secret LITELLM_API_KEY and ADMIN_API_KEYS), compared with what LiteLLM has.
	BackendLiteLLMAPIKey string `env:"BACKEND_LITELLM_API_KEY"`
	BackendAdminAPIKeys  string `env:"BACKEND_ADMIN_API_KEYS"`
	// StatusConfigMap is where the job publishes its outcome when it talks to Kubernetes ("" disables).
	StatusConfigMap string `env:"STATUS_CONFIGMAP, default=litemaas-sync-status"`
	// Concurrency bounds parallel writes to LiteLLM.
	Concurrency int `env:"LITELLM_CONCURRENCY, default=8"`
}

// LoadReconcile reads the environment through lookuper (envconfig.OsLookuper() in production).
func LoadReconcile(ctx context.Context, l envconfig.Lookuper) (*Reconcile, error) {
	var c Reconcile
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		return nil, fmt.Errorf("configuration: %s", envNames(c, err.Error()))
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	return &c, nil
}

func (c *Reconcile) validate() error {
	var errs []error
	if c.ModelsFile == "" && c.ModelsConfigMap == "" {
		errs = append(errs, errors.New("set MODELS_FILE (the catalog file) or MODELS_CONFIGMAP (a ConfigMap holding it)"))
	}
	if c.ModelsFile != "" && c.ModelsConfigMap != "" {
		errs = append(errs, errors.New("set only one of MODELS_FILE and MODELS_CONFIGMAP"))
	}
	if u, err := url.Parse(c.LiteLLMURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, errors.New("LITELLM_URL must be an http(s) URL such as http://litellm:4000"))
	}
	if !strings.HasPrefix(c.MasterKey, "sk-") {
		// LiteLLM itself refuses a master key without this prefix.
		errs = append(errs, errors.New("LITELLM_MASTER_KEY must start with sk-"))
	}
	if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// Never echo the URL: it holds the password.
		errs = append(errs, errors.New("DATABASE_URL must be a postgres:// or postgresql:// URL"))
	}
	if c.WaitTimeout <= 0 {
		errs = append(errs, errors.New("WAIT_TIMEOUT must be positive, e.g. 10m"))
	}
	if c.RetryTimeout <= 0 {
		errs = append(errs, errors.New("RETRY_TIMEOUT must be positive, e.g. 5m"))
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		errs = append(errs, errors.New("LITELLM_CONCURRENCY must be between 1 and 64"))
	}
	if err := checkLogFormat(c.LogFormat); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ConfigMapRef splits MODELS_CONFIGMAP into name and key.
func (c *Reconcile) ConfigMapRef() (name, key string) {
	name, key, ok := strings.Cut(c.ModelsConfigMap, "/")
	if !ok || key == "" {
		key = "models.yaml"
	}
	return name, key
}

// envNames rewrites envconfig's messages, which name Go fields, to name the environment variables a
// user actually sets.
func envNames(target any, msg string) string {
	t := reflect.TypeOf(target)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name != "" && strings.HasPrefix(msg, f.Name+":") {
			return name + ":" + strings.TrimPrefix(msg, f.Name+":")
		}
	}
	return msg
}

// Secrets is the configuration of `litemaas-sync secrets`, the PreSync hook that generates the
// stack's Secrets.
type Secrets struct {
	// Namespace holds the Secrets; empty: the pod's namespace (or the kubeconfig context's).
	Namespace string `env:"NAMESPACE"`
	// OAuthMode: oauthclient (an OAuthClient made by a cluster admin), serviceaccount or oidc.
	OAuthMode string `env:"OAUTH_MODE, default=oauthclient"`
	// OAuthCallbackURL is the backend's OAUTH_CALLBACK_URL (oauthclient mode).
	OAuthCallbackURL    string `env:"OAUTH_CALLBACK_URL"`
	OAuthClientName     string `env:"OAUTH_CLIENT_NAME, default=litemaas-oauth-client"`
	OAuthServiceAccount string `env:"OAUTH_SERVICE_ACCOUNT, default=litemaas-oauth"`
	// OIDCClientSecretName is the user's Secret with clientID and clientSecret (oidc mode).
	OIDCClientSecretName string `env:"OIDC_CLIENT_SECRET_NAME, default=oidc-client"`
	// TokenWaitTimeout bounds the wait for the ServiceAccount token (serviceaccount mode).
	TokenWaitTimeout time.Duration `env:"TOKEN_WAIT_TIMEOUT, default=1m"`
	// Timeout bounds the whole run; it stays below the Job's activeDeadlineSeconds (300) so that the
	// program, not the kubelet, reports what it was waiting for.
	Timeout time.Duration `env:"TIMEOUT, default=4m"`
	// The values the database URLs are built from. POSTGRES_USER only applies to a new
	// postgres-secret: an existing POSTGRES_USER is kept.
	PostgresHost    string `env:"POSTGRES_HOST, default=postgres"`
	PostgresPort    int    `env:"POSTGRES_PORT, default=5432"`
	PostgresUser    string `env:"POSTGRES_USER, default=litemaas_admin"`
	BackendDatabase string `env:"BACKEND_DATABASE, default=litemaas_db"`
	LiteLLMDatabase string `env:"LITELLM_DATABASE, default=litellm_db"`
	LogFormat       string `env:"LOG_FORMAT, default=auto"`
}

// LoadSecrets reads the environment of `litemaas-sync secrets`.
func LoadSecrets(ctx context.Context, l envconfig.Lookuper) (*Secrets, error) {
	var c Secrets
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		return nil, fmt.Errorf("configuration: %s", envNames(c, err.Error()))
	}
	var errs []error
	if err := checkLogFormat(c.LogFormat); err != nil {
		errs = append(errs, err)
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("TIMEOUT must be positive, e.g. 4m"))
	}
	if c.TokenWaitTimeout <= 0 {
		errs = append(errs, errors.New("TOKEN_WAIT_TIMEOUT must be positive, e.g. 1m"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
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
