package jobimage

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type recordingTransport struct{ hosts []string }

func (r *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.hosts = append(r.hosts, req.URL.Scheme+"://"+req.URL.Host)
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func TestLoopbackHTTPOnly(t *testing.T) {
	tests := []struct {
		url     string
		allowed bool
	}{
		{"http://127.0.0.1:5000/v2/", true},
		{"http://127.8.9.10:5000/v2/", true},
		{"http://[::1]:5000/v2/", true},
		{"http://localhost:5000/v2/", true},
		{"https://ghcr.io/v2/", true},
		{"https://10.0.0.5:5000/v2/", true},
		// go-containerregistry would speak plain HTTP to these: private addresses, *.local names.
		{"http://10.0.0.5:5000/v2/", false},
		{"http://192.168.1.20/v2/", false},
		{"http://registry.local/v2/", false},
		{"http://ghcr.io/v2/", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			base := &recordingTransport{}
			req, err := http.NewRequest(http.MethodGet, tt.url, nil)
			require.NoError(t, err)
			_, err = LoopbackHTTPOnly(base).RoundTrip(req)
			if tt.allowed {
				require.NoError(t, err)
				assert.Len(t, base.hosts, 1)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "refusing plain HTTP to "+req.URL.Host)
			assert.Empty(t, base.hosts, "nothing was sent")
		})
	}
}

func authFile(t *testing.T, dir, file, registry, user, pass string) string {
	t.Helper()
	p := filepath.Join(dir, file)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o700))
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, registry, auth)), 0o600))
	return p
}

func resolved(t *testing.T, kc authn.Keychain, reg string) string {
	t.Helper()
	r, err := name.NewRegistry(reg)
	require.NoError(t, err)
	a, err := kc.Resolve(r)
	require.NoError(t, err)
	if a == authn.Anonymous {
		return "anonymous"
	}
	cfg, err := a.Authorization()
	require.NoError(t, err)
	return cfg.Username
}

// TestAuthFiles: every usual auth file is read, the first holding an entry for the registry wins.
func TestAuthFiles(t *testing.T) {
	home := t.TempDir()
	runtime := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("XDG_RUNTIME_DIR", runtime)
	t.Setenv("DOCKER_CONFIG", "")
	explicit := authFile(t, t.TempDir(), "auth.json", "quay.io", "from-registry-auth-file", "x")
	t.Setenv("REGISTRY_AUTH_FILE", explicit)
	authFile(t, runtime, "containers/auth.json", "ghcr.io", "from-podman-runtime", "x")
	authFile(t, home, ".config/containers/auth.json", "registry.example.com", "from-podman-config", "x")
	// Docker's, which also has an entry for ghcr.io: podman's comes first.
	require.NoError(t, os.MkdirAll(filepath.Join(home, ".docker"), 0o700))
	auth := base64.StdEncoding.EncodeToString([]byte("from-docker:x"))
	require.NoError(t, os.WriteFile(filepath.Join(home, ".docker/config.json"), []byte(`{"auths":{"ghcr.io":{"auth":"`+auth+`"},"https://index.docker.io/v1/":{"auth":"`+auth+`"},"docker.example.com":{"auth":"`+auth+`"}}}`), 0o600))

	kc := AuthFiles()
	for reg, want := range map[string]string{
		"quay.io":              "from-registry-auth-file",
		"ghcr.io":              "from-podman-runtime",
		"registry.example.com": "from-podman-config",
		"docker.example.com":   "from-docker",
		"index.docker.io":      "from-docker",
		"elsewhere.example":    "anonymous",
	} {
		assert.Equal(t, want, resolved(t, kc, reg), reg)
	}

	require.NoError(t, os.WriteFile(explicit, []byte("{not json"), 0o600))
	r, _ := name.NewRegistry("quay.io")
	_, err := AuthFiles().Resolve(r)
	assert.ErrorContains(t, err, "registry credentials in "+explicit)
}

// basicAuthRegistry is an in-process registry that wants user:pass.
func basicAuthRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return strings.TrimPrefix(s.URL, "http://")
}

func TestPushWithCredentialsAndLookup(t *testing.T) {
	host := basicAuthRegistry(t, "pusher", "pw")
	idx, err := random.Index(64, 1, 2)
	require.NoError(t, err)
	ctx := context.Background()
	ref := host + "/me/litemaas-sync:1.0.0"

	_, err = Push(ctx, idx, ref, RegistryOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "log in to "+host+" first: the credentials are read from $REGISTRY_AUTH_FILE")

	t.Setenv("REGISTRY_AUTH_FILE", authFile(t, t.TempDir(), "auth.json", host, "pusher", "pw"))
	d, err := Push(ctx, idx, ref, RegistryOptions{Keychain: AuthFiles()})
	require.NoError(t, err)
	want, _ := idx.Digest()
	assert.Equal(t, want.String(), d.DigestStr())

	_, err = Lookup(ctx, ref, RegistryOptions{})
	var ce *CheckError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, NeedsCredentials, ce.Kind)
	h, err := Lookup(ctx, ref, RegistryOptions{Keychain: AuthFiles()})
	require.NoError(t, err)
	assert.Equal(t, want, h)
	_, err = Lookup(ctx, host+"/me/litemaas-sync:2.0.0", RegistryOptions{Keychain: AuthFiles()})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, NotFound, ce.Kind)

	// Nothing listens there: unreachable, not "missing".
	_, err = Lookup(ctx, "127.0.0.1:1/me/litemaas-sync:1.0.0", RegistryOptions{})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, Unreachable, ce.Kind)
	assert.False(t, errors.Is(err, context.Canceled))
}

func TestKustomizeEntry(t *testing.T) {
	const digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	same, err := name.NewDigest(DefaultName + "@" + digest)
	require.NoError(t, err)
	assert.Equal(t, "images:\n  - name: ghcr.io/litemaas-gitops/litemaas-sync\n    digest: "+digest+"\n", KustomizeEntry(same))
	fork, err := name.NewDigest("ghcr.io/me/litemaas-sync@" + digest)
	require.NoError(t, err)
	assert.Equal(t, "images:\n  - name: ghcr.io/litemaas-gitops/litemaas-sync\n    newName: ghcr.io/me/litemaas-sync\n    digest: "+digest+"\n", KustomizeEntry(fork))
}

func TestMetadataRequired(t *testing.T) {
	_, err := Index(map[string][]byte{}, nil, Metadata{Source: "s", Version: "v"})
	assert.ErrorContains(t, err, "revision not set")
	_, err = Index(map[string][]byte{}, nil, Metadata{Source: "s", Version: "v", Revision: "r"})
	assert.ErrorContains(t, err, "set SOURCE_DATE_EPOCH")
}
