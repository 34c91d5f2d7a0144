package secrets

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
	"github.com/litemaas-gitops/litemaas-gitops/internal/redact"
)

// Values of a complete, consistent set of Secrets.
const (
	tUser     = "litemaas_admin"
	tPassword = "Passw0rdPassw0rdPassw0rd"
	tMaster   = "sk-MasterKeyMasterKeyMasterKey0001"
	tSalt     = "SaltKeySaltKeySaltKeySaltKey"
	tJWT      = "JwtSecretJwtSecretJwtSecretJwtSecret"
	tOAuth    = "OAuthSecretOAuthSecretOAuth"
	tAdmin    = "ltm_admin_AdminKeyAdminKey01,ltm_admin_AdminKeyAdminKey02"
	// The component roles' passwords and URLs.
	tBackendPW = "BackendPw0BackendPw0BackendPw0"
	tLiteLLMPW = "LitellmPw0LitellmPw0LitellmPw0"
	tReaderPW  = "ReaderPw00ReaderPw00ReaderPw00"
	tBackupPW  = "BackupPw00BackupPw00BackupPw00"
	tLiteLLM   = "postgresql://litemaas_litellm:" + tLiteLLMPW + "@postgres:5432/litellm_db"
	tReader    = "postgresql://litemaas_model_reader:" + tReaderPW + "@postgres:5432/litellm_db"
	tBackend   = "postgresql://litemaas_backend:" + tBackendPW + "@postgres:5432/litemaas_db?sslmode=disable"
	// The URLs of an install from before the roles: the superuser everywhere.
	tLegacyLiteLLM = "postgresql://litemaas_admin:" + tPassword + "@postgres:5432/litellm_db"
	tLegacyBackend = "postgresql://litemaas_admin:" + tPassword + "@postgres:5432/litemaas_db?sslmode=disable"
)

// rolePasswordKeys are the postgres-secret keys added to a Secret that has only the superuser's.
var rolePasswordKeys = []string{KeyBackendPassword, KeyLiteLLMPassword, KeyModelReaderPassword, KeyBackupPassword}

// assertRoleURLs checks that the plan's three URLs name their roles with the planned passwords.
func assertRoleURLs(t *testing.T, p *Plan, hostPort, backendDB, litellmDB string) {
	t.Helper()
	pw := func(k string) string { return url.UserPassword("x", val(t, p, PostgresSecret, k)).String()[2:] }
	equalSecret(t, "postgresql://litemaas_litellm:"+pw(KeyLiteLLMPassword)+"@"+hostPort+"/"+litellmDB, val(t, p, LiteLLMSecret, KeyDatabaseURL), "litellm-secret/DATABASE_URL")
	equalSecret(t, "postgresql://litemaas_model_reader:"+pw(KeyModelReaderPassword)+"@"+hostPort+"/"+litellmDB, val(t, p, BackendSecret, KeyLiteLLMDatabaseURL), "backend-secret/LITELLM_DATABASE_URL")
	equalSecret(t, "postgresql://litemaas_backend:"+pw(KeyBackendPassword)+"@"+hostPort+"/"+backendDB+"?sslmode=disable", val(t, p, BackendSecret, KeyDatabaseURL), "backend-secret/DATABASE_URL")
}

func secret(name string, kv ...string) *kube.Secret {
	s := &kube.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: kube.SecretTypeOpaque, Data: map[string][]byte{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.Data[kv[i]] = []byte(kv[i+1])
	}
	return s
}

// complete returns a valid set; edit the returned map to break it.
func complete() map[string]*kube.Secret {
	return map[string]*kube.Secret{
		PostgresSecret: secret(PostgresSecret, KeyPostgresUser, tUser, KeyPostgresPassword, tPassword, KeyBackendPassword, tBackendPW,
			KeyLiteLLMPassword, tLiteLLMPW, KeyModelReaderPassword, tReaderPW, KeyBackupPassword, tBackupPW),
		LiteLLMSecret: secret(LiteLLMSecret, KeyMasterKey, tMaster, KeySaltKey, tSalt, KeyDatabaseURL, tLiteLLM),
		BackendSecret: secret(BackendSecret, KeyDatabaseURL, tBackend, KeyJWTSecret, tJWT, KeyOAuthClientSecret, tOAuth,
			KeyAdminAPIKeys, tAdmin, KeyLiteLLMAPIKey, tMaster, KeyLiteLLMDatabaseURL, tReader),
	}
}

// applied returns existing with the plan's data written, as the API server would hold it.
func applied(p *Plan) map[string]*kube.Secret {
	out := map[string]*kube.Secret{}
	for _, sp := range p.Secrets {
		s := secret(sp.Name)
		for k, v := range sp.Data {
			s.Data[k] = v
		}
		out[sp.Name] = s
	}
	return out
}

func val(t *testing.T, p *Plan, secret, key string) string {
	t.Helper()
	v, ok := p.Value(secret, key)
	require.True(t, ok, "%s/%s missing from the plan", secret, key)
	return v
}

func TestComputeFromNothing(t *testing.T) {
	p, err := Compute(nil, DefaultSettings(), rand.Reader)
	require.NoError(t, err)
	require.Len(t, p.Secrets, 3)
	for i, sc := range Contract {
		sp := p.Secrets[i]
		assert.Equal(t, sc.Name, sp.Name)
		assert.Nil(t, sp.Existing)
		assert.True(t, sp.DataChanged())
		assert.Equal(t, sc.Keys, sp.Added, "every key of %s added, in contract order", sc.Name)
		assert.Len(t, sp.Data, len(sc.Keys))
	}

	alnum := func(n int) string { return `^[A-Za-z0-9]{` + strconv.Itoa(n) + `}$` }
	assert.Equal(t, DefaultPostgresUser, val(t, p, PostgresSecret, KeyPostgresUser))
	password := val(t, p, PostgresSecret, KeyPostgresPassword)
	matchesSecret(t, alnum(passwordLength), password, KeyPostgresPassword)
	master := val(t, p, LiteLLMSecret, KeyMasterKey)
	matchesSecret(t, `^sk-[A-Za-z0-9]{48}$`, master, KeyMasterKey)
	matchesSecret(t, alnum(saltKeyLength), val(t, p, LiteLLMSecret, KeySaltKey), KeySaltKey)
	matchesSecret(t, alnum(jwtSecretLength), val(t, p, BackendSecret, KeyJWTSecret), KeyJWTSecret)
	matchesSecret(t, alnum(oauthClientSecretLength), val(t, p, BackendSecret, KeyOAuthClientSecret), KeyOAuthClientSecret)
	matchesSecret(t, `^ltm_admin_[A-Za-z0-9]{40}$`, val(t, p, BackendSecret, KeyAdminAPIKeys), KeyAdminAPIKeys)

	for _, k := range rolePasswordKeys {
		matchesSecret(t, alnum(passwordLength), val(t, p, PostgresSecret, k), k)
	}
	assertRoleURLs(t, p, "postgres:5432", "litemaas_db", "litellm_db")
	equalSecret(t, master, val(t, p, BackendSecret, KeyLiteLLMAPIKey), KeyLiteLLMAPIKey)

	// Independent random values.
	random := []string{password, val(t, p, PostgresSecret, KeyBackendPassword), val(t, p, PostgresSecret, KeyLiteLLMPassword),
		val(t, p, PostgresSecret, KeyModelReaderPassword), val(t, p, PostgresSecret, KeyBackupPassword), master, val(t, p, LiteLLMSecret, KeySaltKey), val(t, p, BackendSecret, KeyJWTSecret),
		val(t, p, BackendSecret, KeyOAuthClientSecret), val(t, p, BackendSecret, KeyAdminAPIKeys)}
	seen := map[string]bool{}
	for _, v := range random {
		assert.False(t, seen[v], "a random value appears twice")
		seen[v] = true
	}

	// The result is a fixed point: computing again over it changes nothing.
	again, err := Compute(applied(p), DefaultSettings(), failingReader{})
	require.NoError(t, err)
	for _, sp := range again.Secrets {
		assert.False(t, sp.DataChanged(), "%s changes on the second run", sp.Name)
	}
}

func TestComputeKeepsEverythingValid(t *testing.T) {
	existing := complete()
	existing[LiteLLMSecret].Data["EXTRA"] = []byte("kept") // keys outside the contract are kept
	p, err := Compute(existing, DefaultSettings(), failingReader{})
	require.NoError(t, err, "nothing to generate, so no randomness is read")
	for _, sp := range p.Secrets {
		assert.False(t, sp.DataChanged(), sp.Name)
		assert.Equal(t, existing[sp.Name].Data, sp.Data, sp.Name)
	}
	assert.Empty(t, p.Warnings)
	// Compute never changes its input.
	assert.Equal(t, complete()[BackendSecret].Data, existing[BackendSecret].Data)
}

func TestComputeFillsPartial(t *testing.T) {
	tests := []struct {
		name     string
		existing map[string]*kube.Secret
		settings func(*Settings)
		added    map[string][]string
		check    func(t *testing.T, p *Plan)
	}{
		{
			name:     "password only: user and every URL derived from it",
			existing: map[string]*kube.Secret{PostgresSecret: secret(PostgresSecret, KeyPostgresPassword, tPassword)},
			added: map[string][]string{
				PostgresSecret: append([]string{KeyPostgresUser}, rolePasswordKeys...),
				LiteLLMSecret:  {KeyMasterKey, KeySaltKey, KeyDatabaseURL},
				BackendSecret:  Contract[2].Keys,
			},
			check: func(t *testing.T, p *Plan) {
				assert.Equal(t, tPassword, val(t, p, PostgresSecret, KeyPostgresPassword))
				assertRoleURLs(t, p, "postgres:5432", "litemaas_db", "litellm_db")
			},
		},
		{
			name: "existing user other than the default is kept and used",
			existing: map[string]*kube.Secret{
				PostgresSecret: secret(PostgresSecret, KeyPostgresUser, "dbowner", KeyPostgresPassword, tPassword),
			},
			added: map[string][]string{PostgresSecret: rolePasswordKeys, LiteLLMSecret: Contract[1].Keys, BackendSecret: Contract[2].Keys},
			check: func(t *testing.T, p *Plan) {
				assert.Equal(t, "dbowner", val(t, p, PostgresSecret, KeyPostgresUser))
				assertRoleURLs(t, p, "postgres:5432", "litemaas_db", "litellm_db")
			},
		},
		{
			name: "salt key and master key kept, API key derived from the existing master key",
			existing: map[string]*kube.Secret{
				PostgresSecret: secret(PostgresSecret, KeyPostgresUser, tUser, KeyPostgresPassword, tPassword),
				LiteLLMSecret:  secret(LiteLLMSecret, KeyMasterKey, tMaster, KeySaltKey, tSalt),
			},
			added: map[string][]string{PostgresSecret: rolePasswordKeys, LiteLLMSecret: {KeyDatabaseURL}, BackendSecret: Contract[2].Keys},
			check: func(t *testing.T, p *Plan) {
				assert.Equal(t, tSalt, val(t, p, LiteLLMSecret, KeySaltKey))
				assert.Equal(t, tMaster, val(t, p, BackendSecret, KeyLiteLLMAPIKey))
			},
		},
		{
			name: "password with URL special characters is percent-encoded",
			existing: map[string]*kube.Secret{
				PostgresSecret: secret(PostgresSecret, KeyPostgresUser, tUser, KeyPostgresPassword, tPassword, KeyBackendPassword, "p@ss/w:rd?#% x"),
			},
			added: map[string][]string{PostgresSecret: rolePasswordKeys[1:], LiteLLMSecret: Contract[1].Keys, BackendSecret: Contract[2].Keys},
			check: func(t *testing.T, p *Plan) {
				u, err := url.Parse(val(t, p, BackendSecret, KeyDatabaseURL))
				require.NoError(t, err)
				pw, _ := u.User.Password()
				assert.Equal(t, "p@ss/w:rd?#% x", pw)
				assert.Equal(t, "/litemaas_db", u.Path)
				assert.Equal(t, "disable", u.Query().Get("sslmode"))
			},
		},
		{
			name:     "other host, port and database names",
			existing: map[string]*kube.Secret{PostgresSecret: secret(PostgresSecret, KeyPostgresUser, tUser, KeyPostgresPassword, tPassword)},
			settings: func(s *Settings) {
				s.PostgresHost, s.PostgresPort, s.BackendDatabase, s.LiteLLMDatabase = "db.example.svc", 6543, "app", "proxy"
			},
			added: map[string][]string{PostgresSecret: rolePasswordKeys, LiteLLMSecret: Contract[1].Keys, BackendSecret: Contract[2].Keys},
			check: func(t *testing.T, p *Plan) {
				assertRoleURLs(t, p, "db.example.svc:6543", "app", "proxy")
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSettings()
			if tc.settings != nil {
				tc.settings(&s)
			}
			p, err := Compute(tc.existing, s, rand.Reader)
			require.NoError(t, err)
			for name, want := range tc.added {
				assert.Equal(t, want, nilIfEmpty(p.Secret(name).Added), "keys added to %s", name)
			}
			for name, sec := range tc.existing {
				for k, v := range sec.Data {
					assert.Equal(t, v, p.Secret(name).Data[k], "existing %s/%s kept", name, k)
				}
			}
			tc.check(t, p)
			// Whatever was filled in, the result validates and is a fixed point.
			again, err := Compute(applied(p), s, failingReader{})
			require.NoError(t, err)
			for _, sp := range again.Secrets {
				assert.False(t, sp.DataChanged(), "%s changes on the second run", sp.Name)
			}
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestComputeRefusesMalformed(t *testing.T) {
	type edit func(e map[string]*kube.Secret)
	setKey := func(name, key, value string) edit {
		return func(e map[string]*kube.Secret) { e[name].Data[key] = []byte(value) }
	}
	delKey := func(name, key string) edit {
		return func(e map[string]*kube.Secret) { delete(e[name].Data, key) }
	}
	tests := []struct {
		name   string
		edits  []edit
		secret string
		key    string
		msg    string
		// bad is the malformed value, which must not appear in the error.
		bad string
	}{
		{"master key without sk-", []edit{setKey(LiteLLMSecret, KeyMasterKey, "MasterKeyWithoutPrefix"), setKey(BackendSecret, KeyLiteLLMAPIKey, "MasterKeyWithoutPrefix")},
			LiteLLMSecret, KeyMasterKey, `must start with "sk-"`, "MasterKeyWithoutPrefix"},
		{"master key that is only the prefix", []edit{setKey(LiteLLMSecret, KeyMasterKey, "sk-"), setKey(BackendSecret, KeyLiteLLMAPIKey, "sk-")},
			LiteLLMSecret, KeyMasterKey, `must start with "sk-" followed by`, ""},
		{"admin key without prefix", []edit{setKey(BackendSecret, KeyAdminAPIKeys, "ltm_admin_GoodKey0001,AdminKeyNoPrefix")},
			BackendSecret, KeyAdminAPIKeys, `entry 2 must start with "ltm_admin_"`, "AdminKeyNoPrefix"},
		{"admin keys with a space after the comma", []edit{setKey(BackendSecret, KeyAdminAPIKeys, "ltm_admin_GoodKey0001, ltm_admin_GoodKey0002")},
			BackendSecret, KeyAdminAPIKeys, "contains whitespace", "GoodKey0002"},
		{"admin keys with a trailing comma", []edit{setKey(BackendSecret, KeyAdminAPIKeys, "ltm_admin_GoodKey0001,")},
			BackendSecret, KeyAdminAPIKeys, "entry 2 is empty", "GoodKey0001"},
		{"empty JWT secret", []edit{setKey(BackendSecret, KeyJWTSecret, "")},
			BackendSecret, KeyJWTSecret, "is empty", ""},
		{"salt key with a trailing newline", []edit{setKey(LiteLLMSecret, KeySaltKey, tSalt+"\n")},
			LiteLLMSecret, KeySaltKey, "trailing whitespace", tSalt},
		{"password with a control character", []edit{setKey(PostgresSecret, KeyPostgresPassword, "Xq7\x00Zr9")},
			PostgresSecret, KeyPostgresPassword, "control character", "Xq7"},
		{"binary value", []edit{setKey(BackendSecret, KeyOAuthClientSecret, "\xff\xfe\xfd")},
			BackendSecret, KeyOAuthClientSecret, "not valid UTF-8", ""},
		{"API key differs from the master key", []edit{setKey(BackendSecret, KeyLiteLLMAPIKey, "sk-SomeOtherKeySomeOtherKey")},
			BackendSecret, KeyLiteLLMAPIKey, "must equal litellm-secret/LITELLM_MASTER_KEY", "SomeOtherKey"},
		{"backend URL with another password", []edit{setKey(BackendSecret, KeyDatabaseURL, strings.Replace(tBackend, tBackendPW, "StalePassword99", 1))},
			BackendSecret, KeyDatabaseURL, "its password differs from postgres-secret/LITEMAAS_BACKEND_PASSWORD", "StalePassword99"},
		{"backend URL without sslmode=disable", []edit{setKey(BackendSecret, KeyDatabaseURL, strings.TrimSuffix(tBackend, "?sslmode=disable"))},
			BackendSecret, KeyDatabaseURL, "sslmode=disable", tBackendPW},
		{"LiteLLM pointed at the backend's database", []edit{setKey(LiteLLMSecret, KeyDatabaseURL, strings.Replace(tLiteLLM, "litellm_db", "litemaas_db", 1))},
			LiteLLMSecret, KeyDatabaseURL, "names another database", tLiteLLMPW},
		{"URL with another user", []edit{setKey(BackendSecret, KeyDatabaseURL, strings.Replace(tBackend, RoleBackend, "intruder", 1))},
			BackendSecret, KeyDatabaseURL, "its user is not litemaas_backend", "intruder"},
		{"the backend's cross-check as LiteLLM's role", []edit{setKey(BackendSecret, KeyLiteLLMDatabaseURL, tLiteLLM)},
			BackendSecret, KeyLiteLLMDatabaseURL, "its user is not litemaas_model_reader; it must be postgresql://litemaas_model_reader:<postgres-secret/LITEMAAS_MODEL_READER_PASSWORD>@postgres:5432/litellm_db", tLiteLLMPW},
		{"URL with another host", []edit{setKey(BackendSecret, KeyDatabaseURL, strings.Replace(tBackend, "@postgres:", "@elsewhere:", 1))},
			BackendSecret, KeyDatabaseURL, "POSTGRES_HOST", tBackendPW},
		{"unparseable URL", []edit{setKey(BackendSecret, KeyDatabaseURL, "postgresql://litemaas_backend:Bad%zzPassword@postgres:5432/litemaas_db")},
			BackendSecret, KeyDatabaseURL, "not a parseable URL", "Bad%zzPassword"},
		{"not a postgres URL", []edit{setKey(BackendSecret, KeyDatabaseURL, "mysql://litemaas_backend:"+tBackendPW+"@postgres:5432/litemaas_db")},
			BackendSecret, KeyDatabaseURL, "not a postgresql:// URL", tBackendPW},
		{"role password gone but its URL remains", []edit{delKey(PostgresSecret, KeyBackendPassword)},
			PostgresSecret, KeyBackendPassword, "is missing, but backend-secret/DATABASE_URL already holds the password of role litemaas_backend", tBackendPW},
		{"superuser password gone but the superuser's URLs remain", []edit{delKey(PostgresSecret, KeyPostgresPassword),
			setKey(LiteLLMSecret, KeyDatabaseURL, tLegacyLiteLLM), setKey(BackendSecret, KeyDatabaseURL, tLegacyBackend)},
			PostgresSecret, KeyPostgresPassword, "is missing, but litellm-secret/DATABASE_URL, backend-secret/DATABASE_URL already hold", tPassword},
		{"master key gone but the API key remains", []edit{delKey(LiteLLMSecret, KeyMasterKey)},
			LiteLLMSecret, KeyMasterKey, "is missing, but backend-secret/LITELLM_API_KEY exists", tMaster},
		{"wrong Secret type", []edit{func(e map[string]*kube.Secret) { e[PostgresSecret].Type = kube.SecretType("kubernetes.io/tls") }},
			PostgresSecret, "", "has type kubernetes.io/tls", ""},
		{"immutable Secret with a missing key", []edit{delKey(BackendSecret, KeyJWTSecret), func(e map[string]*kube.Secret) { e[BackendSecret].Immutable = ptr.To(true) }},
			BackendSecret, "", "is immutable but lacks JWT_SECRET", tJWT},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			existing := complete()
			for _, e := range tc.edits {
				e(existing)
			}
			p, err := Compute(existing, DefaultSettings(), rand.Reader)
			require.Error(t, err)
			assert.Nil(t, p)
			var verr *ValidationError
			require.True(t, errors.As(err, &verr), "want a *ValidationError, got %T %v", err, err)
			require.NotEmpty(t, verr.Problems)
			assert.Equal(t, tc.secret, verr.Problems[0].Secret)
			assert.Equal(t, tc.key, verr.Problems[0].Key)
			assert.Contains(t, verr.Problems[0].Message, tc.msg)
			if tc.bad != "" {
				assert.NotContains(t, err.Error(), tc.bad, "the error shows a secret value")
			}
			for _, v := range []string{tPassword, tBackendPW, tLiteLLMPW, tReaderPW, tBackupPW, tMaster, tSalt, tJWT, tOAuth, "AdminKeyAdminKey"} {
				assert.NotContains(t, err.Error(), v, "the error shows a secret value")
			}
		})
	}
}

// An install from before the roles: every URL names the superuser. The next run generates the roles'
// passwords and replaces exactly those URLs; everything else is kept, and the result is a fixed point.
func TestComputeMovesSingleUserURLsToRoles(t *testing.T) {
	existing := complete()
	for _, k := range rolePasswordKeys {
		delete(existing[PostgresSecret].Data, k)
	}
	existing[LiteLLMSecret].Data[KeyDatabaseURL] = []byte(tLegacyLiteLLM)
	existing[BackendSecret].Data[KeyDatabaseURL] = []byte(tLegacyBackend)
	existing[BackendSecret].Data[KeyLiteLLMDatabaseURL] = []byte(tLegacyLiteLLM)

	p, err := Compute(existing, DefaultSettings(), rand.Reader)
	require.NoError(t, err)
	assert.Equal(t, rolePasswordKeys, p.Secret(PostgresSecret).Added)
	assert.Empty(t, p.Secret(PostgresSecret).Replaced, "the superuser's credentials are kept")
	assert.Equal(t, []string{KeyDatabaseURL}, p.Secret(LiteLLMSecret).Replaced)
	assert.Equal(t, []string{KeyDatabaseURL, KeyLiteLLMDatabaseURL}, p.Secret(BackendSecret).Replaced)
	assert.Empty(t, p.Secret(BackendSecret).Added)
	assertRoleURLs(t, p, "postgres:5432", "litemaas_db", "litellm_db")
	assert.Equal(t, tPassword, val(t, p, PostgresSecret, KeyPostgresPassword))
	assert.Equal(t, tJWT, val(t, p, BackendSecret, KeyJWTSecret))

	again, err := Compute(applied(p), DefaultSettings(), failingReader{})
	require.NoError(t, err)
	for _, sp := range again.Secrets {
		assert.False(t, sp.DataChanged(), "%s changes on the second run", sp.Name)
	}

	// A superuser URL that does not carry POSTGRES_PASSWORD is not the old install's: refused, not replaced.
	existing[BackendSecret].Data[KeyDatabaseURL] = []byte(strings.Replace(tLegacyBackend, tPassword, "StalePassword99", 1))
	_, err = Compute(existing, DefaultSettings(), rand.Reader)
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	assert.Equal(t, PostgresSecret, verr.Problems[0].Secret)
	assert.Equal(t, KeyBackendPassword, verr.Problems[0].Key)
	assert.NotContains(t, err.Error(), "StalePassword99")
}

func TestComputeReportsEveryProblem(t *testing.T) {
	existing := complete()
	existing[BackendSecret].Data[KeyLiteLLMAPIKey] = []byte("sk-Different")
	existing[BackendSecret].Data[KeyAdminAPIKeys] = []byte("nope")
	existing[PostgresSecret].Data[KeyPostgresUser] = []byte("")
	_, err := Compute(existing, DefaultSettings(), rand.Reader)
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	var got []string
	for _, p := range verr.Problems {
		got = append(got, p.Secret+"/"+p.Key)
	}
	// Contract order; the URLs are not checked against an empty user (no follow-on noise).
	assert.Equal(t, []string{"postgres-secret/POSTGRES_USER", "backend-secret/ADMIN_API_KEYS", "backend-secret/LITELLM_API_KEY"}, got)
	assert.Contains(t, err.Error(), "nothing was changed")
}

func TestComputeWarnsAboutWeakValues(t *testing.T) {
	existing := complete()
	existing[LiteLLMSecret].Data[KeyMasterKey] = []byte("sk-1234")
	existing[BackendSecret].Data[KeyLiteLLMAPIKey] = []byte("sk-1234")
	existing[BackendSecret].Data[KeyJWTSecret] = []byte("short")
	p, err := Compute(existing, DefaultSettings(), rand.Reader)
	require.NoError(t, err)
	require.Len(t, p.Warnings, 2)
	for _, w := range p.Warnings {
		assert.NotContains(t, w, "1234")
		assert.NotContains(t, w, "short\"")
	}
}

func TestComputeServiceAccountMode(t *testing.T) {
	s := DefaultSettings()
	s.ExternalOAuthClientSecret = true

	p, err := Compute(nil, s, rand.Reader)
	require.NoError(t, err)
	_, ok := p.Value(BackendSecret, KeyOAuthClientSecret)
	assert.False(t, ok, "not generated: it will be the token")
	assert.NotContains(t, p.Secret(BackendSecret).Added, KeyOAuthClientSecret)

	assert.False(t, p.SetOAuthClientSecret("token-1"))
	assert.Equal(t, "token-1", val(t, p, BackendSecret, KeyOAuthClientSecret))
	assert.Equal(t, Contract[2].Keys, p.Secret(BackendSecret).Added, "added, in contract order")

	// An existing value, even a malformed one, is not a problem: the token replaces it.
	existing := complete()
	existing[BackendSecret].Data[KeyOAuthClientSecret] = []byte("")
	p, err = Compute(existing, s, rand.Reader)
	require.NoError(t, err)
	assert.False(t, p.Secret(BackendSecret).DataChanged())
	assert.True(t, p.SetOAuthClientSecret("token-2"))
	assert.Equal(t, []string{KeyOAuthClientSecret}, p.Secret(BackendSecret).Replaced)
	assert.True(t, p.Secret(BackendSecret).DataChanged())

	// Already equal: nothing to do.
	existing[BackendSecret].Data[KeyOAuthClientSecret] = []byte("token-3")
	p, err = Compute(existing, s, rand.Reader)
	require.NoError(t, err)
	assert.False(t, p.SetOAuthClientSecret("token-3"))
	assert.False(t, p.Secret(BackendSecret).DataChanged())
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Settings)
		want string
	}{
		{"defaults", func(*Settings) {}, ""},
		{"host with a path", func(s *Settings) { s.PostgresHost = "postgres/x" }, "POSTGRES_HOST"},
		{"port zero", func(s *Settings) { s.PostgresPort = 0 }, "POSTGRES_PORT"},
		{"user with a space", func(s *Settings) { s.PostgresUser = "lite maas" }, "POSTGRES_USER"},
		{"empty database", func(s *Settings) { s.BackendDatabase = "" }, "BACKEND_DATABASE"},
		{"same database twice", func(s *Settings) { s.LiteLLMDatabase = s.BackendDatabase }, "must differ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := DefaultSettings()
			tc.edit(&s)
			err := s.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			_, cerr := Compute(nil, s, rand.Reader)
			assert.Error(t, cerr, "Compute refuses bad settings too")
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	base := Options{Namespace: "litemaas", Settings: DefaultSettings(), Mode: ModeOAuthClient,
		CallbackURL: "https://litemaas-litemaas.apps.example.com/api/auth/callback"}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"valid", func(*Options) {}, ""},
		{"serviceaccount mode needs no callback", func(o *Options) { o.Mode, o.CallbackURL = ModeServiceAccount, "" }, ""},
		{"empty mode is oauthclient", func(o *Options) { o.Mode = "" }, ""},
		{"unknown mode", func(o *Options) { o.Mode = "both" }, `OAUTH_MODE "both"`},
		{"no namespace", func(o *Options) { o.Namespace = "" }, "NAMESPACE"},
		{"no callback", func(o *Options) { o.CallbackURL = "" }, "OAUTH_CALLBACK_URL is required"},
		{"placeholder domain", func(o *Options) {
			o.CallbackURL = "https://litemaas-litemaas.CLUSTER_APPS_DOMAIN/api/auth/callback"
		}, "placeholder domain"},
		{"http callback", func(o *Options) { o.CallbackURL = "http://litemaas.example.com/api/auth/callback" }, "must be an https URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.edit(&o)
			err := o.Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestRandomString(t *testing.T) {
	v, err := randomString(rand.Reader, 1000, alphanumeric)
	require.NoError(t, err)
	matchesSecret(t, `^[A-Za-z0-9]{1000}$`, v, "random string")

	// 248 = 4*62: bytes from 248 up are rejected, not folded onto the first characters. (It reads
	// twice the length at a time, hence the padding.)
	r := bytes.NewReader(append(bytes.Repeat([]byte{255, 248}, 4), 0, 61, 62, 247, 0, 0, 0, 0))
	v, err = randomString(r, 4, alphanumeric)
	require.NoError(t, err)
	assert.Equal(t, "A9A9", v)

	_, err = randomString(failingReader{}, 4, alphanumeric)
	assert.Error(t, err)
	_, err = Compute(nil, DefaultSettings(), failingReader{})
	require.Error(t, err)
	var verr *ValidationError
	assert.False(t, errors.As(err, &verr), "a randomness failure is not a malformed value")
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func TestSummary(t *testing.T) {
	r := &Result{
		Secrets: []SecretResult{
			{Name: PostgresSecret, Action: Created, Added: []string{KeyPostgresUser, KeyPostgresPassword}},
			{Name: LiteLLMSecret, Action: Unchanged},
			{Name: BackendSecret, Action: Filled, Added: []string{KeyJWTSecret}},
		},
		OAuth: OAuthResult{Mode: ModeOAuthClient, Name: DefaultOAuthClientName, Changes: []string{"secret", "redirect"}, Done: true},
	}
	assert.Equal(t, "secrets: created postgres-secret(2 keys), unchanged litellm-secret, filled backend-secret(1 key); oauthclient litemaas-oauth-client secret+redirect set", r.Summary())

	r.OAuth = OAuthResult{Mode: ModeOAuthClient, Name: DefaultOAuthClientName, Done: true}
	assert.True(t, strings.HasSuffix(r.Summary(), "; oauthclient litemaas-oauth-client unchanged"))
	r.OAuth.Done = false
	assert.True(t, strings.HasSuffix(r.Summary(), "; oauthclient litemaas-oauth-client NOT set"))

	r.Secrets[2] = SecretResult{Name: BackendSecret, Action: Updated, Replaced: []string{KeyOAuthClientSecret}}
	r.OAuth = OAuthResult{Mode: ModeServiceAccount, Name: DefaultServiceAccount, Done: true, Changes: []string{"token secret created", "OAUTH_CLIENT_SECRET set from token"}}
	assert.Equal(t, "secrets: created postgres-secret(2 keys), unchanged litellm-secret, updated backend-secret(OAUTH_CLIENT_SECRET replaced); "+
		"serviceaccount litemaas-oauth token secret created, OAUTH_CLIENT_SECRET set from token", r.Summary())
}

func TestRedactor(t *testing.T) {
	var r redactor
	r.add("short", "TopSecretValue", "p@ss word!")
	base := errors.New(`Secret "x" is invalid: data[A]: Invalid value: "TopSecretValue"; url postgresql://u:p%40ss+word%21@h/db`)
	err := r.wrap(base)
	assert.NotContains(t, err.Error(), "TopSecretValue")
	assert.NotContains(t, err.Error(), "p%40ss+word%21")
	assert.Contains(t, err.Error(), redact.Mark)
	assert.ErrorIs(t, err, base, "the chain is kept for errors.Is / errors.As")

	untouched := errors.New("nothing secret, short")
	assert.Same(t, untouched, r.wrap(untouched))
	assert.NoError(t, r.wrap(nil))
}

// matchesSecret and equalSecret report secret/key names and lengths only, never the values: test
// output is a log like any other, and must not show a generated value either.
func matchesSecret(t *testing.T, pattern, value, what string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(value) {
		t.Errorf("%s (%d characters) does not match %s", what, len(value), pattern)
	}
}

func equalSecret(t *testing.T, want, got, what string) {
	t.Helper()
	if want != got {
		t.Errorf("%s: the values differ (%d and %d characters)", what, len(want), len(got))
	}
}
