// Package redact is the one way the project keeps known secret values (passwords, the master key,
// model API keys) out of error messages and logs. The project's own messages never hold a value;
// this guards the messages of servers and libraries, which may quote a request, a URL or a key.
package redact

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// Mark replaces every redacted value.
const Mark = "[REDACTED]"

// MinLength is the shortest value replaced wherever it occurs. A shorter one is too likely to occur
// by chance inside other words (a 1-character password would turn "dial tcp" into "dial tc[REDACTED]")
// and too weak to be a real secret; it is still replaced where it stands as a URL's password
// (":<value>@").
const MinLength = 6

// Redactor removes known values from text. The zero value redacts nothing; it is not safe for
// concurrent Add, but String and Error may run concurrently once it is filled.
type Redactor struct {
	forms []string
}

// New returns a Redactor for values.
func New(values ...string) *Redactor {
	r := &Redactor{}
	r.Add(values...)
	return r
}

// Add names more values. Each is also redacted in the forms it takes inside a URL and a JSON string.
func (r *Redactor) Add(values ...string) {
	for _, v := range values {
		if v == "" {
			continue
		}
		var forms []string
		if len(v) >= MinLength {
			forms = append(forms, v, url.QueryEscape(v), url.PathEscape(v))
			if b, err := json.Marshal(v); err == nil {
				forms = append(forms, string(b[1:len(b)-1]))
			}
		} else {
			forms = append(forms, ":"+v+"@", ":"+url.QueryEscape(v)+"@", ":"+url.PathEscape(v)+"@")
			if u := url.UserPassword("u", v).String(); strings.HasPrefix(u, "u:") {
				forms = append(forms, ":"+strings.TrimPrefix(u, "u:")+"@")
			}
		}
		for _, f := range forms {
			if !slices.Contains(r.forms, f) {
				r.forms = append(r.forms, f)
			}
		}
	}
	// Longest first: a URL or a key containing another value is replaced whole.
	slices.SortStableFunc(r.forms, func(a, b string) int { return len(b) - len(a) })
}

// String returns s with every known value replaced by Mark.
func (r *Redactor) String(s string) string {
	if r == nil {
		return s
	}
	for _, f := range r.forms {
		if !strings.Contains(s, f) {
			continue
		}
		repl := Mark
		if strings.HasPrefix(f, ":") && strings.HasSuffix(f, "@") && len(f) < MinLength+2 {
			repl = ":" + Mark + "@" // a short value, replaced in its URL form only
		}
		s = strings.ReplaceAll(s, f, repl)
	}
	return s
}

// Error returns err with every known value replaced in its message; errors.Is and errors.As still
// see the original chain (whose own messages must then not be logged on their own).
func (r *Redactor) Error(err error) error {
	if err == nil || r == nil {
		return err
	}
	msg := err.Error()
	clean := r.String(msg)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
