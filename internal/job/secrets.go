package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/sethvargo/go-envconfig"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
	"github.com/litemaas-gitops/litemaas-gitops/internal/secrets"
)

// SecretsOptions configure `litemaas-sync secrets`, the PreSync hook that generates the stack's
// Secrets.
type SecretsOptions struct {
	// Env is where the configuration comes from (the process environment in production).
	Env envconfig.Lookuper
	// Log receives the structured logs (stderr in production). They name Secrets and keys, never values.
	Log io.Writer
	// TerminationLog is written with the one-line outcome when the file exists.
	TerminationLog string
	// Kube and Dynamic, when set, replace the clients built from in-cluster config or KUBECONFIG.
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
}

// secretsConfig is the environment of `litemaas-sync secrets`.
type secretsConfig struct {
	// Namespace holds the Secrets; empty: the pod's namespace (or the kubeconfig context's).
	Namespace string `env:"NAMESPACE"`
	// OAuthMode: oauthclient (an OAuthClient made by a cluster admin) or serviceaccount.
	OAuthMode string `env:"OAUTH_MODE, default=oauthclient"`
	// OAuthCallbackURL is the backend's OAUTH_CALLBACK_URL (oauthclient mode).
	OAuthCallbackURL    string `env:"OAUTH_CALLBACK_URL"`
	OAuthClientName     string `env:"OAUTH_CLIENT_NAME, default=litemaas-oauth-client"`
	OAuthServiceAccount string `env:"OAUTH_SERVICE_ACCOUNT, default=litemaas-oauth"`
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

func loadSecretsConfig(ctx context.Context, l envconfig.Lookuper) (*secretsConfig, error) {
	var c secretsConfig
	if err := envconfig.ProcessWith(ctx, &envconfig.Config{Target: &c, Lookuper: l}); err != nil {
		return nil, fmt.Errorf("configuration: %s", secretsEnvNames(err.Error()))
	}
	var errs []error
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		errs = append(errs, fmt.Errorf("LOG_FORMAT must be auto, json or text, got %q", c.LogFormat))
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

// secretsEnvNames rewrites envconfig's messages, which name Go fields, to name the variables.
func secretsEnvNames(msg string) string {
	t := reflect.TypeOf(secretsConfig{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		if name != "" && strings.HasPrefix(msg, f.Name+":") {
			return name + ":" + strings.TrimPrefix(msg, f.Name+":")
		}
	}
	return msg
}

// Run creates the missing Secrets, fills missing keys and sets up the OAuth client. The one-line
// summary goes to out. Exit codes: 2 for a malformed existing value or bad configuration (nothing
// was written), 124 when the ServiceAccount token did not come in time, 1 otherwise.
func (o *SecretsOptions) Run(ctx context.Context, out io.Writer) (err error) {
	var summary string
	defer func() {
		msg := "litemaas-sync secrets: " + summary
		if err != nil {
			msg = "litemaas-sync secrets: failed: " + err.Error()
			if summary != "" {
				msg += " (" + summary + ")"
			}
		}
		writeTerminationLog(o.TerminationLog, msg)
	}()

	cfg, err := loadSecretsConfig(ctx, o.Env)
	if err != nil {
		return invalid(err)
	}
	logw := o.Log
	if logw == nil {
		logw = os.Stderr
	}
	log := NewLogger(logw, cfg.LogFormat)

	namespace := cfg.Namespace
	if namespace == "" {
		namespace = kube.DefaultNamespace()
	}
	opts := secrets.Options{
		Namespace: namespace,
		Settings: secrets.Settings{
			PostgresHost:    cfg.PostgresHost,
			PostgresPort:    cfg.PostgresPort,
			PostgresUser:    cfg.PostgresUser,
			BackendDatabase: cfg.BackendDatabase,
			LiteLLMDatabase: cfg.LiteLLMDatabase,
		},
		Mode:            secrets.Mode(cfg.OAuthMode),
		OAuthClientName: cfg.OAuthClientName,
		CallbackURL:     cfg.OAuthCallbackURL,
		ServiceAccount:  cfg.OAuthServiceAccount,
		TokenWait:       cfg.TokenWaitTimeout,
		Logger:          log,
	}
	if err := opts.Validate(); err != nil {
		return invalid(fmt.Errorf("configuration: %w", err))
	}

	clients, err := o.clients(opts.Mode)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	log.Info("generating secrets", "namespace", namespace, "oauthMode", string(opts.Mode))
	res, err := secrets.Sync(ctx, clients, opts)
	if res != nil {
		summary = res.Summary()
		fmt.Fprintln(out, summary)
	}
	var verr *secrets.ValidationError
	switch {
	case err == nil:
		log.Info("finished", slog.String("summary", summary))
		return nil
	case errors.As(err, &verr):
		log.Error("malformed existing secrets; nothing was changed", "problems", len(verr.Problems))
		return invalid(fmt.Errorf("secrets: %w", err))
	case errors.Is(err, secrets.ErrTokenTimeout):
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("secrets: %w", err)}
	case errors.Is(err, context.DeadlineExceeded):
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("secrets: not done within TIMEOUT=%s: %w", cfg.Timeout, err)}
	default:
		return fmt.Errorf("secrets: %w", err)
	}
}

// clients returns the given clients or builds them from in-cluster config or KUBECONFIG. The dynamic
// client is only needed for the OAuthClient.
func (o *SecretsOptions) clients(mode secrets.Mode) (secrets.Clients, error) {
	c := secrets.Clients{Kube: o.Kube, Dynamic: o.Dynamic}
	if c.Kube != nil && (c.Dynamic != nil || mode != secrets.ModeOAuthClient) {
		return c, nil
	}
	rc, err := kube.RESTConfig()
	if err != nil {
		return c, invalid(fmt.Errorf("the secrets command needs the Kubernetes API: %w", err))
	}
	if c.Kube == nil {
		if c.Kube, err = kubernetes.NewForConfig(rc); err != nil {
			return c, invalid(fmt.Errorf("Kubernetes client: %w", err))
		}
	}
	if c.Dynamic == nil && mode == secrets.ModeOAuthClient {
		if c.Dynamic, err = dynamic.NewForConfig(rc); err != nil {
			return c, invalid(fmt.Errorf("Kubernetes dynamic client: %w", err))
		}
	}
	return c, nil
}
