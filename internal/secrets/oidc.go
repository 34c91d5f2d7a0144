package secrets

import (
	"fmt"
	"strings"

	"github.com/litemaas-gitops/litemaas-gitops/internal/kube"
)

// ModeOIDC: an OpenID Connect provider is the OAuth server. Its client id and secret come from a
// Secret the user creates in the namespace (by hand or through an ExternalSecret); the job copies
// them into backend-secret and touches no OAuthClient, so no cluster admin is involved.
const ModeOIDC Mode = "oidc"

// The user's Secret in oidc mode, and the backend-secret key the client id is copied to.
const (
	DefaultOIDCClientSecret = "oidc-client"
	KeyOIDCClientID         = "clientID"
	KeyOIDCClientSecret     = "clientSecret"
	KeyOAuthClientID        = "OAUTH_CLIENT_ID"
)

// OIDCClientError: the user's OIDC client Secret is missing or unusable. Nothing was written; the user
// must create or fix that Secret, so a retry without that cannot help.
type OIDCClientError struct {
	Namespace string
	Problems  []Problem
}

func (e *OIDCClientError) Error() string {
	var b strings.Builder
	name := ""
	if len(e.Problems) > 0 {
		name = e.Problems[0].Secret
	}
	fmt.Fprintf(&b, "OAUTH_MODE=oidc needs the Secret %s/%s with the keys %s and %s (the client registered at your OpenID Connect provider); nothing was changed:",
		e.Namespace, name, KeyOIDCClientID, KeyOIDCClientSecret)
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	fmt.Fprintf(&b, "\nCreate it with `oc create secret generic %s -n %s --from-literal=%s=<client id> --from-literal=%s=<client secret>` "+
		"(or let an ExternalSecret produce it), then re-sync", name, e.Namespace, KeyOIDCClientID, KeyOIDCClientSecret)
	return b.String()
}

// checkOIDCClient returns the client id and secret of the user's Secret, or the problems that keep
// them from being used. The messages name the Secret and key, never a value.
func checkOIDCClient(sec *kube.Secret, name string) (id, secret string, problems []Problem) {
	if sec == nil {
		for _, k := range []string{KeyOIDCClientID, KeyOIDCClientSecret} {
			problems = append(problems, Problem{Secret: name, Key: k, Message: "is missing: the Secret does not exist"})
		}
		return "", "", problems
	}
	values := map[string]string{}
	for _, k := range []string{KeyOIDCClientID, KeyOIDCClientSecret} {
		v, ok := sec.Data[k]
		if !ok {
			problems = append(problems, Problem{Secret: name, Key: k, Message: "is missing"})
			continue
		}
		// The backend sends both in the token request as they are: no whitespace anywhere.
		if msg := checkText(v, true); msg != "" {
			problems = append(problems, Problem{Secret: name, Key: k, Message: msg})
			continue
		}
		values[k] = string(v)
	}
	return values[KeyOIDCClientID], values[KeyOIDCClientSecret], problems
}

// SetOAuthClientID makes backend-secret's OAUTH_CLIENT_ID equal value (oidc mode: the provider's client
// id). As with the client secret, the user's Secret is the source: a different existing value is
// replaced, so that a client re-registered at the provider reaches the backend. It reports whether an
// existing value was replaced.
func (p *Plan) SetOAuthClientID(value string) (replaced bool) {
	s := p.Secret(BackendSecret)
	old, ok := s.Data[KeyOAuthClientID]
	switch {
	case ok && string(old) == value:
		return false
	case ok:
		s.Replaced = append(s.Replaced, KeyOAuthClientID)
		replaced = true
	default:
		s.Added = append(s.Added, KeyOAuthClientID)
	}
	s.Data[KeyOAuthClientID] = []byte(value)
	return replaced
}

// applyOIDCClient copies the user's client id and secret into the plan of backend-secret and returns
// what it changed, by key name.
func (s *syncer) applyOIDCClient(plan *Plan, id, secret string) []string {
	var changes []string
	for _, c := range []struct {
		key, value, from string
		set              func(string) bool
	}{
		{KeyOAuthClientID, id, KeyOIDCClientID, plan.SetOAuthClientID},
		{KeyOAuthClientSecret, secret, KeyOIDCClientSecret, plan.SetOAuthClientSecret},
	} {
		if v, ok := plan.Value(BackendSecret, c.key); ok && v == c.value {
			continue
		}
		if c.set(c.value) {
			s.log.Warn("backend-secret value differed from the OIDC client Secret; replacing it",
				"secret", BackendSecret, "key", c.key, "from", s.o.OIDCClientSecret+"/"+c.from)
		}
		changes = append(changes, c.key+" copied")
	}
	return changes
}
