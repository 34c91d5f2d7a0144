package redact

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestString(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		in     string
		want   string
	}{
		{"a value", []string{"hunter22"}, "password hunter22 refused", "password [REDACTED] refused"},
		{"as JSON", []string{`sk-"quoted"`}, `{"key":"sk-\"quoted\""}`, `{"key":"[REDACTED]"}`},
		{"percent-encoded in a URL", []string{"p@ss/word"}, "postgres://u:p%40ss%2Fword@h/db", "postgres://u:[REDACTED]@h/db"},
		{"longest first", []string{"secret", "secret-and-more"}, "x secret-and-more y", "x [REDACTED] y"},
		{"short value not inside words", []string{"p"}, "dial tcp 127.0.0.1:5432: connection refused", "dial tcp 127.0.0.1:5432: connection refused"},
		{"short value as a URL password", []string{"p"}, "cannot parse postgres://u:p@h/db", "cannot parse postgres://u:[REDACTED]@h/db"},
		{"empty value", []string{""}, "nothing", "nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, New(tt.values...).String(tt.in))
		})
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	r := New("s3cret-value")
	err := r.Error(fmt.Errorf("query with s3cret-value failed: %w", context.Canceled))
	assert.Equal(t, "query with [REDACTED] failed: context canceled", err.Error())
	assert.ErrorIs(t, err, context.Canceled)
	plain := errors.New("no secret here")
	assert.Same(t, plain, r.Error(plain))
	assert.NoError(t, r.Error(nil))
	var nilR *Redactor
	assert.Same(t, plain, nilR.Error(plain))
}
