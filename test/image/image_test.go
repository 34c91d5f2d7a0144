// Package image checks the job's container image as `make image` builds it, without a container engine:
// the OCI layout holds one index for linux/amd64 and linux/arm64, each image holds only the static
// binary and the CA bundle and runs as 1001:0, two builds of one commit give one digest, a push to a
// registry and a pull by digest give back the same image, the Containerfile describes the same image,
// and the binary taken from the image's layer does its real work as an arbitrary UID in group 0 with a
// read-only root filesystem and no HOME, as OpenShift's restricted-v2 runs it.
package image

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

// An arbitrary UID from an OpenShift namespace range, in group 0.
const uid = "1000680000"

var pg *pgtest.Server

// The build's metadata, as hack/image takes it from git.
var meta = jobimage.Metadata{
	Source:   jobimage.DefaultSource,
	Revision: "0123456789abcdef0123456789abcdef01234567",
	Version:  "v0.1.0-3-g0123456",
	Created:  time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
}

func TestMain(m *testing.M) {
	pg = pgtest.MustStart(m)
	code := m.Run()
	_ = pg.Stop()
	if work != "" {
		_ = os.RemoveAll(work)
	}
	os.Exit(code)
}

// The binaries are compiled once per test binary: cross-compiling costs most of the build's time.
var (
	compileOnce sync.Once
	work        string
	binaries    map[string][]byte
	caBundle    []byte
	compileErr  error
)

func compiled(t *testing.T) (map[string][]byte, []byte) {
	t.Helper()
	compileOnce.Do(func() {
		if work, compileErr = os.MkdirTemp("", "image-test-"); compileErr != nil {
			return
		}
		binaries = map[string][]byte{}
		for _, p := range jobimage.Platforms {
			var bin string
			if bin, compileErr = jobimage.Compile(context.Background(), "", "../..", work, p); compileErr != nil {
				return
			}
			if binaries[p.String()], compileErr = os.ReadFile(bin); compileErr != nil {
				return
			}
		}
		caBundle, compileErr = jobimage.ReadCABundle("")
	})
	require.NoError(t, compileErr)
	return binaries, caBundle
}

// buildLayout builds the index from the compiled binaries and writes it as `make image` does, into a
// fresh directory.
func buildLayout(t *testing.T, m jobimage.Metadata) (string, v1.ImageIndex) {
	t.Helper()
	bins, ca := compiled(t)
	idx, err := jobimage.Index(bins, ca, m)
	require.NoError(t, err)
	dir := filepath.Join(t.TempDir(), "image")
	require.NoError(t, jobimage.WriteLayout(dir, jobimage.DefaultName+":test", idx))
	return dir, idx
}

// The layout of meta, shared by the tests that only read it (compressing the layers takes seconds).
var (
	sharedOnce  sync.Once
	sharedDir   string
	sharedIndex v1.ImageIndex
	sharedErr   error
)

func sharedLayout(t *testing.T) (string, v1.ImageIndex) {
	t.Helper()
	bins, ca := compiled(t)
	sharedOnce.Do(func() {
		var idx v1.ImageIndex
		if idx, sharedErr = jobimage.Index(bins, ca, meta); sharedErr != nil {
			return
		}
		sharedDir = filepath.Join(work, "layout")
		if sharedErr = jobimage.WriteLayout(sharedDir, jobimage.DefaultName+":test", idx); sharedErr != nil {
			return
		}
		// Read back, as push does: the tests see what is on disk.
		sharedIndex, _, sharedErr = jobimage.ReadLayout(sharedDir)
	})
	require.NoError(t, sharedErr)
	return sharedDir, sharedIndex
}

// file is one entry of an image's filesystem.
type file struct {
	Mode     int64
	UID, GID int
	Type     byte
	ModTime  time.Time
	Data     []byte
}

// filesOf flattens an image's layers as a container runtime does.
func filesOf(t *testing.T, img v1.Image) map[string]file {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	files := map[string]file{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		files[h.Name] = file{Mode: h.Mode, UID: h.Uid, GID: h.Gid, Type: h.Typeflag, ModTime: h.ModTime.UTC(), Data: data}
	}
	return files
}

func TestLayoutHoldsOneIndexForBothPlatforms(t *testing.T) {
	dir, _ := sharedLayout(t)

	// Open it with the library, as a registry client would read it.
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	root, err := p.ImageIndex()
	require.NoError(t, err)
	rm, err := root.IndexManifest()
	require.NoError(t, err)
	require.Len(t, rm.Manifests, 1, "index.json names one index")
	assert.Equal(t, types.OCIImageIndex, rm.Manifests[0].MediaType)
	assert.Equal(t, jobimage.DefaultName+":test", rm.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
	idx, err := root.ImageIndex(rm.Manifests[0].Digest)
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	assert.Equal(t, meta.Source, im.Annotations["org.opencontainers.image.source"])
	assert.Equal(t, meta.Revision, im.Annotations["org.opencontainers.image.revision"])

	var platforms []string
	for _, desc := range im.Manifests {
		require.NotNil(t, desc.Platform)
		platforms = append(platforms, desc.Platform.String())
		t.Run(desc.Platform.String(), func(t *testing.T) {
			assert.Equal(t, types.OCIManifestSchema1, desc.MediaType)
			img, err := idx.Image(desc.Digest)
			require.NoError(t, err)
			cf, err := img.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, desc.Platform.OS, cf.OS)
			assert.Equal(t, desc.Platform.Architecture, cf.Architecture)
			assert.Equal(t, "1001:0", cf.Config.User)
			assert.Equal(t, []string{"/litemaas-sync"}, cf.Config.Entrypoint)
			assert.Equal(t, []string{"reconcile"}, cf.Config.Cmd)
			assert.Empty(t, cf.Config.Env, "no environment: the Jobs set what the binary reads")
			assert.Equal(t, meta.Created, cf.Created.UTC())
			for label, want := range map[string]string{
				"org.opencontainers.image.source":      meta.Source,
				"org.opencontainers.image.revision":    meta.Revision,
				"org.opencontainers.image.version":     meta.Version,
				"org.opencontainers.image.title":       "litemaas-sync",
				"org.opencontainers.image.description": jobimage.Labels(meta)["description"],
			} {
				assert.Equal(t, want, cf.Config.Labels[label], label)
			}
			layers, err := img.Layers()
			require.NoError(t, err)
			assert.Len(t, layers, 1)

			files := filesOf(t, img)
			names := slices.Sorted(maps.Keys(files))
			for _, n := range names {
				f := files[n]
				t.Logf("%s: %c %04o %d:%d %s %d bytes /%s", desc.Platform, f.Type, f.Mode, f.UID, f.GID, f.ModTime.Format(time.RFC3339), len(f.Data), n)
			}
			assert.Equal(t, []string{"etc", "etc/ssl", "etc/ssl/certs", "etc/ssl/certs/ca-certificates.crt", "litemaas-sync"}, names,
				"the binary, the CA bundle and their directories: nothing else (no shell)")
			for n, f := range files {
				assert.Equal(t, 0, f.UID, n)
				assert.Equal(t, 0, f.GID, n)
				assert.Equal(t, meta.Created, f.ModTime, "%s: the commit's time", n)
				if f.Type == tar.TypeDir {
					assert.Equal(t, int64(0o755), f.Mode, n)
				}
			}
			bin := files["litemaas-sync"]
			assert.Equal(t, int64(0o555), bin.Mode)
			ca := files["etc/ssl/certs/ca-certificates.crt"]
			assert.Equal(t, int64(0o644), ca.Mode)
			_, hostCA := compiled(t)
			assert.Equal(t, hostCA, ca.Data)

			f, err := elf.NewFile(bytes.NewReader(bin.Data))
			require.NoError(t, err)
			want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[desc.Platform.Architecture]
			assert.Equal(t, want, f.Machine)
			for _, p := range f.Progs {
				assert.NotEqual(t, elf.PT_INTERP, p.Type, "a dynamic loader is required: the image has none")
			}
			libs, err := f.ImportedLibraries()
			require.NoError(t, err)
			assert.Empty(t, libs)
		})
	}
	assert.Equal(t, []string{"linux/amd64", "linux/arm64"}, platforms)
}

func TestTwoBuildsOfOneCommitGiveOneDigest(t *testing.T) {
	dirA, a := buildLayout(t, meta)
	dirB, b := buildLayout(t, meta)
	da, err := a.Digest()
	require.NoError(t, err)
	db, err := b.Digest()
	require.NoError(t, err)
	t.Logf("index digest of two builds: %s, %s", da, db)
	assert.Equal(t, da, db)
	ia, err := os.ReadFile(filepath.Join(dirA, "index.json"))
	require.NoError(t, err)
	ib, err := os.ReadFile(filepath.Join(dirB, "index.json"))
	require.NoError(t, err)
	assert.Equal(t, string(ia), string(ib))

	// The commit's time is what keeps them equal: another time, another digest.
	later := meta
	later.Created = meta.Created.Add(time.Second)
	_, c := buildLayout(t, later)
	dc, err := c.Digest()
	require.NoError(t, err)
	assert.NotEqual(t, da, dc)
}

// binaryFromImage writes the amd64 image's /litemaas-sync to a directory the arbitrary UID can read.
func binaryFromImage(t *testing.T) string {
	t.Helper()
	_, idx := sharedLayout(t)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	var img v1.Image
	for _, d := range im.Manifests {
		if d.Platform.Architecture == "amd64" {
			img, err = idx.Image(d.Digest)
			require.NoError(t, err)
		}
	}
	require.NotNil(t, img, "no linux/amd64 image in the index")
	f := filesOf(t, img)["litemaas-sync"]
	dir := t.TempDir()
	// Readable by the arbitrary UID: the test's temporary folders are private by default.
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	bin := filepath.Join(dir, "litemaas-sync")
	require.NoError(t, os.WriteFile(bin, f.Data, os.FileMode(f.Mode)))
	return bin
}

// The job's real work (wait, migrate, LiteLLM, database) by the image's own binary, as UID 1000680000:0
// in a mount namespace whose root is read-only, with an empty environment besides its configuration.
func TestImageBinaryRunsAsArbitraryUIDOnReadOnlyRootWithoutHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a read-only mount namespace and switch to an arbitrary UID (CI runs as root)")
	}
	for _, tool := range []string{"unshare", "setpriv"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "%s (Debian package util-linux) is needed", tool)
	}
	bin := binaryFromImage(t)
	const key = "sk-image-test"
	_, srv := litellmtest.NewTestServer(t, litellmtest.Options{MasterKey: key})
	catalog := filepath.Join(filepath.Dir(bin), "models.yaml")
	data, err := os.ReadFile("../../gitops/base/models.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(catalog, data, 0o644))

	env := []string{"MODELS_FILE=" + catalog, "DATABASE_URL=" + pg.NewDatabase(t, true), "LITELLM_URL=" + srv.URL,
		"LITELLM_MASTER_KEY=" + key, "LOG_FORMAT=json", "WAIT_TIMEOUT=30s"}
	script := `mount -o remount,bind,ro / && touch /probe-rw 2>/dev/null && { echo "root is writable"; exit 99; }
exec setpriv --reuid=` + uid + ` --regid=0 --clear-groups env -i "$@"`
	// The image's entrypoint and default argument.
	cmd := exec.Command("unshare", append([]string{"--mount", "sh", "-c", script, "sh"}, append(env, bin, jobimage.Cmd[0])...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "done: litellm created=5")
	assert.NotContains(t, string(out), key)
}
