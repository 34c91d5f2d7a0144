package pinimages

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/workload"
)

// toRegistry sends every registry request, whatever its host, to one in-process registry (go-containerregistry's
// pkg/registry), so that the tree's real image names resolve there.
type toRegistry struct {
	u    *url.URL
	base http.RoundTripper // trusts the test server's certificate
}

func (t toRegistry) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.URL.Host = t.u.Host
	return t.base.RoundTrip(r)
}

// pinTree copies the repository's gitops/ and images/ into a temporary root.
func pinTree(t *testing.T) string {
	t.Helper()
	src, err := manifests.RepoRoot()
	require.NoError(t, err)
	dst := t.TempDir()
	for _, d := range []string{"gitops", "images"} {
		require.NoError(t, os.CopyFS(filepath.Join(dst, d), os.DirFS(filepath.Join(src, d))))
	}
	return dst
}

// pinRegistry starts the registry and pushes one image for every tag the tree names, except skip.
func pinRegistry(t *testing.T, root string, skip string) jobimage.RegistryOptions {
	t.Helper()
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	o := jobimage.RegistryOptions{Transport: toRegistry{u: u, base: srv.Client().Transport}}
	inv, _, err := inventoryUses(root)
	require.NoError(t, err)
	_, ovl, err := overlayUses(root)
	require.NoError(t, err)
	for _, use := range append(inv, ovl...) {
		if use.ref() == skip {
			continue
		}
		img, err := random.Image(256, 1)
		require.NoError(t, err)
		ref, err := name.NewTag(use.ref())
		require.NoError(t, err)
		require.NoError(t, remote.Write(ref, img, remote.WithTransport(o.Transport)))
	}
	return o
}

// useOf returns the tree's use of repository repo in file (images.yaml or an overlay's images: entries).
func useOf(t *testing.T, root, file, repo string) imageUse {
	t.Helper()
	inv, _, err := inventoryUses(root)
	require.NoError(t, err)
	_, ovl, err := overlayUses(root)
	require.NoError(t, err)
	for _, u := range append(inv, ovl...) {
		if u.file == file && u.repo == repo {
			return u
		}
	}
	require.FailNow(t, "no use of "+repo+" in "+file)
	return imageUse{}
}

func TestPinImages(t *testing.T) {
	ctx := context.Background()
	root := pinTree(t)
	reg := pinRegistry(t, root, "")
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(root, rel))
		require.NoError(t, err)
		return string(b)
	}
	beforeInv, beforeOverlay := read(imagesFile), read("gitops/overlays/example/kustomization.yaml")

	var out bytes.Buffer
	require.NoError(t, PinImages(ctx, Options{Root: root, Registry: reg, Out: &out}))
	t.Logf("pin-images:\n%s", out.String())

	// Every tag an overlay sets is resolved: the entry gains its digest, images.yaml lists tag@digest.
	// The tags and lines are the tree's own, read before the run, so an upgrade of a pin needs no edit here.
	pg := useOf(t, root, imagesFile, "docker.io/library/postgres")
	d, err := jobimage.Lookup(ctx, pg.ref(), reg)
	require.NoError(t, err)
	inv, overlay := read(imagesFile), read("gitops/overlays/example/kustomization.yaml")
	assert.Contains(t, inv, "- name: "+pg.ref()+"@"+d.String()+"\n")
	assert.Contains(t, overlay, "  - name: docker.io/library/postgres\n    newTag: "+pg.tag+"\n    digest: "+d.String()+"\n")
	assert.Contains(t, out.String(), fmt.Sprintf("images/images.yaml:%d: %s -> %s@%s", pg.line, pg.ref(), pg.ref(), d))
	// The files keep their comments and layout: only lines with a digest are new or changed.
	assert.Equal(t, strings.Count(beforeInv, "\n"), strings.Count(inv, "\n"))
	assert.Contains(t, inv, "# Every container image the manifests in gitops/ run")
	assert.Equal(t, strings.Count(beforeOverlay, "\n")+strings.Count(overlay, "digest: "), strings.Count(overlay, "\n"))
	// A tag set outside the overlays' images: entries (the CloudNativePG Cluster's imageName) is
	// resolved but left as written: the manifests keep its tag, and the inventory must equal them.
	cnpg := useOf(t, root, imagesFile, "ghcr.io/cloudnative-pg/postgresql")
	assert.Contains(t, inv, "- name: "+cnpg.ref()+"\n")
	assert.Contains(t, out.String(), "not pinned: "+cnpg.ref()+" (images/images.yaml:")

	// The tree still passes the policy checks on images.
	c := manifests.NewChecker(root)
	ts, err := manifests.Targets(root)
	require.NoError(t, err)
	for _, f := range c.CheckTree(ts) {
		assert.NotEqual(t, "image inventory", f.Rule, f.String())
	}
	// Every image the example overlay renders is pinned as the cluster's workload admission policy
	// (gitops/cluster-policy) wants it: tag@digest passes the same rule, workload.Pinned.
	objs, err := manifests.Render(filepath.Join(root, "gitops/overlays/example"))
	require.NoError(t, err)
	for _, o := range objs {
		for _, img := range containerImages(o.Object) {
			assert.Empty(t, workload.Pinned(img), "%s/%s: %s", o.GetKind(), o.GetName(), img)
		}
	}

	// Idempotent: a second run changes nothing.
	out.Reset()
	require.NoError(t, PinImages(ctx, Options{Root: root, Registry: reg, Out: &out}))
	assert.Equal(t, inv, read(imagesFile))
	assert.Equal(t, overlay, read("gitops/overlays/example/kustomization.yaml"))
	assert.Contains(t, out.String(), "every image is pinned at its tag's current digest")

	// A tag moved in the registry: the next run writes its new digest.
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	require.NoError(t, remote.Write(name.MustParseReference("quay.io/rh-aiservices-bu/litemaas-frontend:0.4.0"), img, remote.WithTransport(reg.Transport)))
	moved, err := img.Digest()
	require.NoError(t, err)
	out.Reset()
	require.NoError(t, PinImages(ctx, Options{Root: root, Registry: reg, Out: &out}))
	assert.Contains(t, read(imagesFile), "quay.io/rh-aiservices-bu/litemaas-frontend:0.4.0@"+moved.String())
	assert.Contains(t, read("gitops/overlays/example/kustomization.yaml"), "digest: "+moved.String())
}

func TestPinImagesMissingTag(t *testing.T) {
	root := pinTree(t)
	backend := useOf(t, root, imagesFile, "quay.io/rh-aiservices-bu/litemaas-backend")
	entry := useOf(t, root, "gitops/overlays/example/kustomization.yaml", "quay.io/rh-aiservices-bu/litemaas-backend")
	reg := pinRegistry(t, root, backend.ref())
	before, err := os.ReadFile(filepath.Join(root, imagesFile))
	require.NoError(t, err)
	err = PinImages(context.Background(), Options{Root: root, Registry: reg})
	require.Error(t, err)
	t.Logf("%v", err)
	assert.Contains(t, err.Error(), fmt.Sprintf("images/images.yaml:%d: %s: the registry has no such tag", backend.line, backend.ref()))
	assert.Contains(t, err.Error(), fmt.Sprintf("gitops/overlays/example/kustomization.yaml:%d: %s", entry.line, backend.ref()))
	assert.Contains(t, err.Error(), "nothing written")
	after, err := os.ReadFile(filepath.Join(root, imagesFile))
	require.NoError(t, err)
	assert.Equal(t, string(before), string(after))
}
