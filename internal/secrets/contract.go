// Package secrets generates the Secrets the LiteMaaS stack needs, in the cluster, so that no secret
// value ever lives in git.
//
// The rules, in order of importance:
//   - an existing value is never replaced (LITELLM_SALT_KEY in particular: LiteLLM encrypts the models
//     it stores with it). The exceptions: OAUTH_CLIENT_SECRET in serviceaccount mode, which must
//     equal the ServiceAccount's token, and the database URLs of an install from before the
//     per-component roles (the superuser's), which become their role's URLs (roles.go).
//   - missing keys are filled; derived keys (database URLs, LITELLM_API_KEY) are built from the
//     existing or new base values, so that they always agree.
//   - every Secret is validated before anything is written: a malformed value fails the whole run
//     with a *ValidationError and nothing changes.
//   - a run that has nothing to do writes nothing (no update, unchanged resourceVersions).
//   - no secret value appears in a log line, an error or the summary: only Secret and key names.
//
// Compute is the pure part (validation and generation); Sync reads and writes the cluster.
package secrets

// The Secrets of the contract. Other manifests reference these names and keys: keep them exactly.
const (
	PostgresSecret = "postgres-secret"
	LiteLLMSecret  = "litellm-secret"
	BackendSecret  = "backend-secret"
)

// The keys of the contract.
const (
	KeyPostgresUser       = "POSTGRES_USER"
	KeyPostgresPassword   = "POSTGRES_PASSWORD"
	KeyMasterKey          = "LITELLM_MASTER_KEY"
	KeySaltKey            = "LITELLM_SALT_KEY"
	KeyDatabaseURL        = "DATABASE_URL"
	KeyJWTSecret          = "JWT_SECRET"
	KeyOAuthClientSecret  = "OAUTH_CLIENT_SECRET"
	KeyAdminAPIKeys       = "ADMIN_API_KEYS"
	KeyLiteLLMAPIKey      = "LITELLM_API_KEY"
	KeyLiteLLMDatabaseURL = "LITELLM_DATABASE_URL"
)

// Contract lists each Secret with its keys, in the order the job handles and reports them.
var Contract = []struct {
	Name string
	Keys []string
}{
	{PostgresSecret, []string{KeyPostgresUser, KeyPostgresPassword, KeyBackendPassword, KeyLiteLLMPassword, KeyModelReaderPassword, KeyBackupPassword}},
	{LiteLLMSecret, []string{KeyMasterKey, KeySaltKey, KeyDatabaseURL}},
	{BackendSecret, []string{KeyDatabaseURL, KeyJWTSecret, KeyOAuthClientSecret, KeyAdminAPIKeys, KeyLiteLLMAPIKey, KeyLiteLLMDatabaseURL}},
}

// Prefixes the consumers require.
const (
	// MasterKeyPrefix: LiteLLM refuses a master key without it.
	MasterKeyPrefix = "sk-"
	// AdminKeyPrefix: the backend silently ignores an ADMIN_API_KEYS entry without it.
	AdminKeyPrefix = "ltm_admin_"
)

// Metadata of the Secrets the job creates.
const (
	LabelPartOf    = "app.kubernetes.io/part-of"
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "litemaas-sync"
	// The Secrets are not in git. Without these, Argo CD could report them as extraneous or, for a
	// Secret that was once in git and still carries Argo CD's tracking annotation, prune it, and the
	// next run would generate a new password that the database does not know.
	AnnotationCompareOptions = "argocd.argoproj.io/compare-options"
	AnnotationSyncOptions    = "argocd.argoproj.io/sync-options"
)

// Defaults of Settings.
const (
	DefaultPostgresHost    = "postgres"
	DefaultPostgresPort    = 5432
	DefaultPostgresUser    = "litemaas_admin"
	DefaultBackendDatabase = "litemaas_db"
	DefaultLiteLLMDatabase = "litellm_db"
)

// Settings are the non-secret values the derived keys are built from.
type Settings struct {
	// PostgresHost and PostgresPort: the PostgreSQL Service, as the pods reach it.
	PostgresHost string
	PostgresPort int
	// PostgresUser is written to a new postgres-secret; an existing POSTGRES_USER is kept.
	PostgresUser string
	// BackendDatabase and LiteLLMDatabase are the two databases of the one PostgreSQL. They must differ:
	// LiteLLM's schema migration may drop tables it does not know.
	BackendDatabase string
	LiteLLMDatabase string
	// ExternalOAuthClientSecret: OAUTH_CLIENT_SECRET is not generated nor validated by Compute; it is
	// set later with Plan.SetOAuthClientSecret (serviceaccount mode: it is the ServiceAccount's token).
	ExternalOAuthClientSecret bool
	// PostgresCAFile is the path, in the pods that read the role URLs, of the CA that signed
	// PostgreSQL's certificate (CloudNativePG's <cluster>-ca ca.crt). When set, every role URL verifies
	// the server's certificate and host name with it, in the form its client library reads (see
	// roleURL). Empty: the role URLs carry no TLS parameters beyond the contract's sslmode=disable.
	PostgresCAFile string
}

// DefaultSettings returns the settings of the base manifests.
func DefaultSettings() Settings {
	return Settings{
		PostgresHost:    DefaultPostgresHost,
		PostgresPort:    DefaultPostgresPort,
		PostgresUser:    DefaultPostgresUser,
		BackendDatabase: DefaultBackendDatabase,
		LiteLLMDatabase: DefaultLiteLLMDatabase,
	}
}
