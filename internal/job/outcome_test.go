package job

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"

	"github.com/litemaas-gitops/litemaas-gitops/internal/catalog"
	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/fault"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm"
	"github.com/litemaas-gitops/litemaas-gitops/internal/readiness"
)

func TestClassify(t *testing.T) {
	catErr := &catalog.Error{File: "models.yaml", Problems: []catalog.Problem{{Line: 3, Model: "a", Field: "contextLength", Msg: "required"}, {Line: 9, Model: "b", Field: "id"}}}
	stopped := &cli.StoppedError{Signal: syscall.SIGTERM}
	tests := []struct {
		name                        string
		err                         error
		code                        int
		reason                      string
		setting, file, model, field string
	}{
		{"success", nil, 0, ReasonSucceeded, "", "", "", ""},
		{"plain failure", errors.New("POST /model/new: status 500"), 1, ReasonFailed, "", "", "", ""},
		{"catalog", invalid(catErr), 2, ReasonInvalidCatalg, "", "models.yaml", "a", "contextLength"},
		{"missing apiKeyEnv", invalidInput("models.yaml", "a", "apiKeyEnv", errors.New("x")), 2, ReasonInvalidCatalg, "", "models.yaml", "a", "apiKeyEnv"},
		{"bad setting", invalid(errors.New("WAIT_FOR: bad")), 2, ReasonInvalidConfig, "", "", "", ""},
		{"usage", cli.Usagef("no"), 2, ReasonInvalidConfig, "", "", "", ""},
		{"not ready", &readiness.TimeoutError{}, 124, ReasonNotReady, "", "", "", ""},
		{"SIGTERM during the wait", stopped, 143, ReasonStopped, "", "", "", ""},
		{"SIGINT during the reconcile", fmt.Errorf("reconcile: %w", fmt.Errorf("x: %w", &cli.StoppedError{Signal: syscall.SIGINT})), 130, ReasonStopped, "", "", "", ""},
		{"wrong password", fmt.Errorf("reconcile: %w", &pgconn.PgError{Code: "28P01"}), 2, fault.DatabaseAuth, "DATABASE_URL user or password", "", "", ""},
		{"wrong master key", fmt.Errorf("reconcile: %w", &litellm.APIError{StatusCode: 401}), 2, fault.LiteLLMUnauthorized, "LITELLM_MASTER_KEY", "", "", ""},
		{"permanent from the wait", &fault.Permanent{Reason: fault.UntrustedCertificate, Setting: "the CA", Err: errors.New("x509")}, 2, fault.UntrustedCertificate, "the CA", "", "", ""},
		{"invalid DATABASE_URL keeps its own reason", invalid(fmt.Errorf("DATABASE_URL: %w", &pgconn.PgError{Code: "3D000"})), 2, fault.DatabaseMissing, "DATABASE_URL database", "", "", ""},
		{"cancelled without a cause is a failure", context.Canceled, 1, ReasonFailed, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			assert.Equal(t, tt.code, got.Code)
			assert.Equal(t, tt.code, Code(tt.err))
			assert.Equal(t, tt.reason, got.Reason)
			assert.Contains(t, got.Setting, tt.setting)
			assert.Equal(t, tt.file, got.File)
			assert.Equal(t, tt.model, got.Model)
			assert.Equal(t, tt.field, got.Field)
			if tt.err != nil {
				assert.ErrorIs(t, got, tt.err)
			}
			if tt.setting != "" {
				assert.Contains(t, got.Error(), tt.setting, "the message names the setting to fix")
			}
		})
	}
}

func TestEventNote(t *testing.T) {
	ee := classify(invalid(&catalog.Error{File: "models.yaml", Problems: []catalog.Problem{{Model: "a", Field: "contextLength"}}}))
	assert.Equal(t, "litemaas-sync (InvalidCatalog, exit 2, file models.yaml, model a, field contextLength): failed: nothing written: x",
		eventNote(ee, "failed: nothing written: x"))
	assert.Equal(t, "litemaas-sync (Succeeded, exit 0): done: y", eventNote(classify(nil), "done: y"))
}
