package advisory

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApplies(t *testing.T) {
	f, err := Load()
	require.NoError(t, err)
	tests := []struct {
		id, version string
		want        Verdict
	}{
		{"litemaas#137", "0.4.0", Affected},
		{"litemaas#137", "v0.3.1", Affected},
		{"litemaas#137", "0.4.1", NotAffected},
		{"litemaas#137", "main-4f1e2d3", Unknown},
		{"GHSA-4xpc-pv4p-pm3w", "main-v1.81.0-stable-custom", Affected},
		{"GHSA-4xpc-pv4p-pm3w", "1.83.14", Affected},
		{"GHSA-4xpc-pv4p-pm3w", "v1.84.0", NotAffected},
		{"GHSA-qrc4-49gv-mv9m", "1.83.14", NotAffected},
		{"PostgreSQL 16.14 (11 CVEs)", "16.9-alpine", Affected},
		{"PostgreSQL 16.14 (11 CVEs)", "16.15-alpine", NotAffected},
		{"PostgreSQL 16.14 (11 CVEs)", "17.2", NotAffected},
		{"PostgreSQL 16.14 (11 CVEs)", "15.13", NotAffected},
	}
	for _, tt := range tests {
		a, ok := f.Find(tt.id)
		require.True(t, ok, tt.id)
		assert.Equal(t, tt.want, a.Applies(tt.version), "%s on %s", tt.id, tt.version)
	}
}

func TestFor(t *testing.T) {
	f, err := Load()
	require.NoError(t, err)
	var ids []string
	for _, m := range f.For("quay.io/rh-aiservices-bu/litellm-non-root:main-v1.81.0-stable-custom") {
		ids = append(ids, m.ID)
	}
	assert.Len(t, ids, 6)
	assert.Empty(t, f.For("docker.io/library/postgres:16.15-alpine"))
	assert.Len(t, f.For("docker.io/library/postgres:16.9-alpine"), 1)
	ms := f.For("quay.io/rh-aiservices-bu/litemaas-backend@sha256:0123")
	require.Len(t, ms, 1)
	assert.Equal(t, Unknown, ms[0].Verdict)
}

func TestParseRejects(t *testing.T) {
	base := "images: [a]\nadvisories:\n  - {id: x, image: a, affected: \"< 1.0\", exposure: e, mitigation: m}\n"
	_, err := Parse([]byte(base))
	require.NoError(t, err)
	for name, data := range map[string]string{
		"unknown image": "images: [a]\nadvisories:\n  - {id: x, image: b, affected: \"< 1.0\", exposure: e, mitigation: m}\n",
		"bad range":     "images: [a]\nadvisories:\n  - {id: x, image: a, affected: \"before 1.0\", exposure: e, mitigation: m}\n",
		"no mitigation": "images: [a]\nadvisories:\n  - {id: x, image: a, affected: \"< 1.0\", exposure: e}\n",
		"duplicate id":  base + "  - {id: x, image: a, affected: \"< 2.0\", exposure: e, mitigation: m}\n",
		"unknown field": "images: [a]\nadvisories:\n  - {id: x, image: a, affected: \"< 1.0\", exposure: e, mitigation: m, fixd: 1}\n",
	} {
		_, err := Parse([]byte(data))
		assert.Error(t, err, name)
	}
}
