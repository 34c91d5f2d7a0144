package guardtest

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The backend guard's nginx, with the configuration kustomize renders for overlay example, in front of
// the stand-in of the 0.4.0 backend's authentication; and the same requests to the stand-in alone, which
// prove that the stand-in is open the way the real backend is.

const (
	overlay   = "gitops/overlays/example"
	browserUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
	jwtSecret = "test-jwt-secret-0123456789abcdef"
	adminKey  = "ltm_admin_0123456789abcdef"
	userKey   = "sk-user0123456789abcdef"
)

type request struct {
	name    string
	headers map[string]string
	// want: the status through the guard, and from the stand-in alone.
	guarded, direct int
	via             string // how the stand-in recognised it through the guard, for a 200
}

func requests() []request {
	return []request{
		{name: "no token, browser User-Agent", headers: map[string]string{"User-Agent": browserUA, "Accept": "application/json"},
			guarded: 401, direct: 200},
		{name: "no token, Origin http://localhost:3000", headers: map[string]string{"User-Agent": "python-requests/2.32", "Origin": "http://localhost:3000", "Accept": "application/json"},
			guarded: 401, direct: 200},
		{name: "no token, Referer http://127.0.0.1:3001/x", headers: map[string]string{"User-Agent": "python-requests/2.32", "Referer": "http://127.0.0.1:3001/x"},
			guarded: 401, direct: 200},
		{name: "garbage Authorization, browser User-Agent", headers: map[string]string{"User-Agent": browserUA, "Accept": "*/*", "Authorization": "Bearer not-a-token"},
			guarded: 401, direct: 200},
		{name: "valid JWT", headers: map[string]string{"User-Agent": browserUA, "Accept": "application/json", "Authorization": "Bearer " + SignJWT(jwtSecret, "user-1")},
			guarded: 200, direct: 200, via: "jwt"},
		{name: "ltm_admin_ key", headers: map[string]string{"User-Agent": "curl/8.5.0", "Authorization": "Bearer " + adminKey},
			guarded: 200, direct: 200, via: "admin-key"},
		{name: "sk- key", headers: map[string]string{"User-Agent": "curl/8.5.0", "Authorization": "Bearer " + userKey},
			guarded: 200, direct: 200, via: "user-key"},
	}
}

func newBackend() (*Backend, *httptest.Server) {
	b := &Backend{JWTSecret: jwtSecret, AdminKeys: []string{adminKey}, UserKeys: []string{userKey}}
	return b, httptest.NewServer(b)
}

func do(t *testing.T, method, url string, headers map[string]string, body io.Reader) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	require.NoError(t, err)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if _, ok := headers["User-Agent"]; !ok {
		req.Header.Set("User-Agent", "")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// TestGuardClosesTheBypass sends every request of requests() to each route family, through the guard
// and to the stand-in alone, and prints the table.
func TestGuardClosesTheBypass(t *testing.T) {
	backend, direct := newBackend()
	defer direct.Close()
	g := Start(t, RenderedConfig(t, overlay), strings.TrimPrefix(direct.URL, "http://"))

	var table strings.Builder
	fmt.Fprintf(&table, "%-26s %-44s %-7s %-7s %s\n", "route", "request", "guard", "alone", "reached the backend as")
	for _, path := range Families {
		for _, r := range requests() {
			resp := do(t, http.MethodGet, g.URL+path, r.headers, nil)
			_, _ = io.Copy(io.Discard, resp.Body)
			seen := "-"
			if resp.StatusCode == http.StatusOK {
				s := backend.Last()
				seen = s.Via + " (UA " + s.UserAgent + ")"
				assert.Equal(t, r.via, s.Via, "%s %s through the guard", path, r.name)
				assert.Equal(t, "litemaas-backend-guard", s.UserAgent, "the guard's own User-Agent")
				assert.Empty(t, s.Origin+s.Referer, "no Origin or Referer behind the guard")
				assert.Equal(t, r.headers["Authorization"], s.Authorization, "Authorization passes unchanged")
			}
			assert.Equal(t, r.guarded, resp.StatusCode, "%s %s through the guard", path, r.name)

			alone := do(t, http.MethodGet, direct.URL+path, r.headers, nil)
			_, _ = io.Copy(io.Discard, alone.Body)
			assert.Equal(t, r.direct, alone.StatusCode, "%s %s to the stand-in alone", path, r.name)
			fmt.Fprintf(&table, "%-26s %-44s %-7d %-7d %s\n", path, r.name, resp.StatusCode, alone.StatusCode, seen)
		}
	}
	t.Logf("requests (guard: through nginx with the rendered %s configuration; alone: the stand-in without it):\n%s", overlay, table.String())
}

// TestGuardPassesBodiesStreamsAndClientAddress: a request body arrives byte for byte, an SSE stream
// arrives event by event (the first before the backend writes the second), and X-Forwarded-For as the
// router set it.
func TestGuardPassesBodiesStreamsAndClientAddress(t *testing.T) {
	backend, direct := newBackend()
	defer direct.Close()
	g := Start(t, RenderedConfig(t, overlay), strings.TrimPrefix(direct.URL, "http://"))
	auth := map[string]string{"Authorization": "Bearer " + SignJWT(jwtSecret, "user-1"), "Content-Type": "application/json"}

	t.Run("body", func(t *testing.T) {
		body := make([]byte, 3<<20) // larger than any nginx buffer
		_, err := rand.Read(body)
		require.NoError(t, err)
		resp := do(t, http.MethodPost, g.URL+"/api/v1/subscriptions", auth, bytes.NewReader(body))
		_, _ = io.Copy(io.Discard, resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.True(t, bytes.Equal(body, backend.Last().Body), "the body arrives byte for byte (%d of %d bytes)", len(backend.Last().Body), len(body))
	})

	t.Run("X-Forwarded-For", func(t *testing.T) {
		h := map[string]string{"Authorization": auth["Authorization"], "X-Forwarded-For": "203.0.113.7, 10.128.2.15"}
		resp := do(t, http.MethodGet, g.URL+"/api/v1/usage/dashboard", h, nil)
		_, _ = io.Copy(io.Discard, resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "203.0.113.7, 10.128.2.15", backend.Last().XForwardedFor, "X-Forwarded-For as the router set it, nothing appended")
	})

	t.Run("SSE", func(t *testing.T) {
		backend.Release = make(chan struct{})
		defer func() { backend.Release = nil }()
		resp := do(t, http.MethodGet, g.URL+StreamPath, map[string]string{"Authorization": auth["Authorization"], "Accept": "text/event-stream"}, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
		r := bufio.NewReader(resp.Body)
		first := make(chan string, 1)
		go func() {
			var ev strings.Builder
			for {
				line, err := r.ReadString('\n')
				ev.WriteString(line)
				if err != nil || line == "\n" {
					first <- ev.String()
					return
				}
			}
		}()
		select {
		case ev := <-first:
			assert.Equal(t, StreamEvents[0], ev, "the first event, before the backend writes the second")
		case <-time.After(10 * time.Second):
			t.Fatal("the first SSE event did not arrive while the backend held the second: the guard buffers the stream")
		}
		close(backend.Release)
		rest, err := io.ReadAll(r)
		require.NoError(t, err)
		assert.Equal(t, StreamEvents[1], string(rest), "the second event, byte for byte")
	})
}

// The rewrite touches only the listen address, the upstream and the /tmp paths.
func TestRewrite(t *testing.T) {
	conf := RenderedConfig(t, overlay)
	out, err := Rewrite(conf, "127.0.0.1:1234", "127.0.0.1:5678", "/x/y")
	require.NoError(t, err)
	assert.Contains(t, out, "listen 127.0.0.1:1234;")
	assert.Contains(t, out, "server 127.0.0.1:5678;")
	assert.NotContains(t, out, " /tmp/")
	assert.Equal(t, strings.Count(conf, "\n"), strings.Count(out, "\n"))
	_, err = Rewrite(strings.Replace(conf, "listen 8080;", "listen 9090;", 1), "a", "b", "/c")
	assert.ErrorContains(t, err, "listen 8080")
}
