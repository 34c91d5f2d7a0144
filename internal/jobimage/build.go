// Package jobimage builds, publishes and checks the container image of the litemaas-sync job without a
// container engine: the binary is cross-compiled with the Go toolchain, and go-containerregistry
// assembles the image, writes it as an OCI image layout, pushes it and looks it up in a registry.
//
// The image is the Containerfile's final stage: the static binary and the CA bundle on an empty root,
// run as UID 1001 in group 0 (OpenShift replaces the UID with one from the namespace's range, group 0
// stays), the binary as entrypoint and `reconcile` as its default argument. Every timestamp is the
// commit's time (SOURCE_DATE_EPOCH), so that two builds of one commit with one toolchain and one CA
// bundle give the same index digest.
package jobimage

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image holds and how it runs; the Containerfile's final stage says the same (a test compares).
const (
	// BinaryPath is the job's binary in the image, its entrypoint.
	BinaryPath = "/litemaas-sync"
	// CABundlePath is where Go's crypto/x509 looks first on Linux.
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	// User is UID 1001 in group 0: never root, and files group-owned by root stay readable under the
	// arbitrary UID OpenShift's restricted-v2 assigns.
	User = "1001:0"
	// Package is the Go package of the binary.
	Package = "./cmd/litemaas-sync"
	// Title names the image; the last path element of the repositories it is pushed to.
	Title = "litemaas-sync"
	// DefaultName is the job image's name in gitops/base: the name the overlays' images: entries match.
	DefaultName = "ghcr.io/litemaas-gitops/litemaas-sync"
	// DefaultSource is the repository the image is built from, unless the build says otherwise.
	DefaultSource = "https://github.com/litemaas-gitops/litemaas-gitops"

	binaryMode   = 0o555
	caBundleMode = 0o644
	dirMode      = 0o755
)

// Entrypoint and Cmd of the image.
var (
	Entrypoint = []string{BinaryPath}
	Cmd        = []string{"reconcile"}
	// GoBuildFlags are the flags of the Containerfile's `go build`: no local paths in the binary, no
	// symbol table or debug information.
	GoBuildFlags = []string{"-trimpath", "-ldflags", "-s -w"}
	// Platforms are the platforms of the index, in index order.
	Platforms = []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
)

// CABundleCandidates are the host paths searched for the CA bundle, in Go's crypto/x509 order on Linux
// (Debian and Ubuntu first, then Fedora and RHEL, openSUSE, Alpine).
var CABundleCandidates = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
}

// Metadata describes one build; it becomes the OCI labels and the timestamps.
type Metadata struct {
	// Source is the URL of the repository (org.opencontainers.image.source).
	Source string
	// Revision is the commit (org.opencontainers.image.revision).
	Revision string
	// Version is the version, e.g. the output of `git describe` (org.opencontainers.image.version).
	Version string
	// Created is the commit's time (SOURCE_DATE_EPOCH): the image's creation time and every file's mtime.
	Created time.Time
}

// description is the Containerfile's description label, also the OCI description.
const description = "Argo CD PostSync job of litemaas-gitops: waits for the stack, migrates users.oauth_id, and reconciles the models catalog into LiteLLM and PostgreSQL, idempotently."

// Labels are the image's labels: the Containerfile's fixed ones and the OCI ones of this build.
func Labels(m Metadata) map[string]string {
	return map[string]string{
		"name":                                 Title,
		"summary":                              "Registers the LiteMaaS models catalog in LiteLLM and the LiteMaaS database",
		"description":                          description,
		"io.k8s.display-name":                  Title,
		"io.k8s.description":                   "Reconciles the LiteMaaS models catalog into LiteLLM and PostgreSQL",
		"io.openshift.tags":                    "litemaas,litellm,gitops",
		"org.opencontainers.image.title":       Title,
		"org.opencontainers.image.description": description,
		"org.opencontainers.image.source":      m.Source,
		"org.opencontainers.image.revision":    m.Revision,
		"org.opencontainers.image.version":     m.Version,
	}
}

func (m Metadata) validate() error {
	var missing []string
	for name, v := range map[string]string{"source": m.Source, "revision": m.Revision, "version": m.Version} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("image metadata: %s not set", strings.Join(missing, ", "))
	}
	if m.Created.IsZero() {
		return fmt.Errorf("image metadata: no creation time: set SOURCE_DATE_EPOCH to the commit's time (git log -1 --format=%%ct)")
	}
	return nil
}

// BuildOptions configures Build.
type BuildOptions struct {
	// Root is the module root, where go.mod is.
	Root string
	// Go is the go command; empty means "go" from PATH.
	Go string
	// CABundle is the host's CA bundle to copy into the image; empty means the first of CABundleCandidates.
	CABundle string
	// WorkDir receives the compiled binaries; empty means a temporary directory, removed afterwards.
	WorkDir  string
	Metadata Metadata
}

// Build cross-compiles the binary for every platform and assembles the index. It returns the binaries
// too (keyed by v1.Platform.String()), which the SBOM is made from.
func Build(ctx context.Context, o BuildOptions) (v1.ImageIndex, map[string][]byte, error) {
	if err := o.Metadata.validate(); err != nil {
		return nil, nil, err
	}
	ca, err := ReadCABundle(o.CABundle)
	if err != nil {
		return nil, nil, err
	}
	work := o.WorkDir
	if work == "" {
		if work, err = os.MkdirTemp("", "litemaas-image-"); err != nil {
			return nil, nil, err
		}
		defer os.RemoveAll(work)
	}
	binaries := map[string][]byte{}
	for _, p := range Platforms {
		bin, err := Compile(ctx, o.Go, o.Root, work, p)
		if err != nil {
			return nil, nil, err
		}
		data, err := os.ReadFile(bin)
		if err != nil {
			return nil, nil, err
		}
		binaries[p.String()] = data
	}
	idx, err := Index(binaries, ca, o.Metadata)
	return idx, binaries, err
}

// Compile builds the binary for platform p into dir with the Containerfile's flags and returns its path.
func Compile(ctx context.Context, goCmd, root, dir string, p v1.Platform) (string, error) {
	if goCmd == "" {
		goCmd = "go"
	}
	out := filepath.Join(dir, fmt.Sprintf("litemaas-sync-%s-%s", p.OS, p.Architecture))
	args := append([]string{"build"}, GoBuildFlags...)
	args = append(args, "-o", out, Package)
	cmd := exec.CommandContext(ctx, goCmd, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build for %s: %w\n%s", p, err, b)
	}
	return out, nil
}

// ReadCABundle reads the CA bundle at path (or the first of CABundleCandidates when path is empty) and
// checks that it holds certificates.
func ReadCABundle(path string) ([]byte, error) {
	paths := []string{path}
	if path == "" {
		paths = CABundleCandidates
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			if path == "" && os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("reading the CA bundle: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", p)
		}
		return data, nil
	}
	return nil, fmt.Errorf("no CA bundle found in %s: install the ca-certificates package or pass --ca-bundle", strings.Join(paths, ", "))
}

// Index assembles the index from one binary per platform (keyed by v1.Platform.String()) and the CA bundle.
func Index(binaries map[string][]byte, caBundle []byte, m Metadata) (v1.ImageIndex, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	var adds []mutate.IndexAddendum
	for _, p := range Platforms {
		bin, ok := binaries[p.String()]
		if !ok {
			return nil, fmt.Errorf("no binary for %s", p)
		}
		img, err := Image(bin, caBundle, p, m)
		if err != nil {
			return nil, err
		}
		p := p
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx = mutate.AppendManifests(idx, adds...)
	// The registry shows the index's annotations for a multi-platform image (ghcr.io links the package to
	// its repository through the source).
	ann := map[string]string{"org.opencontainers.image.created": m.Created.UTC().Format(time.RFC3339)}
	for k, v := range Labels(m) {
		if strings.HasPrefix(k, "org.opencontainers.image.") {
			ann[k] = v
		}
	}
	return mutate.Annotations(idx, ann).(v1.ImageIndex), nil
}

// Image assembles the image of one platform: one layer with the binary and the CA bundle.
func Image(binary, caBundle []byte, p v1.Platform, m Metadata) (v1.Image, error) {
	layerTar, err := layerTar(binary, caBundle, m.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	created := v1.Time{Time: m.Created.UTC()}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: created, CreatedBy: "COPY litemaas-sync ca-certificates.crt /", Comment: "hack/image build"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = created
	cf.Author = ""
	cf.Config = v1.Config{
		User:       User,
		Entrypoint: Entrypoint,
		Cmd:        Cmd,
		Labels:     Labels(m),
	}
	return mutate.ConfigFile(img, cf)
}

// layerTar is the layer's content: the parent directories, the CA bundle and the binary, owned by root,
// with the commit's time.
func layerTar(binary, caBundle []byte, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime = mtime.UTC().Truncate(time.Second)
	dirs := map[string]bool{}
	addDirs := func(file string) error {
		var parents []string
		for d := path.Dir(strings.TrimPrefix(file, "/")); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
			dirs[d] = true
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: dirMode, ModTime: mtime, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range []struct {
		name string
		mode int64
		data []byte
	}{{CABundlePath, caBundleMode, caBundle}, {BinaryPath, binaryMode, binary}} {
		if err := addDirs(f.name); err != nil {
			return nil, err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(f.name, "/"), Mode: f.mode, Size: int64(len(f.data)), ModTime: mtime, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
