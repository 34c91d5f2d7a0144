package secrets

import (
	"net/url"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// redactor removes known secret values from error messages. The job's own messages never hold a
// value; this guards the messages of the API server and of libraries, which may quote a request.
type redactor struct {
	values []string
}

// minRedactLength: shorter strings are too likely to occur by chance (and too weak to be real
// secrets); replacing them would garble messages.
const minRedactLength = 6

func (r *redactor) add(vs ...string) {
	for _, v := range vs {
		if len(v) < minRedactLength {
			continue
		}
		// The form a password takes inside a URL, too.
		for _, form := range []string{v, url.QueryEscape(v), url.PathEscape(v)} {
			if !slices.Contains(r.values, form) {
				r.values = append(r.values, form)
			}
		}
	}
	// Longest first: a URL is replaced whole before the password inside it.
	slices.SortFunc(r.values, func(a, b string) int { return len(b) - len(a) })
}

func (r *redactor) addSecret(sec *corev1.Secret) {
	if sec == nil {
		return
	}
	for _, v := range sec.Data {
		r.add(string(v))
	}
	for _, v := range sec.StringData {
		r.add(v)
	}
}

func (r *redactor) addPlan(p *Plan) {
	for _, sp := range p.Secrets {
		for _, v := range sp.Data {
			r.add(string(v))
		}
	}
}

// wrap returns err with every known value replaced in its message. errors.Is and errors.As still see
// the original chain.
func (r *redactor) wrap(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	clean := msg
	for _, v := range r.values {
		clean = strings.ReplaceAll(clean, v, "<redacted>")
	}
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
