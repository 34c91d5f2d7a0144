package secrets

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
)

// Problem is one malformed existing value. It names the Secret and key and says what the value must
// be, never what it is.
type Problem struct {
	Secret string
	// Key is empty for a problem of the whole Secret (its type, for instance).
	Key     string
	Message string
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.Secret + ": " + p.Message
	}
	return p.Secret + "/" + p.Key + ": " + p.Message
}

// ValidationError reports every malformed existing value at once. When Sync returns it, nothing was
// written. Retrying cannot help: somebody has to fix or delete the values named.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d malformed value(s) in the existing Secrets; nothing was changed. Fix each value, or delete the key "+
		"so that it is generated (never delete LITELLM_SALT_KEY or a password a database already uses):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Plan is what a run writes: for each Secret of the contract, the complete data it must hold.
type Plan struct {
	// Secrets in the order of Contract.
	Secrets []*SecretPlan
	// Warnings are about existing values that work but are weak; they never name a value.
	Warnings []string
}

// SecretPlan is the outcome for one Secret.
type SecretPlan struct {
	Name string
	// Existing is the Secret as read, nil when it does not exist.
	Existing *corev1.Secret
	// Data is the complete data the Secret must hold: the existing keys (including keys outside the
	// contract, which are kept untouched) plus the added ones.
	Data map[string][]byte
	// Added are the keys that were missing, Replaced the existing keys whose value changes (only
	// OAUTH_CLIENT_SECRET in serviceaccount mode). Sorted by the contract's order.
	Added    []string
	Replaced []string
}

// DataChanged reports whether the Secret must be created or its data updated.
func (p *SecretPlan) DataChanged() bool {
	return p.Existing == nil || len(p.Added) > 0 || len(p.Replaced) > 0
}

// Secret returns the plan of the named Secret, or nil.
func (p *Plan) Secret(name string) *SecretPlan {
	for _, s := range p.Secrets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Value returns the planned value of secret/key.
func (p *Plan) Value(secret, key string) (string, bool) {
	s := p.Secret(secret)
	if s == nil {
		return "", false
	}
	v, ok := s.Data[key]
	return string(v), ok
}

// SetOAuthClientSecret makes backend-secret's OAUTH_CLIENT_SECRET equal value (serviceaccount mode:
// the ServiceAccount's token). Here "never overwrite" gives way: the OAuth server only accepts a
// current token of the ServiceAccount, so a different value (an old token, a value from the
// oauthclient mode) is replaced. It reports whether an existing value was replaced.
func (p *Plan) SetOAuthClientSecret(value string) (replaced bool) {
	s := p.Secret(BackendSecret)
	old, ok := s.Data[KeyOAuthClientSecret]
	switch {
	case ok && string(old) == value:
		return false
	case ok:
		if !slices.Contains(s.Replaced, KeyOAuthClientSecret) {
			s.Replaced = append(s.Replaced, KeyOAuthClientSecret)
		}
		replaced = true
	default:
		s.Added = append(s.Added, KeyOAuthClientSecret)
		sortKeys(BackendSecret, s.Added)
	}
	s.Data[KeyOAuthClientSecret] = []byte(value)
	return replaced
}

// Validate checks the settings the derived values are built from.
func (s Settings) Validate() error {
	var errs []error
	if s.PostgresHost == "" || strings.ContainsAny(s.PostgresHost, "/@:?# ") {
		errs = append(errs, errors.New("POSTGRES_HOST must be a host name such as postgres"))
	}
	if s.PostgresPort < 1 || s.PostgresPort > 65535 {
		errs = append(errs, errors.New("POSTGRES_PORT must be a port number such as 5432"))
	}
	if msg := checkText([]byte(s.PostgresUser), true); msg != "" {
		errs = append(errs, fmt.Errorf("POSTGRES_USER %s", msg))
	}
	for name, db := range map[string]string{"BACKEND_DATABASE": s.BackendDatabase, "LITELLM_DATABASE": s.LiteLLMDatabase} {
		if msg := checkText([]byte(db), true); msg != "" || strings.ContainsAny(db, "/?#") {
			errs = append(errs, fmt.Errorf("%s must be a database name such as litemaas_db", name))
		}
	}
	if s.PostgresCAFile != "" && (!strings.HasPrefix(s.PostgresCAFile, "/") || strings.ContainsAny(s.PostgresCAFile, "?&#=% ")) {
		errs = append(errs, errors.New("POSTGRES_CA_FILE must be an absolute file path without ?, &, #, =, % or spaces, e.g. /etc/litemaas/postgres-ca/ca.crt"))
	}
	if s.BackendDatabase != "" && s.BackendDatabase == s.LiteLLMDatabase {
		errs = append(errs, errors.New("BACKEND_DATABASE and LITELLM_DATABASE must differ: LiteLLM's migrations may drop the backend's tables"))
	}
	return errors.Join(errs...)
}

// Compute validates the existing Secrets (by name; a missing Secret is absent or nil) and returns
// the plan that fills every missing key, reading randomness from rnd. It returns a *ValidationError
// listing every malformed value, and then no plan. It never changes existing.
func Compute(existing map[string]*corev1.Secret, s Settings, rnd io.Reader) (*Plan, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("settings: %w", err)
	}
	c := &computation{existing: existing, settings: s, rnd: rnd, bad: map[string]bool{}, plan: &Plan{}}
	c.checkExisting()
	c.bases()
	c.derived()
	if c.err != nil {
		return nil, c.err
	}
	c.checkImmutable()
	if len(c.problems) > 0 {
		sortProblems(c.problems)
		return nil, &ValidationError{Problems: c.problems}
	}
	return c.plan, nil
}

// computation carries the state of one Compute call.
type computation struct {
	existing map[string]*corev1.Secret
	settings Settings
	rnd      io.Reader
	plan     *Plan
	problems []Problem
	// bad marks "secret/key" values found malformed, so that the checks of values derived from them
	// do not pile up follow-on problems.
	bad map[string]bool
	err error
}

func (c *computation) problem(secret, key, format string, a ...any) {
	c.problems = append(c.problems, Problem{Secret: secret, Key: key, Message: fmt.Sprintf(format, a...)})
	if key != "" {
		c.bad[secret+"/"+key] = true
	}
}

// current returns the existing value of secret/key.
func (c *computation) current(secret, key string) (string, bool) {
	sec := c.existing[secret]
	if sec == nil {
		return "", false
	}
	v, ok := sec.Data[key]
	return string(v), ok
}

// usable returns the existing value of secret/key when it exists and passed the checks so far.
func (c *computation) usable(secret, key string) (string, bool) {
	v, ok := c.current(secret, key)
	return v, ok && !c.bad[secret+"/"+key]
}

// checkExisting sets up one SecretPlan per Secret of the contract and applies the checks every
// value must pass.
func (c *computation) checkExisting() {
	for _, sc := range Contract {
		sp := &SecretPlan{Name: sc.Name, Existing: c.existing[sc.Name], Data: map[string][]byte{}}
		c.plan.Secrets = append(c.plan.Secrets, sp)
		if sp.Existing == nil {
			continue
		}
		for k, v := range sp.Existing.Data {
			sp.Data[k] = slices.Clone(v)
		}
		if t := sp.Existing.Type; t != "" && t != corev1.SecretTypeOpaque {
			c.problem(sc.Name, "", "has type %s, want %s; delete it (it is re-created) or fix its type", t, corev1.SecretTypeOpaque)
		}
		for _, k := range sc.Keys {
			if sc.Name == BackendSecret && k == KeyOAuthClientSecret && c.settings.ExternalOAuthClientSecret {
				continue // replaced by the token anyway
			}
			v, ok := sp.Existing.Data[k]
			if !ok {
				continue
			}
			if msg := checkText(v, tokenKeys[k]); msg != "" {
				c.problem(sc.Name, k, "%s", msg)
			}
		}
	}
}

// tokenKeys are the keys whose values must not contain whitespace at all: keys, secrets and names
// that are sent in headers or split by the consumer.
var tokenKeys = map[string]bool{
	KeyPostgresUser: true, KeyMasterKey: true, KeySaltKey: true, KeyJWTSecret: true,
	KeyOAuthClientSecret: true, KeyAdminAPIKeys: true, KeyLiteLLMAPIKey: true,
	KeyDatabaseURL: true, KeyLiteLLMDatabaseURL: true,
}

// checkText returns why v is not a usable value, or "".
func checkText(v []byte, noSpace bool) string {
	s := string(v)
	switch {
	case len(v) == 0:
		return "is empty"
	case !utf8.Valid(v):
		return "is not valid UTF-8 text"
	case strings.TrimSpace(s) != s:
		return "has leading or trailing whitespace (often the newline of `echo ... | base64`)"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
		if noSpace && unicode.IsSpace(r) {
			return "contains whitespace"
		}
	}
	return ""
}

// keep takes the existing value of secret/key, or generates one with gen and records it as added.
// It returns the value and whether it was generated.
func (c *computation) keep(secret, key string, gen func() (string, error)) (string, bool) {
	if v, ok := c.current(secret, key); ok {
		return v, false
	}
	if c.err != nil {
		return "", true
	}
	v, err := gen()
	if err != nil {
		c.err = fmt.Errorf("generating %s/%s: %w", secret, key, err)
		return "", true
	}
	c.set(secret, key, v)
	return v, true
}

// set records a value for a missing key.
func (c *computation) set(secret, key, value string) {
	sp := c.plan.Secret(secret)
	sp.Data[key] = []byte(value)
	sp.Added = append(sp.Added, key)
	sortKeys(secret, sp.Added)
}

func (c *computation) random(prefix string, n int) func() (string, error) {
	return func() (string, error) {
		v, err := randomString(c.rnd, n, alphanumeric)
		return prefix + v, err
	}
}

// bases fills and checks the values nothing else is derived from.
func (c *computation) bases() {
	c.keep(PostgresSecret, KeyPostgresUser, func() (string, error) { return c.settings.PostgresUser, nil })
	c.keep(PostgresSecret, KeyPostgresPassword, c.random("", passwordLength))
	for _, rp := range rolePasswords {
		c.keep(PostgresSecret, rp.key, c.random("", passwordLength))
	}

	if mk, generated := c.keep(LiteLLMSecret, KeyMasterKey, c.random(MasterKeyPrefix, masterKeyLength)); !generated && !c.bad[LiteLLMSecret+"/"+KeyMasterKey] {
		switch {
		case !strings.HasPrefix(mk, MasterKeyPrefix) || len(mk) == len(MasterKeyPrefix):
			c.problem(LiteLLMSecret, KeyMasterKey, "must start with %q followed by a random key (LiteLLM refuses it otherwise)", MasterKeyPrefix)
		case len(mk) < 32:
			c.warn(LiteLLMSecret, KeyMasterKey, "is shorter than 32 characters")
		}
	}
	c.keep(LiteLLMSecret, KeySaltKey, c.random("", saltKeyLength))

	if jwt, generated := c.keep(BackendSecret, KeyJWTSecret, c.random("", jwtSecretLength)); !generated && !c.bad[BackendSecret+"/"+KeyJWTSecret] && len(jwt) < 32 {
		c.warn(BackendSecret, KeyJWTSecret, "is shorter than 32 characters")
	}
	if !c.settings.ExternalOAuthClientSecret {
		c.keep(BackendSecret, KeyOAuthClientSecret, c.random("", oauthClientSecretLength))
	}
	if keys, generated := c.keep(BackendSecret, KeyAdminAPIKeys, c.random(AdminKeyPrefix, adminKeyLength)); !generated && !c.bad[BackendSecret+"/"+KeyAdminAPIKeys] {
		// The backend splits on commas and does not trim: " ltm_admin_x" never matches.
		for i, entry := range strings.Split(keys, ",") {
			switch {
			case entry == "":
				c.problem(BackendSecret, KeyAdminAPIKeys, "entry %d is empty (no leading, trailing or double commas)", i+1)
			case !strings.HasPrefix(entry, AdminKeyPrefix) || len(entry) == len(AdminKeyPrefix):
				c.problem(BackendSecret, KeyAdminAPIKeys, "entry %d must start with %q followed by a random key (the backend ignores it otherwise)", i+1, AdminKeyPrefix)
			}
		}
	}
}

func (c *computation) warn(secret, key, msg string) {
	c.plan.Warnings = append(c.plan.Warnings, fmt.Sprintf("%s/%s %s; consider replacing it", secret, key, msg))
}

// dbURL is the expectation for a database URL: its database, and the role (and the postgres-secret
// key of its password) it connects as.
type dbURL struct {
	secret, key string
	database    string
	sslDisable  bool
	role        string
	passwordKey string
}

// derived fills and checks the values built from the bases.
func (c *computation) derived() {
	user, userOK := c.usable(PostgresSecret, KeyPostgresUser)
	if _, exists := c.current(PostgresSecret, KeyPostgresUser); !exists {
		user, userOK = c.settings.PostgresUser, true
	}
	_, passwordExisted := c.current(PostgresSecret, KeyPostgresPassword)
	password, passwordOK := c.plan.Value(PostgresSecret, KeyPostgresPassword)
	passwordOK = passwordOK && !c.bad[PostgresSecret+"/"+KeyPostgresPassword]

	urls := c.roleURLs()

	// A database URL without its password: the database was initialised with a password that is
	// gone from postgres-secret. A new one would lock everybody out, so refuse rather than guess.
	if !passwordExisted {
		var holders []string
		for _, u := range urls {
			if v, ok := c.current(u.secret, u.key); ok && c.urlUser(v) == user {
				holders = append(holders, u.secret+"/"+u.key)
			}
		}
		if len(holders) > 0 {
			c.problem(PostgresSecret, KeyPostgresPassword, "is missing, but %s already hold(s) a database password: a new password would not match "+
				"the database. Restore POSTGRES_PASSWORD (the password in those URLs), or delete those keys too if the database is new",
				strings.Join(holders, ", "))
			passwordOK = false
		}
	}
	c.fillRoleURLs(user, password, userOK && passwordOK)

	// The backend calls LiteLLM's admin API with the master key.
	_, masterExisted := c.current(LiteLLMSecret, KeyMasterKey)
	master, _ := c.plan.Value(LiteLLMSecret, KeyMasterKey)
	if apiKey, ok := c.current(BackendSecret, KeyLiteLLMAPIKey); ok {
		switch {
		case !masterExisted:
			c.problem(LiteLLMSecret, KeyMasterKey, "is missing, but %s/%s exists: restore LITELLM_MASTER_KEY (it must equal %s/%s), or delete %s/%s too",
				BackendSecret, KeyLiteLLMAPIKey, BackendSecret, KeyLiteLLMAPIKey, BackendSecret, KeyLiteLLMAPIKey)
		case c.bad[LiteLLMSecret+"/"+KeyMasterKey] || c.bad[BackendSecret+"/"+KeyLiteLLMAPIKey]:
		case apiKey != master:
			c.problem(BackendSecret, KeyLiteLLMAPIKey, "must equal %s/%s (it differs)", LiteLLMSecret, KeyMasterKey)
		}
	} else {
		c.set(BackendSecret, KeyLiteLLMAPIKey, master)
	}
}

// buildURL returns postgresql://user:password@host:port/database, with ?sslmode=disable for the
// backend (with NODE_ENV=production it would otherwise ask the non-TLS PostgreSQL for TLS).
func (c *computation) buildURL(u dbURL, user, password string) string {
	out := url.URL{
		Scheme: "postgresql",
		User:   url.UserPassword(user, password),
		Host:   net.JoinHostPort(c.settings.PostgresHost, strconv.Itoa(c.settings.PostgresPort)),
		Path:   "/" + u.database,
	}
	if u.sslDisable {
		out.RawQuery = "sslmode=disable"
	}
	return out.String()
}

// urlShape is the expected form of a URL, with key names in place of the password.
func (c *computation) urlShape(want dbURL) string {
	shape := fmt.Sprintf("postgresql://%s:<%s/%s>@%s/%s", want.role, PostgresSecret, want.passwordKey,
		net.JoinHostPort(c.settings.PostgresHost, strconv.Itoa(c.settings.PostgresPort)), want.database)
	if want.sslDisable {
		shape += "?sslmode=disable"
	}
	return shape
}

// urlUser returns the user of a database URL, or "" (never an error: it would quote the password).
func (c *computation) urlUser(v string) string {
	u, err := url.Parse(v)
	if err != nil || u.User == nil {
		return ""
	}
	return u.User.Username()
}

// urlProblem checks an existing database URL against the user and password it must carry and the
// settings; it returns why it does not match, or "". The reasons never quote the URL.
func (c *computation) urlProblem(want dbURL, v, user, password string) string {
	// Never show url.Parse's error: it quotes the whole URL, password included.
	u, err := url.Parse(v)
	if err != nil || u.Opaque != "" {
		return "is not a parseable URL (special characters in the password must be percent-encoded)"
	}
	if u.Scheme != "postgresql" && u.Scheme != "postgres" {
		return "is not a postgresql:// URL"
	}
	if u.User == nil || u.User.Username() != user {
		return "its user is not " + user
	}
	if pw, ok := u.User.Password(); !ok || pw != password {
		return fmt.Sprintf("its password differs from %s/%s", PostgresSecret, want.passwordKey)
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	if !strings.EqualFold(u.Hostname(), c.settings.PostgresHost) || port != strconv.Itoa(c.settings.PostgresPort) {
		return "its host or port differs (if the URL is right, set the job's POSTGRES_HOST and POSTGRES_PORT to match)"
	}
	if strings.TrimPrefix(u.Path, "/") != want.database {
		return "it names another database"
	}
	if want.sslDisable && u.Query().Get("sslmode") != "disable" {
		return "it lacks sslmode=disable (the backend would ask the non-TLS PostgreSQL for TLS)"
	}
	return ""
}

// checkImmutable reports immutable Secrets the plan would have to change.
func (c *computation) checkImmutable() {
	for _, sp := range c.plan.Secrets {
		if sp.Existing != nil && sp.Existing.Immutable != nil && *sp.Existing.Immutable && len(sp.Added) > 0 {
			c.problem(sp.Name, "", "is immutable but lacks %s; delete it and re-sync, or re-create it with those keys", strings.Join(sp.Added, ", "))
		}
	}
}

// keyRank orders keys by the contract, unknown keys last.
func keyRank(secret, key string) int {
	for _, sc := range Contract {
		if sc.Name == secret {
			if i := slices.Index(sc.Keys, key); i >= 0 {
				return i
			}
		}
	}
	return 1 << 10
}

func secretRank(name string) int {
	for i, sc := range Contract {
		if sc.Name == name {
			return i
		}
	}
	return len(Contract)
}

func sortKeys(secret string, keys []string) {
	slices.SortStableFunc(keys, func(a, b string) int { return keyRank(secret, a) - keyRank(secret, b) })
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if d := secretRank(a.Secret) - secretRank(b.Secret); d != 0 {
			return d
		}
		ra, rb := -1, -1
		if a.Key != "" {
			ra = keyRank(a.Secret, a.Key)
		}
		if b.Key != "" {
			rb = keyRank(b.Secret, b.Key)
		}
		return ra - rb
	})
}
