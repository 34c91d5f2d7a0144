package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func base() map[string]string {
	return map[string]string{
		"MODELS_FILE":        "/etc/litemaas-sync/models.yaml",
		"DATABASE_URL":       "postgresql://u:s3cret@postgres:5432/litemaas_db?sslmode=disable",
		"LITELLM_URL":        "http://litellm:4000",
		"LITELLM_MASTER_KEY": "sk-test",
	}
}

func TestDefaults(t *testing.T) {
	c, err := LoadReconcile(context.Background(), envconfig.MapLookuper(base()))
	require.NoError(t, err)
	assert.Equal(t, 10*time.Minute, c.WaitTimeout)
	assert.Equal(t, 5*time.Minute, c.RetryTimeout)
	assert.Equal(t, 8, c.Concurrency)
	assert.Equal(t, "auto", c.LogFormat)
	assert.False(t, c.DryRun)
	assert.False(t, c.Prune)
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		set  map[string]string
		want string
	}{
		{"missing database", map[string]string{"DATABASE_URL": ""}, "DATABASE_URL"},
		{"no catalog", map[string]string{"MODELS_FILE": ""}, "set MODELS_FILE"},
		{"both catalogs", map[string]string{"MODELS_CONFIGMAP": "litemaas-models"}, "only one of"},
		{"master key prefix", map[string]string{"LITELLM_MASTER_KEY": "abc"}, "must start with sk-"},
		{"bad litellm url", map[string]string{"LITELLM_URL": "litellm:4000"}, "LITELLM_URL must be"},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://u:s3cret@h/db"}, "DATABASE_URL must be"},
		{"bad timeout", map[string]string{"WAIT_TIMEOUT": "soon"}, "WAIT_TIMEOUT"},
		{"bad log format", map[string]string{"LOG_FORMAT": "xml"}, "LOG_FORMAT"},
		{"bad bool", map[string]string{"DRY_RUN": "perhaps"}, "DRY_RUN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := base()
			for k, v := range tt.set {
				env[k] = v
			}
			_, err := LoadReconcile(context.Background(), envconfig.MapLookuper(env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "s3cret", "errors never show the password")
		})
	}
}

func TestConfigMapRef(t *testing.T) {
	c := &Reconcile{ModelsConfigMap: "litemaas-models-abc"}
	n, k := c.ConfigMapRef()
	assert.Equal(t, "litemaas-models-abc", n)
	assert.Equal(t, "models.yaml", k)
	c.ModelsConfigMap = "x/other.yaml"
	n, k = c.ConfigMapRef()
	assert.Equal(t, "x", n)
	assert.Equal(t, "other.yaml", k)
}

func TestSecrets(t *testing.T) {
	c, err := LoadSecrets(context.Background(), envconfig.MapLookuper(map[string]string{}))
	require.NoError(t, err)
	assert.Equal(t, "oauthclient", c.OAuthMode)
	assert.Equal(t, "postgres", c.PostgresHost)
	assert.Equal(t, 5432, c.PostgresPort)
	assert.Equal(t, 4*time.Minute, c.Timeout)

	for env, want := range map[string]string{
		"TIMEOUT":       "TIMEOUT",
		"POSTGRES_PORT": "POSTGRES_PORT",
		"LOG_FORMAT":    "LOG_FORMAT must be",
	} {
		_, err := LoadSecrets(context.Background(), envconfig.MapLookuper(map[string]string{env: "-1x"}))
		require.Error(t, err, env)
		assert.Contains(t, err.Error(), want)
	}
}

// One run names every missing and every malformed variable, each once.
func TestEveryProblemAtOnce(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"nothing set", map[string]string{}, []string{
			"DATABASE_URL is not set (required)", "LITELLM_URL is not set (required)",
			"LITELLM_MASTER_KEY is not set (required)", "set MODELS_FILE",
		}},
		{"missing and malformed", map[string]string{"MODELS_FILE": "m.yaml", "WAIT_TIMEOUT": "soon", "DRY_RUN": "perhaps", "LITELLM_CONCURRENCY": "0", "LITELLM_URL": "litellm:4000", "WAIT_FOR": "pod/x"}, []string{
			"WAIT_FOR: ",
			"DATABASE_URL is not set (required)", "LITELLM_MASTER_KEY is not set (required)",
			`WAIT_TIMEOUT: time: invalid duration "soon"`, "DRY_RUN: ", "LITELLM_CONCURRENCY must be between 1 and 64",
			"LITELLM_URL must be an http(s) URL",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadReconcile(context.Background(), envconfig.MapLookuper(tt.env))
			require.Error(t, err)
			var ce *Error
			require.ErrorAs(t, err, &ce)
			assert.Len(t, ce.Problems, len(tt.want), err.Error())
			for _, w := range tt.want {
				assert.Equal(t, 1, strings.Count(err.Error(), w), "%q once in:\n%s", w, err)
			}
		})
	}
	_, err := LoadSecrets(context.Background(), envconfig.MapLookuper(map[string]string{"TIMEOUT": "x", "POSTGRES_PORT": "y", "LOG_FORMAT": "xml"}))
	require.Error(t, err)
	for _, w := range []string{"TIMEOUT: ", "POSTGRES_PORT: ", "LOG_FORMAT must be"} {
		assert.Contains(t, err.Error(), w)
	}
}

func TestVariables(t *testing.T) {
	vars := Variables(Reconcile{})
	require.NotEmpty(t, vars)
	byName := map[string]Variable{}
	for _, v := range vars {
		assert.NotEmpty(t, v.Help, "%s has no help text", v.Name)
		byName[v.Name] = v
	}
	assert.True(t, byName["DATABASE_URL"].Required)
	assert.Equal(t, "10m", byName["WAIT_TIMEOUT"].Default)
	for _, v := range Variables(&Secrets{}) {
		assert.NotEmpty(t, v.Help, "%s has no help text", v.Name)
	}
	assert.Contains(t, Describe(Reconcile{}), "LITELLM_MASTER_KEY")
}
