package secrets

// The database roles of gitops/base/postgres/roles.sql, one per component: PostgreSQL creates them at
// start with the passwords of postgres-secret, and each database URL names its component's role.
// The superuser POSTGRES_USER is used by nothing but PostgreSQL's own start-up.
const (
	// RoleBackend owns litemaas_db: the backend and the litemaas-sync job (which alters users).
	RoleBackend = "litemaas_backend"
	// RoleLiteLLM owns litellm_db.
	RoleLiteLLM = "litemaas_litellm"
	// RoleModelReader may read LiteLLM_ProxyModelTable in litellm_db: the backend's cross-check.
	RoleModelReader = "litemaas_model_reader"
	// RoleBackup reads both databases (pg_read_all_data): the backup CronJob.
	RoleBackup = "litemaas_backup"
)

// The keys of postgres-secret holding the roles' passwords (the names roles.sql reads).
const (
	KeyBackendPassword     = "LITEMAAS_BACKEND_PASSWORD"
	KeyLiteLLMPassword     = "LITEMAAS_LITELLM_PASSWORD"
	KeyModelReaderPassword = "LITEMAAS_MODEL_READER_PASSWORD"
	KeyBackupPassword      = "LITEMAAS_BACKUP_PASSWORD"
)

// rolePasswords pairs each role with the key of its password, in the contract's order.
var rolePasswords = []struct{ role, key string }{
	{RoleBackend, KeyBackendPassword},
	{RoleLiteLLM, KeyLiteLLMPassword},
	{RoleModelReader, KeyModelReaderPassword},
	{RoleBackup, KeyBackupPassword},
}

// roleURLs are the database URLs and the role each is built for.
func (c *computation) roleURLs() []dbURL {
	return []dbURL{
		{secret: LiteLLMSecret, key: KeyDatabaseURL, database: c.settings.LiteLLMDatabase, role: RoleLiteLLM, passwordKey: KeyLiteLLMPassword},
		{secret: BackendSecret, key: KeyLiteLLMDatabaseURL, database: c.settings.LiteLLMDatabase, role: RoleModelReader, passwordKey: KeyModelReaderPassword},
		{secret: BackendSecret, key: KeyDatabaseURL, database: c.settings.BackendDatabase, sslDisable: true, role: RoleBackend, passwordKey: KeyBackendPassword},
	}
}

// roleURLs fills and checks the database URLs. An URL of the install from before the roles (the
// superuser POSTGRES_USER with POSTGRES_PASSWORD, otherwise right) is replaced by its role's URL:
// PostgreSQL creates the role at its next start, and the components' init containers wait until their
// new URL logs in. Any other disagreement is a problem, as for every derived value.
func (c *computation) fillRoleURLs(superUser, superPassword string, superOK bool) {
	for _, u := range c.roleURLs() {
		_, pwExisted := c.current(PostgresSecret, u.passwordKey)
		password, pwOK := c.plan.Value(PostgresSecret, u.passwordKey)
		pwOK = pwOK && !c.bad[PostgresSecret+"/"+u.passwordKey]
		v, exists := c.current(u.secret, u.key)
		switch {
		case !exists:
			c.set(u.secret, u.key, c.buildURL(u, u.role, password))
		case c.bad[u.secret+"/"+u.key]:
		case !superOK && v != "" && c.urlUser(v) == superUser:
			// the superuser's URL while POSTGRES_USER or POSTGRES_PASSWORD is unusable: reported there
		case superOK && c.urlProblem(u, v, superUser, superPassword) == "":
			c.replace(u.secret, u.key, c.buildURL(u, u.role, password))
		case !pwExisted:
			c.problem(PostgresSecret, u.passwordKey, "is missing, but %s/%s already holds the password of role %s: a new password would not match "+
				"the database. Restore %s (the password in that URL), or delete %s/%s too so that both are generated",
				u.secret, u.key, u.role, u.passwordKey, u.secret, u.key)
		case pwOK:
			if why := c.urlProblem(u, v, u.role, password); why != "" {
				c.problem(u.secret, u.key, "%s; it must be %s", why, c.urlShape(u))
			}
		}
	}
}

// replace records a new value for an existing key.
func (c *computation) replace(secret, key, value string) {
	sp := c.plan.Secret(secret)
	sp.Data[key] = []byte(value)
	sp.Replaced = append(sp.Replaced, key)
	sortKeys(secret, sp.Replaced)
}
