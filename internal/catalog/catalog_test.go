package catalog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFull(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.yaml"))
	require.NoError(t, err)
	require.Len(t, c.Models, 2)

	g := c.Models[0]
	assert.Equal(t, Model{
		ID: "granite-8b-agent", Name: "Granite-8B Agent", Description: "Granite-3.1-8B Agent",
		Category: "agent", Provider: "vLLM", ContextLength: 16384, SupportsStreaming: true,
		Availability: Available, APIBase: "http://granite-8b-agent-predictor.private-ai.svc.cluster.local:8080/v1",
		Model: "openai/granite-8b-agent", SupportsFunctionCalling: true, SupportsParallelFunctionCalling: true,
		SupportsToolChoice: true, InputCostPerToken: 0.0000002, OutputCostPerToken: 0.0000006,
		TPM: 100000, RPM: 600, RestrictedAccess: true, APIKeyEnv: "GRANITE_API_KEY", Line: 3,
	}, g)
	assert.True(t, g.Served())

	old := c.Models[1]
	assert.Equal(t, "openai/old-model", old.Model, "model defaults to openai/<id>")
	assert.Equal(t, DefaultProvider, old.Provider)
	assert.False(t, old.Served())
	assert.Equal(t, []string{"granite-8b-agent", "old-model"}, c.IDs())
}

func TestDefaults(t *testing.T) {
	c, err := Parse("m.yaml", []byte("models:\n- id: a\n  name: A\n  contextLength: 1\n  apiBase: http://a:8080/v1\n"))
	require.NoError(t, err)
	m := c.Models[0]
	assert.Equal(t, "openai/a", m.Model)
	assert.Equal(t, "vLLM", m.Provider)
	assert.Equal(t, Available, m.Availability)
	assert.True(t, m.SupportsStreaming)
}

// Each case is a catalog with one defect; the error must name file, line, model and field.
func TestParseErrors(t *testing.T) {
	const ok = "  name: A\n  contextLength: 8\n  apiBase: http://a:8080/v1\n"
	tests := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown field", "models:\n- id: a\n" + ok + "  contextlength: 9\n", []string{"m.yaml:6: model a: field contextlength: unknown field (did you mean \"contextLength\"?)"}},
		{"duplicate id", "models:\n- id: a\n" + ok + "- id: a\n" + ok, []string{"m.yaml:6: model a: field id: duplicate id; already used by the model at line 2"}},
		{"missing required", "models:\n- id: a\n", []string{"model a: field name: required", "model a: field contextLength: required", "model a: field apiBase: required"}},
		{"missing id", "models:\n- name: A\n  contextLength: 8\n  apiBase: http://a/v1\n", []string{"m.yaml:2: model #1: field id: required"}},
		{"bad url scheme", "models:\n- id: a\n  name: A\n  contextLength: 8\n  apiBase: ftp://a/v1\n", []string{"m.yaml:5: model a: field apiBase: must be an http:// or https:// URL"}},
		{"url without host", "models:\n- id: a\n  name: A\n  contextLength: 8\n  apiBase: http:///v1\n", []string{"field apiBase: has no host"}},
		{"url with credentials", "models:\n- id: a\n  name: A\n  contextLength: 8\n  apiBase: http://u:p@a/v1\n", []string{"field apiBase: must not carry credentials"}},
		{"context not a number", "models:\n- id: a\n  name: A\n  contextLength: lots\n  apiBase: http://a/v1\n", []string{"m.yaml:4: model a: field contextLength: must be an integer, got \"lots\""}},
		{"context zero", "models:\n- id: a\n  name: A\n  contextLength: 0\n  apiBase: http://a/v1\n", []string{"field contextLength: must be a positive integer"}},
		{"context float", "models:\n- id: a\n  name: A\n  contextLength: 1.5\n  apiBase: http://a/v1\n", []string{"field contextLength: must be an integer"}},
		{"context too big", "models:\n- id: a\n  name: A\n  contextLength: 99999999999\n  apiBase: http://a/v1\n", []string{"field contextLength: must fit in 32 bits"}},
		{"negative cost", "models:\n- id: a\n" + ok + "  inputCostPerToken: -1\n", []string{"field inputCostPerToken: must be a number from 0"}},
		{"cost is text", "models:\n- id: a\n" + ok + "  outputCostPerToken: cheap\n", []string{"field outputCostPerToken: must be a number, got \"cheap\""}},
		{"cost with 11 decimal places", "models:\n- id: a\n" + ok + "  inputCostPerToken: 0.00000000015\n", []string{"model a: field inputCostPerToken: 0.00000000015 has more than 10 decimal places"}},
		{"cost with 11 decimal places as an exponent", "models:\n- id: a\n" + ok + "  outputCostPerToken: 1.5e-10\n", []string{"model a: field outputCostPerToken: 1.5e-10 has more than 10 decimal places"}},
		{"cost nan", "models:\n- id: a\n" + ok + "  outputCostPerToken: .nan\n", []string{"field outputCostPerToken: must be a finite number"}},
		{"negative tpm", "models:\n- id: a\n" + ok + "  tpm: -5\n", []string{"field tpm: must be a non-negative integer"}},
		{"bool as string", "models:\n- id: a\n" + ok + "  supportsVision: \"yes\"\n", []string{"field supportsVision: must be true or false, got \"yes\""}},
		{"slash in id", "models:\n- id: meta/llama\n  name: A\n  contextLength: 8\n  apiBase: http://a/v1\n", []string{"model meta/llama: field id: must not contain `/`"}},
		{"uppercase id", "models:\n- id: Llama\n  name: A\n  contextLength: 8\n  apiBase: http://a/v1\n", []string{"model Llama: field id: use lowercase letters"}},
		{"bad availability", "models:\n- id: a\n" + ok + "  availability: maybe\n", []string{"field availability: must be \"available\" or \"unavailable\""}},
		{"streaming off while served", "models:\n- id: a\n" + ok + "  supportsStreaming: false\n", []string{"field supportsStreaming: false cannot hold for a served model"}},
		{"inline api key", "models:\n- id: a\n" + ok + "  apiKey: sk-secret\n", []string{"field apiKey: inline API keys are not allowed"}},
		{"bad env name", "models:\n- id: a\n" + ok + "  apiKeyEnv: 1-KEY\n", []string{"field apiKeyEnv: \"1-KEY\" is not an environment variable name"}},
		{"model without provider", "models:\n- id: a\n" + ok + "  model: llama\n", []string{"field model: must be `<provider>/<served model name>`"}},
		{"field twice", "models:\n- id: a\n" + ok + "  name: B\n", []string{"m.yaml:6: model a: field name: appears twice in this model"}},
		{"empty name", "models:\n- id: a\n  name: \"\"\n  contextLength: 8\n  apiBase: http://a/v1\n", []string{"field name: must not be empty"}},
		{"name is a list", "models:\n- id: a\n  name: [x]\n  contextLength: 8\n  apiBase: http://a/v1\n", []string{"field name: must be a string"}},
		{"empty list", "models: []\n", []string{"field models: the list is empty"}},
		{"no models key", "model:\n- id: a\n", []string{"field model: unknown top-level field", "field models: missing"}},
		{"models not a list", "models: a\n", []string{"field models: must be a list"}},
		{"entry not a mapping", "models:\n- a\n", []string{"model #1: each model must be a mapping"}},
		{"empty file", "", []string{"field models: the file is empty"}},
		{"not yaml", "models: [\n", []string{"m.yaml:1:9: not valid YAML"}},
		// yaml.v3 alone says line 1 here (where the enclosing block starts), and no column.
		{"key dedented on line 5", "models:\n  - id: a\n    name: A\n    contextLength: 8\n  apiBase: http://a/v1\n", []string{"m.yaml:5:3: not valid YAML"}},
		{"unterminated quote on line 5", "models:\n  - id: a\n    name: A\n    contextLength: 8\n    apiBase: \"http://a/v1\n", []string{"m.yaml:5:14: not valid YAML"}},
		{"tab indentation on line 3", "models:\n  - id: a\n\tname: A\n", []string{"m.yaml:3:1: not valid YAML"}},
		{"two documents", "models:\n- id: a\n" + ok + "---\nmodels: []\n", []string{"more than one YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("m.yaml", []byte(tt.yaml))
			require.Error(t, err)
			assert.Nil(t, c)
			assert.True(t, IsInvalid(err))
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := Parse("m.yaml", []byte(`models:
- id: a
  name: A
  contextLength: -1
  apiBase: http://a/v1
- id: b
  name: B
  contextLength: 8
  apiBase: nope
  colour: red
`))
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Len(t, e.Problems, 3, err.Error())
	assert.Equal(t, 4, e.Problems[0].Line)
	assert.Equal(t, "b", e.Problems[1].Model)
	assert.True(t, strings.HasPrefix(err.Error(), "m.yaml: invalid models catalog (3 problems):"))
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	require.Error(t, err)
	assert.False(t, IsInvalid(err))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzParse: malformed input always yields an error or a valid catalog, never a panic, and a
// catalog that parses satisfies the invariants the reconcile relies on.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"full.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("models:\n- id: a\n  name: A\n  contextLength: 8\n  apiBase: http://a/v1\n"))
	f.Add([]byte("models: [{id: x, name: y, contextLength: 0x10, apiBase: 'https://h'}]"))
	f.Add([]byte("models:\n- &a {id: a}\n- *a\n"))
	f.Add([]byte("{models: !!binary aGVsbG8=}"))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("f.yaml", data)
		if err != nil {
			require.Nil(t, c)
			require.NotEmpty(t, err.Error())
			return
		}
		require.NotEmpty(t, c.Models)
		ids := map[string]bool{}
		for _, m := range c.Models {
			require.Regexp(t, idPattern, m.ID)
			require.False(t, ids[m.ID])
			ids[m.ID] = true
			require.Positive(t, m.ContextLength)
			require.NotEmpty(t, m.Name)
			require.Contains(t, m.Model, "/")
		}
	})
}

// A value of the wrong type is one problem, not also "required" and "out of range".
func TestWrongTypeIsOneProblem(t *testing.T) {
	_, err := Parse("m.yaml", []byte("models:\n- id: a\n  name: A\n  contextLength: lots\n  apiBase: http://a/v1\n"))
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1, err.Error())
	assert.Equal(t, Problem{Line: 4, Model: "a", Field: "contextLength", Msg: `must be an integer, got "lots"`}, ce.Problems[0])
}
