package secrets

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// Mode is how the backend's OAuth client is set up.
type Mode string

const (
	// ModeOAuthClient: an OAuthClient created by a cluster admin (gitops/cluster/); the job sets its
	// secret and redirect URI.
	ModeOAuthClient Mode = "oauthclient"
	// ModeServiceAccount: the ServiceAccount litemaas-oauth is the OAuth client; its token is the
	// client secret. Needs no cluster admin.
	ModeServiceAccount Mode = "serviceaccount"
)

// Defaults of Options.
const (
	DefaultOAuthClientName = "litemaas-oauth-client"
	DefaultServiceAccount  = "litemaas-oauth"
	DefaultTokenSecret     = "litemaas-oauth-token"
	DefaultTokenWait       = time.Minute
	// FieldManager names the job in managedFields.
	FieldManager = "litemaas-sync"
	// PlaceholderDomain is the apps-domain placeholder of the base manifests, which every overlay
	// replaces.
	PlaceholderDomain = "CLUSTER_APPS_DOMAIN"
)

// ErrTokenTimeout: the token controller did not fill the ServiceAccount token Secret in time.
var ErrTokenTimeout = errors.New("timed out waiting for the ServiceAccount token")

// ErrOAuthClientUnavailable: the OAuthClient does not exist or the job may not read or change it.
var ErrOAuthClientUnavailable = errors.New("OAuthClient unavailable")

// Options configure Sync.
type Options struct {
	// Namespace holds the Secrets (the stack's namespace).
	Namespace string
	Settings  Settings
	Mode      Mode
	// OAuthClientName, CallbackURL: oauthclient mode. CallbackURL is the backend's
	// OAUTH_CALLBACK_URL, the only redirect URI the OAuthClient gets.
	OAuthClientName string
	CallbackURL     string
	// OIDCClientSecret: oidc mode, the user's Secret with the provider's client id and secret.
	OIDCClientSecret string
	// ServiceAccount, TokenSecret, TokenWait, PollInterval: serviceaccount mode.
	ServiceAccount string
	TokenSecret    string
	TokenWait      time.Duration
	PollInterval   time.Duration
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
	// Logger receives progress; it never gets a secret value. Nil discards.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.Mode == "" {
		o.Mode = ModeOAuthClient
	}
	if o.OAuthClientName == "" {
		o.OAuthClientName = DefaultOAuthClientName
	}
	if o.ServiceAccount == "" {
		o.ServiceAccount = DefaultServiceAccount
	}
	if o.TokenSecret == "" {
		o.TokenSecret = DefaultTokenSecret
	}
	if o.OIDCClientSecret == "" {
		o.OIDCClientSecret = DefaultOIDCClientSecret
	}
	if o.TokenWait <= 0 {
		o.TokenWait = DefaultTokenWait
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 500 * time.Millisecond
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the options (after defaults), with messages in terms of the job's environment.
func (o Options) Validate() error {
	o.setDefaults()
	var errs []error
	if o.Namespace == "" {
		errs = append(errs, errors.New("NAMESPACE is empty: set it to the stack's namespace"))
	}
	if err := o.Settings.Validate(); err != nil {
		errs = append(errs, err)
	}
	switch o.Mode {
	case ModeOAuthClient:
		errs = append(errs, checkCallbackURL(o.CallbackURL))
	case ModeServiceAccount, ModeOIDC:
	default:
		errs = append(errs, fmt.Errorf("OAUTH_MODE %q: want %s, %s or %s", o.Mode, ModeOAuthClient, ModeServiceAccount, ModeOIDC))
	}
	return errors.Join(errs...)
}

func checkCallbackURL(v string) error {
	if v == "" {
		return errors.New("OAUTH_CALLBACK_URL is required with OAUTH_MODE=oauthclient: https://<host of Route litemaas>/api/auth/callback")
	}
	if strings.Contains(v, PlaceholderDomain) {
		return fmt.Errorf("OAUTH_CALLBACK_URL %q still holds the base's placeholder domain: the overlay's apps-domain replacement does not reach Job litemaas-secrets", v)
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("OAUTH_CALLBACK_URL %q must be an https URL such as https://litemaas-litemaas.apps.example.com/api/auth/callback", v)
	}
	return nil
}

// Clients are the API clients Sync uses.
type Clients struct {
	// Dynamic reaches the Secrets, the ServiceAccount and the OAuthClient.
	Dynamic dynamic.Interface
}

// Action is what happened to a Secret.
type Action string

const (
	Created   Action = "created"
	Filled    Action = "filled"    // missing keys added
	Updated   Action = "updated"   // an existing value replaced (OAUTH_CLIENT_SECRET, serviceaccount mode)
	Annotated Action = "annotated" // only the Argo CD annotations added
	Unchanged Action = "unchanged"
)

// SecretResult is the outcome for one Secret; it holds key names, never values.
type SecretResult struct {
	Name     string
	Action   Action
	Added    []string
	Replaced []string
}

// OAuthResult is the outcome of the OAuth step.
type OAuthResult struct {
	Mode Mode
	// Name of the OAuthClient or the ServiceAccount.
	Name string
	// Changes made, e.g. "secret", "redirect" (oauthclient) or "serviceaccount created",
	// "token secret created" (serviceaccount). Empty: nothing to do.
	Changes []string
	// Done is false when the step failed or did not run.
	Done bool
}

// Result is what Sync did.
type Result struct {
	Secrets []SecretResult
	OAuth   OAuthResult
}

// Summary is one line naming what changed, e.g.
// "secrets: created postgres-secret(2 keys), unchanged litellm-secret; oauthclient litemaas-oauth-client secret+redirect set".
func (r *Result) Summary() string {
	var parts []string
	for _, s := range r.Secrets {
		switch s.Action {
		case Created, Filled:
			parts = append(parts, fmt.Sprintf("%s %s(%s)", s.Action, s.Name, plural(len(s.Added), "key")))
		case Updated:
			detail := strings.Join(s.Replaced, "+") + " replaced"
			if len(s.Added) > 0 {
				detail = plural(len(s.Added), "key") + " added, " + detail
			}
			parts = append(parts, fmt.Sprintf("updated %s(%s)", s.Name, detail))
		default:
			parts = append(parts, fmt.Sprintf("%s %s", s.Action, s.Name))
		}
	}
	out := "secrets: " + strings.Join(parts, ", ")
	if r.OAuth.Mode == "" {
		return out
	}
	out += fmt.Sprintf("; %s %s ", r.OAuth.Mode, r.OAuth.Name)
	switch {
	case !r.OAuth.Done:
		out += "NOT set"
	case len(r.OAuth.Changes) == 0:
		out += "unchanged"
	case r.OAuth.Mode == ModeOAuthClient:
		out += strings.Join(r.OAuth.Changes, "+") + " set"
	default:
		out += strings.Join(r.OAuth.Changes, ", ")
	}
	return out
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// Sync reads the Secrets of the contract, validates all of them, then creates the missing ones and
// fills missing keys, and finally sets up the OAuth client of the chosen mode.
//
// A *ValidationError means nothing was written. An OAuth error (ErrOAuthClientUnavailable,
// ErrTokenTimeout) comes with a Result: the Secrets were written all the same, so that the rest of the
// stack can start. Errors never contain secret values.
func Sync(ctx context.Context, c Clients, o Options) (*Result, error) {
	o.setDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	s := &syncer{c: c, o: o, log: o.Logger}
	res, err := s.run(ctx)
	return res, s.red.wrap(err)
}

type syncer struct {
	c   Clients
	o   Options
	log *slog.Logger
	red redactor
}

// run reads, validates, then writes: nothing is written unless every Secret read is valid.
func (s *syncer) run(ctx context.Context) (*Result, error) {
	// 1. Read everything first.
	existing, token, oidcClient, err := s.readAll(ctx)
	if err != nil {
		return nil, err
	}

	// 2. Validate everything before the first write.
	plan, err := s.validate(existing, token)
	if err != nil {
		return nil, err
	}
	var oidcID, oidcSecret string
	if s.o.Mode == ModeOIDC {
		var p []Problem
		if oidcID, oidcSecret, p = checkOIDCClient(oidcClient, s.o.OIDCClientSecret); len(p) > 0 {
			return nil, &OIDCClientError{Namespace: s.o.Namespace, Problems: p}
		}
	}
	s.red.addPlan(plan)
	for _, w := range plan.Warnings {
		s.log.Warn("weak existing value", "detail", w)
	}

	res := &Result{OAuth: OAuthResult{Mode: s.o.Mode}}

	// 3. serviceaccount mode: the token first, so that backend-secret is written once. If it does
	// not come, the Secrets are still written (without OAUTH_CLIENT_SECRET if it is missing).
	var oauthErr error
	if s.o.Mode == ModeServiceAccount {
		oauthErr = s.useToken(ctx, token, plan, res)
	}

	// oidc mode: the provider's client, copied as it is; the Secrets are then written once.
	if s.o.Mode == ModeOIDC {
		res.OAuth.Name = s.o.OIDCClientSecret
		res.OAuth.Changes = s.applyOIDCClient(plan, oidcID, oidcSecret)
	}

	// 4. Write.
	if err := s.write(ctx, plan, res, oauthErr); err != nil {
		return res, err
	}

	// 5. oauthclient mode: the OAuthClient follows backend-secret.
	if s.o.Mode == ModeOAuthClient {
		res.OAuth.Name = s.o.OAuthClientName
		secret, _ := plan.Value(BackendSecret, KeyOAuthClientSecret)
		res.OAuth.Changes, oauthErr = s.syncOAuthClient(ctx, secret)
		res.OAuth.Done = oauthErr == nil
	}
	return res, oauthErr
}

// readAll reads the contract's Secrets, and the token or OIDC client Secret of the mode (nil when
// missing or not used), and hands every value read to the redactor before anything can log it.
func (s *syncer) readAll(ctx context.Context) (existing map[string]*kube.Secret, token, oidcClient *kube.Secret, err error) {
	existing = map[string]*kube.Secret{}
	for _, sc := range Contract {
		sec, err := s.getSecret(ctx, sc.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		existing[sc.Name] = sec
		s.red.addSecret(sec)
	}
	if s.o.Mode == ModeServiceAccount {
		if token, err = s.getSecret(ctx, s.o.TokenSecret); err != nil {
			return nil, nil, nil, err
		}
		s.red.addSecret(token)
	}
	if s.o.Mode == ModeOIDC {
		if oidcClient, err = s.getSecret(ctx, s.o.OIDCClientSecret); err != nil {
			return nil, nil, nil, err
		}
		s.red.addSecret(oidcClient)
	}
	return existing, token, oidcClient, nil
}

// validate computes the plan and gathers every problem of the Secrets and of the token Secret into
// one *ValidationError, so that a user fixes them all in one go.
func (s *syncer) validate(existing map[string]*kube.Secret, token *kube.Secret) (*Plan, error) {
	settings := s.o.Settings
	settings.ExternalOAuthClientSecret = s.o.Mode == ModeServiceAccount || s.o.Mode == ModeOIDC
	plan, err := Compute(existing, settings, s.o.Rand)
	var verr *ValidationError
	if err != nil && !errors.As(err, &verr) {
		return nil, err
	}
	if p := checkTokenSecret(token, s.o.TokenSecret, s.o.ServiceAccount); len(p) > 0 {
		if verr == nil {
			verr = &ValidationError{}
		}
		verr.Problems = append(verr.Problems, p...)
	}
	if verr != nil {
		return nil, verr
	}
	return plan, nil
}

// useToken gets the ServiceAccount's token (creating what it needs) and puts it into the plan as
// backend-secret's OAUTH_CLIENT_SECRET. Its error is the OAuth error of the run: the Secrets are
// written all the same.
func (s *syncer) useToken(ctx context.Context, token *kube.Secret, plan *Plan, res *Result) error {
	res.OAuth.Name = s.o.ServiceAccount
	tok, changes, err := s.ensureToken(ctx, token)
	res.OAuth.Changes = changes
	if err != nil {
		return err
	}
	s.red.add(tok)
	if plan.SetOAuthClientSecret(tok) {
		s.log.Warn("backend-secret OAUTH_CLIENT_SECRET differed from the ServiceAccount token; replacing it with the token",
			"secret", BackendSecret, "key", KeyOAuthClientSecret, "serviceAccount", s.o.ServiceAccount)
	}
	return nil
}

// write applies the plan's Secrets; in serviceaccount and oidc modes, writing backend-secret is what
// completes the OAuth setup.
func (s *syncer) write(ctx context.Context, plan *Plan, res *Result, oauthErr error) error {
	for _, sp := range plan.Secrets {
		r, err := s.apply(ctx, sp)
		if err != nil {
			return err
		}
		res.Secrets = append(res.Secrets, r)
		if s.o.Mode == ModeServiceAccount && sp.Name == BackendSecret && oauthErr == nil {
			if r.Action != Unchanged && (slices.Contains(sp.Added, KeyOAuthClientSecret) || slices.Contains(sp.Replaced, KeyOAuthClientSecret)) {
				res.OAuth.Changes = append(res.OAuth.Changes, "OAUTH_CLIENT_SECRET set from token")
			}
			res.OAuth.Done = true
		}
		if s.o.Mode == ModeOIDC && sp.Name == BackendSecret {
			res.OAuth.Done = true
		}
	}
	return nil
}

// getSecret returns the Secret, or nil when it does not exist.
func (s *syncer) getSecret(ctx context.Context, name string) (*kube.Secret, error) {
	sec, err := kube.Secrets(s.c.Dynamic, s.o.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return sec, nil
	case apierrors.IsNotFound(err):
		return nil, nil
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("reading Secret %s/%s: the job's ServiceAccount needs `get` on it (Role litemaas-secrets): %w", s.o.Namespace, name, err)
	default:
		return nil, fmt.Errorf("reading Secret %s/%s: %w", s.o.Namespace, name, err)
	}
}

// apply creates or updates one Secret as planned, and only when something changes.
func (s *syncer) apply(ctx context.Context, sp *SecretPlan) (SecretResult, error) {
	r := SecretResult{Name: sp.Name, Added: sp.Added, Replaced: sp.Replaced}
	secrets := kube.Secrets(s.c.Dynamic, s.o.Namespace)
	if sp.Existing == nil {
		sec := &kube.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:        sp.Name,
				Namespace:   s.o.Namespace,
				Labels:      map[string]string{LabelPartOf: "litemaas", LabelManagedBy: ManagedBy},
				Annotations: argoAnnotations(),
			},
			Type: kube.SecretTypeOpaque,
			Data: sp.Data,
		}
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{FieldManager: FieldManager}); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return r, fmt.Errorf("creating Secret %s: it was created by someone else while the job ran; the next attempt starts over: %w", sp.Name, err)
			}
			return r, fmt.Errorf("creating Secret %s/%s: %w", s.o.Namespace, sp.Name, err)
		}
		r.Action = Created
		s.log.Info("secret created", "secret", sp.Name, "keys", sp.Added)
		return r, nil
	}

	missing := missingAnnotations(sp.Existing)
	if !sp.DataChanged() && len(missing) == 0 {
		r.Action = Unchanged
		s.log.Info("secret unchanged", "secret", sp.Name)
		return r, nil
	}
	sec := sp.Existing.DeepCopy()
	sec.Data = sp.Data
	if sec.Annotations == nil {
		sec.Annotations = map[string]string{}
	}
	for _, k := range missing {
		sec.Annotations[k] = argoAnnotations()[k]
	}
	// Update carries the resourceVersion read before validation: if the Secret changed since, the
	// API server refuses, instead of the job overwriting what it did not validate.
	if _, err := secrets.Update(ctx, sec, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
		if apierrors.IsConflict(err) {
			return r, fmt.Errorf("updating Secret %s: it changed while the job ran; the next attempt starts over: %w", sp.Name, err)
		}
		return r, fmt.Errorf("updating Secret %s/%s: %w", s.o.Namespace, sp.Name, err)
	}
	switch {
	case len(sp.Replaced) > 0:
		r.Action = Updated
	case len(sp.Added) > 0:
		r.Action = Filled
	default:
		r.Action = Annotated
	}
	s.log.Info("secret "+string(r.Action), "secret", sp.Name, "keysAdded", sp.Added, "keysReplaced", sp.Replaced, "annotationsAdded", missing)
	return r, nil
}

func argoAnnotations() map[string]string {
	return map[string]string{
		AnnotationCompareOptions: "IgnoreExtraneous",
		AnnotationSyncOptions:    "Prune=false",
	}
}

// missingAnnotations returns the Argo CD annotations the Secret lacks. A present annotation is left as
// it is, whatever its value: somebody set it on purpose.
func missingAnnotations(sec *kube.Secret) []string {
	var out []string
	for _, k := range []string{AnnotationCompareOptions, AnnotationSyncOptions} {
		if _, ok := sec.Annotations[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}
