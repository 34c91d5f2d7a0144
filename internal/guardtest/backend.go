// Package guardtest runs the backend guard's nginx configuration, as kustomize renders it, in front of a
// stand-in of the LiteMaaS 0.4.0 backend's authentication, for tests.
package guardtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Backend is a stand-in of the LiteMaaS 0.4.0 backend's request authentication, written from the
// behaviour of `authenticateWithDevBypass` in upstream's backend/src/plugins/auth.ts (tag v0.4.0),
// which guards the api-keys, subscriptions and usage routes:
//   - with an Authorization header, the normal authentication first: a JWT signed with JWT_SECRET, an
//     `ltm_admin_` key of ADMIN_API_KEYS, or a user's `sk-` key;
//   - when that header is absent or fails, the request is served as the built-in admin user when its
//     Origin or Referer contains an entry of ALLOWED_FRONTEND_ORIGINS (default localhost:3000,
//     localhost:3001, 127.0.0.1:3000, 127.0.0.1:3001), or when its User-Agent contains Mozilla, Chrome,
//     Safari or Firefox and none of curl, wget, Postman, and its Accept contains application/json or */*;
//   - otherwise 401.
//
// A request that gets through is answered 200 with what the backend saw (Seen), so that a test can tell
// which way it got in and what reached it.
type Backend struct {
	JWTSecret string
	AdminKeys []string
	UserKeys  []string

	mu   sync.Mutex
	last Seen
	// Release, when set, is waited on between the two events of the SSE route.
	Release chan struct{}
}

// BypassUser is the id of upstream's built-in admin user that the bypass serves a request as.
const BypassUser = "550e8400-e29b-41d4-a716-446655440001"

// defaultFrontendOrigins is ALLOWED_FRONTEND_ORIGINS when unset, as upstream has it.
var defaultFrontendOrigins = []string{"localhost:3000", "localhost:3001", "127.0.0.1:3000", "127.0.0.1:3001"}

// Seen is what the stand-in received on the last request it let through.
type Seen struct {
	Method, Path  string
	User, Via     string // Via: jwt, admin-key, user-key, allowed-origin, browser-pattern
	UserAgent     string
	Origin        string
	Referer       string
	Authorization string
	XForwardedFor string
	Body          []byte
}

// Last returns what the last request let through carried.
func (b *Backend) Last() Seen {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// Families are the three route families `authenticateWithDevBypass` guards, one read endpoint each.
var Families = []string{"/api/v1/api-keys", "/api/v1/subscriptions", "/api/v1/usage/dashboard"}

// StreamPath is a guarded route of the stand-in that answers with an SSE stream of two events.
const StreamPath = "/api/v1/usage/stream"

func (b *Backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	guarded := r.URL.Path == StreamPath || slices.ContainsFunc(Families, func(f string) bool {
		return r.URL.Path == f || strings.HasPrefix(r.URL.Path, f+"/")
	})
	if !guarded {
		http.NotFound(w, r)
		return
	}
	user, via := b.authenticate(r)
	if via == "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error":"Unauthorized"}`)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	seen := Seen{Method: r.Method, Path: r.URL.Path, User: user, Via: via, UserAgent: r.UserAgent(),
		Origin: r.Header.Get("Origin"), Referer: r.Header.Get("Referer"), Authorization: r.Header.Get("Authorization"),
		XForwardedFor: r.Header.Get("X-Forwarded-For"), Body: body}
	b.mu.Lock()
	b.last = seen
	b.mu.Unlock()
	if r.URL.Path == StreamPath {
		b.stream(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"user": user, "via": via})
}

// StreamEvents are the two events of the SSE route.
var StreamEvents = []string{"data: {\"n\":1,\"text\":\"first\"}\n\n", "data: {\"n\":2,\"text\":\"second\"}\n\n"}

func (b *Backend) stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	for i, ev := range StreamEvents {
		if i > 0 && b.Release != nil {
			select {
			case <-b.Release:
			case <-time.After(30 * time.Second):
				return
			}
		}
		_, _ = io.WriteString(w, ev)
		if f != nil {
			f.Flush()
		}
	}
}

// authenticate returns the user and how it was recognised, or "" for 401.
func (b *Backend) authenticate(r *http.Request) (user, via string) {
	if auth := r.Header.Get("Authorization"); auth != "" {
		token := strings.TrimSpace(strings.TrimPrefix(auth, "Bearer "))
		switch {
		case strings.HasPrefix(token, "ltm_admin_") && slices.Contains(b.AdminKeys, token):
			return "admin-key-user", "admin-key"
		case strings.HasPrefix(token, "sk-") && slices.Contains(b.UserKeys, token):
			return "key-user", "user-key"
		}
		if sub, ok := VerifyJWT(b.JWTSecret, token); ok {
			return sub, "jwt"
		}
	}
	// The bypass, as upstream 0.4.0 has it.
	origin, referer := r.Header.Get("Origin"), r.Header.Get("Referer")
	for _, o := range defaultFrontendOrigins {
		if (origin != "" && strings.Contains(origin, o)) || (referer != "" && strings.Contains(referer, o)) {
			return BypassUser, "allowed-origin"
		}
	}
	ua, accept := r.Header.Get("User-Agent"), r.Header.Get("Accept")
	browser := strings.Contains(ua, "Mozilla") || strings.Contains(ua, "Chrome") || strings.Contains(ua, "Safari") || strings.Contains(ua, "Firefox")
	tool := strings.Contains(ua, "curl") || strings.Contains(ua, "wget") || strings.Contains(ua, "Postman")
	if browser && !tool && (strings.Contains(accept, "application/json") || strings.Contains(accept, "*/*")) {
		return BypassUser, "browser-pattern"
	}
	return "", ""
}

var b64 = base64.RawURLEncoding

// SignJWT returns an HS256 JWT for user, valid for an hour: what the backend issues at login.
func SignJWT(secret, user string) string {
	head := b64.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"userId": user, "exp": time.Now().Add(time.Hour).Unix()})
	msg := head + "." + b64.EncodeToString(claims)
	return msg + "." + b64.EncodeToString(sign(secret, msg))
}

func sign(secret, msg string) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// VerifyJWT checks an HS256 JWT's signature and expiry and returns its userId.
func VerifyJWT(secret, token string) (string, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || secret == "" {
		return "", false
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, sign(secret, parts[0]+"."+parts[1])) {
		return "", false
	}
	raw, err := b64.DecodeString(parts[1])
	if err != nil {
		return "", false
	}
	var c struct {
		UserID string `json:"userId"`
		Exp    int64  `json:"exp"`
	}
	if json.Unmarshal(raw, &c) != nil || c.UserID == "" || time.Now().Unix() >= c.Exp {
		return "", false
	}
	return c.UserID, true
}

// String makes Seen printable in a failure message without its body.
func (s Seen) String() string {
	return fmt.Sprintf("%s %s as %s via %s (UA %q, Origin %q, Referer %q, XFF %q, %d body bytes)",
		s.Method, s.Path, s.User, s.Via, s.UserAgent, s.Origin, s.Referer, s.XForwardedFor, len(s.Body))
}
