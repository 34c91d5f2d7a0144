package wiring

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DiscoveryPath is where an OpenID Connect provider publishes its configuration, below the issuer.
const DiscoveryPath = "/.well-known/openid-configuration"

// discoveryTimeout bounds the one request: the backend itself gives up after 10 s at login.
const discoveryTimeout = 10 * time.Second

// maxDiscoveryBytes: a discovery document is a few KiB; more is not one.
const maxDiscoveryBytes = 1 << 20

// CheckOIDCIssuer fetches the issuer's discovery document and applies the backend's own rules (with
// AUTH_PROVIDER=oidc and NODE_ENV=production): the document's issuer must equal OAUTH_ISSUER without
// its trailing slash, and the authorization, token and userinfo endpoints must be https URLs. A
// backend that breaks one of them starts, answers ready, and fails every login. client nil: a client
// with the system's CAs (SSL_CERT_FILE adds a private CA).
func CheckOIDCIssuer(ctx context.Context, client *http.Client, backend, issuer string) []string {
	prefix := fmt.Sprintf("deployment/%s OAUTH_ISSUER %q", backend, issuer)
	u, err := url.Parse(issuer)
	if issuer == "" || err != nil || u.Scheme != "https" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return []string{prefix + " is not an https issuer URL such as https://keycloak.example.com/realms/litemaas (oidcIssuer in the overlay's cluster-settings)"}
	}
	want := strings.TrimSuffix(issuer, "/")
	discovery := want + DiscoveryPath
	if client == nil {
		client = &http.Client{}
	}
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, discovery, nil)
	if err != nil {
		return []string{fmt.Sprintf("%s: building the discovery request: %v", prefix, err)}
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return []string{fmt.Sprintf("%s: the discovery document %s is unreachable from the cluster (%v): the backend cannot start a login. "+
			"Check the issuer, the provider, and the cluster's egress; a provider behind a private CA needs that CA (SSL_CERT_FILE for this job, component custom-ca for the backend)",
			prefix, discovery, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return []string{fmt.Sprintf("%s: GET %s answered %s, not the discovery document: is the issuer (realm) right?", prefix, discovery, resp.Status)}
	}
	var doc struct {
		Issuer                string `json:"issuer"`
		AuthorizationEndpoint string `json:"authorization_endpoint"`
		TokenEndpoint         string `json:"token_endpoint"`
		UserinfoEndpoint      string `json:"userinfo_endpoint"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDiscoveryBytes)).Decode(&doc); err != nil {
		return []string{fmt.Sprintf("%s: %s is not a JSON discovery document (%v)", prefix, discovery, err)}
	}
	var problems []string
	if doc.Issuer != want {
		problems = append(problems, fmt.Sprintf("%s: the discovery document states issuer %q; the backend accepts only an exact match (without the trailing slash): set oidcIssuer to %q",
			prefix, doc.Issuer, doc.Issuer))
	}
	for _, e := range []struct{ name, value string }{
		{"authorization_endpoint", doc.AuthorizationEndpoint},
		{"token_endpoint", doc.TokenEndpoint},
		{"userinfo_endpoint", doc.UserinfoEndpoint},
	} {
		if eu, err := url.Parse(e.value); e.value == "" || err != nil || eu.Scheme != "https" || eu.Host == "" {
			problems = append(problems, fmt.Sprintf("%s: the discovery document's %s %q is not an https URL: the backend (NODE_ENV=production) refuses it", prefix, e.name, e.value))
		}
	}
	return problems
}
