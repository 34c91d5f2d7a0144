package argocd

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
)

// oidcProvider answers an OpenID Connect discovery document on loopback over TLS, standing in for
// the provider the oidc overlay's settings name.
type oidcProvider struct {
	srv    *httptest.Server
	issuer string
	caPEM  []byte
}

func newOIDCProvider() *oidcProvider {
	p := &oidcProvider{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realms/litemaas/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer":                 p.issuer,
			"authorization_endpoint": p.issuer + "/protocol/openid-connect/auth",
			"token_endpoint":         p.issuer + "/protocol/openid-connect/token",
			"userinfo_endpoint":      p.issuer + "/protocol/openid-connect/userinfo",
		})
	})
	p.srv = httptest.NewTLSServer(mux)
	p.issuer = p.srv.URL + "/realms/litemaas"
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
	return p
}
