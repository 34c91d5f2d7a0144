package restore

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRestoreTargetKeepsThePasswordOutOfURLs(t *testing.T) {
	tg, err := parseTarget("postgresql://admin:s3cret@db.example.com:5432/?sslmode=require")
	require.NoError(t, err)
	assert.Equal(t, "postgres", tg.admin)
	assert.Equal(t, "postgresql://admin@db.example.com:5432/litemaas_db?sslmode=require", tg.url("litemaas_db", false))
	assert.Equal(t, "postgresql://admin:s3cret@db.example.com:5432/litemaas_db?sslmode=require", tg.url("litemaas_db", true))
	assert.NotContains(t, tg.redacted(), "s3cret")

	t.Setenv("PGPASSWORD", "from-env")
	tg, err = parseTarget("postgres://admin@localhost:5432/maint")
	require.NoError(t, err)
	assert.Equal(t, "maint", tg.admin)
	assert.Equal(t, "from-env", tg.password)

	for _, bad := range []string{"mysql://x", "localhost:5432", "postgres:///nohost"} {
		_, err := parseTarget(bad)
		assert.Error(t, err, bad)
	}
}

func TestVersions(t *testing.T) {
	for in, want := range map[string]int{
		"pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": 15,
		"pg_dump (PostgreSQL) 16.9":                              16,
		"pg_restore (PostgreSQL) 17beta1":                        17,
		"16.9":                                                   16,
	} {
		got, ok := majorOf(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	v, ok := findVersion("pg_restore (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)")
	assert.True(t, ok)
	assert.Equal(t, "15.18", v)
}
