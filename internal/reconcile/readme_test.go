package reconcile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/reconcile"
)

// TestREADMEDryRunExample generates the dry-run example of docs/configuration.md ("The plan (dry run)") from the
// scenario it describes, and fails when the page shows anything else. UPDATE_README=1 rewrites it.
func TestREADMEDryRunExample(t *testing.T) {
	const readme = "../../docs/configuration.md"
	base, err := os.ReadFile("../../gitops/base/models.yaml")
	require.NoError(t, err)
	first := replaceOnce(t, string(base), "    contextLength: 32768\n    supportsStreaming: true\n    availability: available\n    apiBase: http://gpt-oss-20b",
		"    contextLength: 32768\n    tpm: 100000\n    supportsStreaming: true\n    availability: available\n    apiBase: http://gpt-oss-20b")

	s := newStack(t)
	s.exec(`ALTER TABLE users ALTER COLUMN oauth_id DROP NOT NULL`)
	s.run(parse(t, first))

	// The edit the README describes.
	edited := replaceOnce(t, first, "http://devstral-2-predictor", "http://devstral-2-v2-predictor")
	edited = replaceOnce(t, edited, "contextLength: 131072", "contextLength: 65536")
	edited = replaceOnce(t, edited, "    tpm: 100000\n", "")
	i := strings.Index(edited, "  - id: mistral-3-bf16")
	edited = edited[:i] + strings.Replace(edited[i:], "availability: available", "availability: unavailable", 1)
	i, j := strings.Index(edited, "  - id: granite-8b-agent"), strings.Index(edited, "  - id: mistral-3-bf16")
	edited = edited[:i] + edited[j:]
	edited += "  - id: llama-3-8b\n    name: Llama 3 8B\n    provider: vLLM\n    contextLength: 8192\n    apiBase: http://llama-3-8b-predictor.private-ai.svc.cluster.local:8080/v1\n    model: openai/llama-3-8b\n"
	res := s.run(parse(t, edited), func(o *reconcile.Options) { o.DryRun, o.Prune = true, true })
	got := s.out.String() + res.Summary() + "\n"

	data, err := os.ReadFile(readme)
	require.NoError(t, err)
	text := string(data)
	start := strings.Index(text, "### The plan (dry run)")
	require.Positive(t, start, "the README's section")
	open := strings.Index(text[start:], "```\n")
	require.Positive(t, open)
	open += start + len("```\n")
	end := strings.Index(text[open:], "```\n")
	require.Positive(t, end)
	end += open
	if os.Getenv("UPDATE_README") == "1" {
		require.NoError(t, os.WriteFile(readme, []byte(text[:open]+got+text[end:]), 0o644))
		return
	}
	require.Equal(t, got, text[open:end], "the README's dry-run example is not what the code prints: run UPDATE_README=1 go test -run TestREADMEDryRunExample ./internal/reconcile/")
}

func parse(t *testing.T, yaml string) *catalog.Catalog {
	t.Helper()
	c, err := catalog.Parse(filepath.Join("gitops", "base", "models.yaml"), []byte(yaml))
	require.NoError(t, err)
	return c
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	require.Equal(t, 1, strings.Count(s, old), "%q once in the catalog", old)
	return strings.Replace(s, old, new, 1)
}
