package jobimage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// refNameAnnotation names an image in an OCI layout's index.json (as skopeo's oci:DIR:NAME reads it).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes idx as the only entry of a fresh OCI image layout in dir (an older layout there is
// replaced), named ref.
func WriteLayout(dir, ref string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("writing the OCI layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: ref})); err != nil {
		return fmt.Errorf("writing the OCI layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout returns the index WriteLayout wrote in dir, and the name it was built as.
func ReadLayout(dir string) (v1.ImageIndex, string, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, "", fmt.Errorf("no OCI layout in %s (run `make image` first): %w", dir, err)
	}
	root, err := p.ImageIndex()
	if err != nil {
		return nil, "", fmt.Errorf("reading %s: %w", dir, err)
	}
	m, err := root.IndexManifest()
	if err != nil {
		return nil, "", fmt.Errorf("reading %s/index.json: %w", dir, err)
	}
	if len(m.Manifests) != 1 || !m.Manifests[0].MediaType.IsIndex() {
		return nil, "", fmt.Errorf("%s/index.json must list exactly one image index, as `make image` writes it (found %d entries)", dir, len(m.Manifests))
	}
	idx, err := root.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return nil, "", fmt.Errorf("reading the index %s in %s: %w", m.Manifests[0].Digest, dir, err)
	}
	return idx, m.Manifests[0].Annotations[refNameAnnotation], nil
}

// RegistryOptions are how the registry is reached.
type RegistryOptions struct {
	// Keychain gives the credentials; nil means anonymous.
	Keychain authn.Keychain
	// Transport is the HTTP transport underneath; nil means remote.DefaultTransport. It is always wrapped
	// by LoopbackHTTPOnly.
	Transport http.RoundTripper
}

func (o RegistryOptions) remote(ctx context.Context) []remote.Option {
	kc := o.Keychain
	if kc == nil {
		kc = authn.NewMultiKeychain()
	}
	base := o.Transport
	if base == nil {
		base = remote.DefaultTransport
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(LoopbackHTTPOnly(base))}
}

// ParseReference parses an image reference. A registry on a loopback address may be plain HTTP (for a
// local or test registry); every other registry is reached over HTTPS only, see LoopbackHTTPOnly.
func ParseReference(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image %q: want <registry>/<repository>:<tag> or @sha256:<digest>: %w", ref, err)
	}
	return r, nil
}

// Push pushes idx (its blobs and manifests, then the index) to ref and returns the pushed digest.
func Push(ctx context.Context, idx v1.ImageIndex, ref string, o RegistryOptions) (name.Digest, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return name.Digest{}, err
	}
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.WriteIndex(r, idx, o.remote(ctx)...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w%s", r, err, credentialsHint(err, r))
	}
	return r.Context().Digest(d.String()), nil
}

// KustomizeEntry is the overlay's images: entry that points the job image of gitops/base at pushed.
func KustomizeEntry(pushed name.Digest) string {
	var b strings.Builder
	b.WriteString("images:\n")
	b.WriteString("  - name: " + DefaultName + "\n")
	if repo := pushed.Context().Name(); repo != DefaultName {
		b.WriteString("    newName: " + repo + "\n")
	}
	b.WriteString("    digest: " + pushed.DigestStr() + "\n")
	return b.String()
}

// Kind tells why an image cannot be pulled.
type Kind int

const (
	// Unreachable: no answer from the registry (network, DNS, TLS); nothing is known about the image.
	Unreachable Kind = iota
	// NotFound: the registry says there is no such repository or tag.
	NotFound
	// NeedsCredentials: the registry wants credentials (or better ones). A registry may say so for an
	// image that does not exist, to hide which private images do.
	NeedsCredentials
)

// CheckError is why Lookup could not fetch an image's manifest.
type CheckError struct {
	Ref  string
	Kind Kind
	Err  error
}

func (e *CheckError) Error() string { return e.Err.Error() }
func (e *CheckError) Unwrap() error { return e.Err }

// Lookup fetches ref's manifest (what a kubelet fetches first when it pulls) and returns its digest.
// The error is a *CheckError.
func Lookup(ctx context.Context, ref string, o RegistryOptions) (v1.Hash, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return v1.Hash{}, &CheckError{Ref: ref, Kind: NotFound, Err: err}
	}
	desc, err := remote.Head(r, o.remote(ctx)...)
	var te *transport.Error
	if errors.As(err, &te) {
		// A HEAD answer has no body, which is what tells "unknown" from "denied": ask again with GET.
		var d *remote.Descriptor
		if d, err = remote.Get(r, o.remote(ctx)...); err == nil {
			return d.Digest, nil
		}
		return v1.Hash{}, &CheckError{Ref: ref, Kind: classify(err), Err: err}
	}
	if err != nil {
		return v1.Hash{}, &CheckError{Ref: ref, Kind: classify(err), Err: err}
	}
	return desc.Digest, nil
}

func classify(err error) Kind {
	var te *transport.Error
	if !errors.As(err, &te) {
		return Unreachable
	}
	for _, d := range te.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return NotFound
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			return NeedsCredentials
		}
	}
	switch te.StatusCode {
	case http.StatusNotFound:
		return NotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return NeedsCredentials
	}
	return Unreachable
}

func credentialsHint(err error, r name.Reference) string {
	if classify(err) != NeedsCredentials {
		return ""
	}
	return fmt.Sprintf(" (log in to %s first: the credentials are read from $REGISTRY_AUTH_FILE, podman's auth.json and ~/.docker/config.json, e.g. `podman login %s` or `docker login %s`)",
		r.Context().RegistryStr(), r.Context().RegistryStr(), r.Context().RegistryStr())
}

// LoopbackHTTPOnly refuses plain HTTP to any host but a loopback one. go-containerregistry speaks plain
// HTTP to private (RFC 1918) addresses and *.local names too; a registry password must never cross a
// network in clear.
func LoopbackHTTPOnly(base http.RoundTripper) http.RoundTripper {
	return loopbackOnly{base}
}

type loopbackOnly struct{ base http.RoundTripper }

func (l loopbackOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !IsLoopback(req.URL.Hostname()) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only a registry on a loopback address may be reached without TLS", req.URL.Host)
	}
	return l.base.RoundTrip(req)
}

// IsLoopback reports whether host is localhost or a loopback IP address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AuthFiles returns the credentials of the usual auth files, searched in this order for an entry for
// the registry: $REGISTRY_AUTH_FILE, podman's ($XDG_RUNTIME_DIR/containers/auth.json, then
// ~/.config/containers/auth.json), docker's ($DOCKER_CONFIG/config.json, then ~/.docker/config.json,
// with its credential helpers). The first file with an entry wins; none means anonymous.
func AuthFiles() authn.Keychain {
	var paths []string
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		paths = append(paths, p)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		paths = append(paths, filepath.Join(d, "containers", "auth.json"))
	}
	home, _ := os.UserHomeDir()
	configHome := os.Getenv("XDG_CONFIG_HOME")
	if configHome == "" && home != "" {
		configHome = filepath.Join(home, ".config")
	}
	if configHome != "" {
		paths = append(paths, filepath.Join(configHome, "containers", "auth.json"))
	}
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		paths = append(paths, filepath.Join(d, "config.json"))
	}
	if home != "" {
		paths = append(paths, filepath.Join(home, ".docker", "config.json"))
	}
	var kcs []authn.Keychain
	for _, p := range paths {
		kcs = append(kcs, fileKeychain(p))
	}
	return authn.NewMultiKeychain(kcs...)
}

// fileKeychain reads a docker config or containers auth.json file when asked; a missing file is no
// credential, an unreadable one an error.
type fileKeychain string

func (f fileKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	fh, err := os.Open(string(f))
	if os.IsNotExist(err) {
		return authn.Anonymous, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry credentials: %w", err)
	}
	defer fh.Close()
	cf := configfile.New(string(f))
	if err := cf.LoadFromReader(fh); err != nil {
		return nil, fmt.Errorf("registry credentials in %s: %w", f, err)
	}
	return fromConfigFile(cf, target)
}

// DockerConfigKeychain reads the credentials of a .dockerconfigjson (a kubernetes.io/dockerconfigjson
// Secret, such as OpenShift's global pull secret).
func DockerConfigKeychain(data []byte) (authn.Keychain, error) {
	cf := configfile.New("")
	if err := cf.LoadFromReader(strings.NewReader(string(data))); err != nil {
		return nil, err
	}
	return configKeychain{cf}, nil
}

type configKeychain struct{ cf *configfile.ConfigFile }

func (c configKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	return fromConfigFile(c.cf, target)
}

// HasEntry reports whether data (a .dockerconfigjson) holds credentials for registry.
func HasEntry(data []byte, registry string) bool {
	kc, err := DockerConfigKeychain(data)
	if err != nil {
		return false
	}
	reg, err := name.NewRegistry(registry)
	if err != nil {
		return false
	}
	a, err := kc.Resolve(reg)
	return err == nil && a != authn.Anonymous
}

func fromConfigFile(cf *configfile.ConfigFile, target authn.Resource) (authn.Authenticator, error) {
	key := target.RegistryStr()
	if key == name.DefaultRegistry {
		key = authn.DefaultAuthKey
	}
	// Docker's lookup: credential helpers when configured, else the file's entries matched by host name
	// (also the https://host/v1/ form older clients wrote).
	cfg, err := cf.GetAuthConfig(key)
	if err != nil {
		return nil, fmt.Errorf("registry credentials for %s: %w", key, err)
	}
	if cfg.Username == "" && cfg.Password == "" && cfg.Auth == "" && cfg.IdentityToken == "" && cfg.RegistryToken == "" {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
		IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken,
	}), nil
}
