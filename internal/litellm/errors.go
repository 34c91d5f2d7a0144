package litellm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
)

// ErrNotFound is wrapped by errors for a deployment id the proxy does not know.
var ErrNotFound = errors.New("not found")

// maxErrorBody bounds the body kept in an APIError so that logs stay readable.
const maxErrorBody = 512

// maxResponseBody bounds what is read from the proxy; a full /model/info of a large proxy stays far below.
const maxResponseBody = 64 << 20

// APIError is a non-2xx answer of the proxy. Body is trimmed and never contains the master key.
type APIError struct {
	Method     string
	Path       string
	StatusCode int
	Body       string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.StatusCode, e.Body)
}

// transportError marks a failure below HTTP (dial, reset, timeout, truncated body) that happened while
// the caller's context was still live, so IsTransient can tell it apart from a cancellation.
type transportError struct {
	method, path string
	err          error
}

func (e *transportError) Error() string { return fmt.Sprintf("%s %s: %v", e.method, e.path, e.err) }
func (e *transportError) Unwrap() error { return e.err }

// IsTransient reports whether err may go away by itself, so that another attempt makes sense:
// connection refused or reset, timeouts, truncated responses, other network errors, and answers with
// status 429 or 5xx. It is false for other 4xx answers, ErrNotFound, and the cancellation or deadline
// of the caller's own context.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, ErrNotFound) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.StatusCode == 429 || apiErr.StatusCode >= 500
	}
	// Checked before the context errors: an http.Client timeout wraps context.DeadlineExceeded although
	// the caller's context is still live.
	var tErr *transportError
	if errors.As(err, &tErr) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}
