package tree

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSuggestOverlayName(t *testing.T) {
	for domain, want := range map[string]string{
		"apps.mycluster.example.com": "mycluster",
		"apps.ocp-prod.corp.net":     "ocp-prod",
		"example.com":                "example",
		"apps.UPPER.example.com":     "my-cluster",
	} {
		assert.Equal(t, want, SuggestOverlayName(domain), domain)
	}
}
