package job

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/sethvargo/go-envconfig"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/config"
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
	// Dynamic, when set, replaces the client built from in-cluster config or KUBECONFIG.
	Dynamic dynamic.Interface
}

// Run creates the missing Secrets, fills missing keys and sets up the OAuth client. The one-line
// summary goes to out. Exit codes: 2 for a malformed existing value, a missing or unusable OIDC client
// Secret, or bad configuration (nothing was written), 124 when the ServiceAccount token did not come
// in time, 1 otherwise.
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
		recordOutcome(ctx, o.Env, o.Dynamic, "", "GenerateSecrets", msg, err != nil, nil)
	}()

	cfg, err := config.LoadSecrets(ctx, o.Env)
	if err != nil {
		return invalid(err)
	}
	log := NewLogger(o.Log, cfg.LogFormat)

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
			PostgresCAFile:  cfg.PostgresCAFile,
		},
		Mode:             secrets.Mode(cfg.OAuthMode),
		OAuthClientName:  cfg.OAuthClientName,
		CallbackURL:      cfg.OAuthCallbackURL,
		ServiceAccount:   cfg.OAuthServiceAccount,
		OIDCClientSecret: cfg.OIDCClientSecretName,
		TokenWait:        cfg.TokenWaitTimeout,
		Logger:           log,
	}
	if err := opts.Validate(); err != nil {
		return invalid(fmt.Errorf("configuration: %w", err))
	}

	dc, _, err := kubeClient(o.Dynamic)
	if err != nil {
		return invalid(fmt.Errorf("the secrets command needs the Kubernetes API: %w", err))
	}
	clients := secrets.Clients{Dynamic: dc}

	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	log.Info("generating secrets", "namespace", namespace, "oauthMode", string(opts.Mode))
	res, err := secrets.Sync(ctx, clients, opts)
	if res != nil {
		summary = res.Summary()
		fmt.Fprintln(out, summary)
	}
	if err == nil && cfg.DatabaseRoles {
		err = syncRoleSecrets(ctx, dc, namespace, opts.Settings, log, out, &summary)
	}
	var verr *secrets.ValidationError
	var oerr *secrets.OIDCClientError
	switch {
	case err == nil:
		log.Info("finished", slog.String("summary", summary))
		return nil
	case errors.As(err, &verr):
		log.Error("malformed existing secrets; nothing was changed", "problems", len(verr.Problems))
		return invalid(fmt.Errorf("secrets: %w", err))
	case errors.As(err, &oerr):
		log.Error("the OIDC client Secret is missing or unusable; nothing was changed", "secret", cfg.OIDCClientSecretName, "problems", len(oerr.Problems))
		return invalid(fmt.Errorf("secrets: %w", err))
	case errors.Is(err, secrets.ErrTokenTimeout):
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("secrets: %w", err)}
	case errors.Is(err, context.DeadlineExceeded):
		return &ExitError{Code: ExitTimeout, Err: fmt.Errorf("secrets: not done within TIMEOUT=%s: %w", cfg.Timeout, err)}
	default:
		return fmt.Errorf("secrets: %w", err)
	}
}
