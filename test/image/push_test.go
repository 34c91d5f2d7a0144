package image

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
)

// TestPushThenPullByDigest pushes the layout `make image` wrote to a registry on loopback (plain HTTP),
// pulls it back by the printed digest and compares it, manifest by manifest and layer by layer.
func TestPushThenPullByDigest(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")

	dir, _ := sharedLayout(t)
	built, builtAs, err := jobimage.ReadLayout(dir)
	require.NoError(t, err)
	assert.Equal(t, jobimage.DefaultName+":test", builtAs)

	ctx := context.Background()
	ref := host + "/my-org/litemaas-sync:0.1.0"
	pushed, err := jobimage.Push(ctx, built, ref, jobimage.RegistryOptions{})
	require.NoError(t, err)
	want, err := built.Digest()
	require.NoError(t, err)
	assert.Equal(t, want.String(), pushed.DigestStr())

	entry := jobimage.KustomizeEntry(pushed)
	t.Logf("overlay entry:\n%s", entry)
	assert.Equal(t, "images:\n  - name: ghcr.io/litemaas-gitops/litemaas-sync\n    newName: "+host+"/my-org/litemaas-sync\n    digest: "+want.String()+"\n", entry)

	byDigest, err := name.NewDigest(host + "/my-org/litemaas-sync@" + want.String())
	require.NoError(t, err)
	pulled, err := remote.Index(byDigest, remote.WithContext(ctx))
	require.NoError(t, err)
	got, err := pulled.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, got)

	bm, err := built.IndexManifest()
	require.NoError(t, err)
	pm, err := pulled.IndexManifest()
	require.NoError(t, err)
	assert.Equal(t, bm, pm)
	for _, d := range bm.Manifests {
		bi, err := built.Image(d.Digest)
		require.NoError(t, err)
		pi, err := pulled.Image(d.Digest)
		require.NoError(t, err)
		bl, err := bi.Layers()
		require.NoError(t, err)
		pl, err := pi.Layers()
		require.NoError(t, err)
		require.Len(t, pl, len(bl))
		for i := range bl {
			bd, _ := bl[i].Digest()
			pd, _ := pl[i].Digest()
			assert.Equal(t, bd, pd)
		}
		// The content itself came back: the files of the pulled image are those built.
		assert.Equal(t, filesOf(t, bi), filesOf(t, pi), d.Platform.String())
	}

	// The tag resolves to the same digest, as the kubelet would see it.
	h, err := jobimage.Lookup(ctx, ref, jobimage.RegistryOptions{})
	require.NoError(t, err)
	assert.Equal(t, want, h)
}
