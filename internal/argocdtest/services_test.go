package argocdtest

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Prisma's URL parameters, as LiteLLM's connection reads them, in pgx's terms.
func TestPrismaToPgx(t *testing.T) {
	tests := []struct {
		name, query, mode, rootCert string
		wantErr                     string
	}{
		{name: "the production profile's", query: "sslmode=require&sslcert=/ca/ca.crt&sslaccept=strict", mode: "verify-full", rootCert: "/ca/ca.crt"},
		{name: "require accepts any certificate by default", query: "sslmode=require&sslcert=/ca/ca.crt", mode: "require"},
		{name: "explicit accept_invalid_certs", query: "sslmode=require&sslaccept=accept_invalid_certs", mode: "require"},
		{name: "strict without a CA: the system's roots", query: "sslmode=require&sslaccept=strict", mode: "verify-full"},
		{name: "libpq's verify-full is not Prisma's: prefer", query: "sslmode=verify-full&sslrootcert=/ca/ca.crt", mode: "prefer"},
		{name: "no parameters", query: "", mode: "prefer"},
		{name: "disable", query: "sslmode=disable&connection_limit=5", mode: "disable"},
		{name: "unknown sslaccept", query: "sslmode=require&sslaccept=yes", wantErr: "sslaccept=yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, mode, err := prismaToPgx("postgresql://litellm:pw@litemaas-db-rw:5432/litellm_db?" + tt.query)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.mode, mode)
			u, err := url.Parse(got)
			require.NoError(t, err)
			assert.Equal(t, tt.mode, u.Query().Get("sslmode"))
			assert.Equal(t, tt.rootCert, u.Query().Get("sslrootcert"))
			assert.Len(t, u.Query(), map[bool]int{true: 2, false: 1}[tt.rootCert != ""], "Prisma's own parameters are dropped")
			assert.Equal(t, "litemaas-db-rw:5432", u.Host)
		})
	}
}
