package ops

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage/sigstoretest"
)

// The fork's image workflow, as testRepoURL names the fork.
const testSigner = "https://github.com/test-org/litemaas-gitops/.github/workflows/image.yaml"

func TestSignerWorkflow(t *testing.T) {
	for in, want := range map[string]string{
		testRepoURL: testSigner,
		"https://github.com/test-org/litemaas-gitops":  testSigner,
		"https://github.com/test-org/litemaas-gitops/": testSigner,
		"https://gitlab.com/test-org/litemaas-gitops":  "",
		"https://github.com/YOUR-ORG/litemaas-gitops":  "",
		"git@github.com:test-org/litemaas-gitops.git":  "",
	} {
		got, ok := signerWorkflow(in)
		assert.Equal(t, want, got, in)
		assert.Equal(t, want != "", ok, in)
	}
}

// withSigstoreRoots makes s the Sigstore instance the preflight trusts for the test.
func withSigstoreRoots(t *testing.T, s *sigstoretest.Sigstore) {
	saved := sigstoreRoots
	sigstoreRoots = func() (jobimage.TrustedRoot, error) { return s.TrustedMaterial(), nil }
	t.Cleanup(func() { sigstoreRoots = saved })
}

// TestJobImageSignature: deploy's preflight verifies the job image's attestation against the fork's
// image workflow, in a registry with the OCI referrers API as ghcr.io has.
func TestJobImageSignature(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ca := sigstoretest.New(t)
	withSigstoreRoots(t, ca)
	push := func(t *testing.T, repo string) (string, name.Digest, v1.Hash) {
		idx, err := random.Index(64, 1, 2)
		require.NoError(t, err)
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
		ref := host + "/test-org/" + repo + ":0.1.0"
		r, err := name.ParseReference(ref)
		require.NoError(t, err)
		require.NoError(t, remote.WriteIndex(r, idx))
		h, err := idx.Digest()
		require.NoError(t, err)
		return ref, r.Context().Digest(h.String()), h
	}
	other, err := random.Image(32, 1)
	require.NoError(t, err)
	otherDigest, err := other.Digest()
	require.NoError(t, err)

	for _, tc := range []struct {
		name       string
		attach     func(t *testing.T, d name.Digest, h v1.Hash)
		fork       string
		status     string
		wantDetail string
	}{
		{name: "good", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, ca.Bundle(t, testSigner+"@refs/heads/main", h))
		}, status: statusOK, wantDetail: "https://slsa.dev/provenance/v1 signed by " + testSigner + "@refs/heads/main"},
		{name: "unsigned", attach: func(*testing.T, name.Digest, v1.Hash) {}, status: statusWarn, wantDetail: "is unsigned: "},
		{name: "tampered digest", attach: func(t *testing.T, d name.Digest, _ v1.Hash) {
			sigstoretest.Attach(t, d, ca.Bundle(t, testSigner+"@refs/heads/main", otherDigest))
		}, status: statusFail, wantDetail: "digest mismatch: the attestation (https://slsa.dev/provenance/v1) is about " + otherDigest.String()},
		{name: "wrong identity", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, ca.Bundle(t, "https://github.com/mallory/litemaas-gitops/.github/workflows/image.yaml@refs/heads/main", h))
		}, status: statusFail, wantDetail: `identity mismatch: signed by "https://github.com/mallory/litemaas-gitops/.github/workflows/image.yaml@refs/heads/main"`},
		{name: "no transparency log entry", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, ca.Bundle(t, testSigner+"@refs/heads/main", h, sigstoretest.WithoutTlogEntry()))
		}, status: statusFail, wantDetail: "no transparency log entry"},
		{name: "another CA", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, sigstoretest.New(t).Bundle(t, testSigner+"@refs/heads/main", h))
		}, status: statusWarn, wantDetail: "verify it with: gh attestation verify oci://"},
		{name: "fork not on github.com", attach: func(*testing.T, name.Digest, v1.Hash) {}, fork: "https://gitlab.com/test-org/litemaas-gitops.git", status: statusSkip, wantDetail: "is not a github.com repository"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref, d, h := push(t, strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")))
			tc.attach(t, d, h)
			fork := testRepoURL
			if tc.fork != "" {
				fork = tc.fork
			}
			r := checkJobImageSignature(context.Background(), ref, fork)
			t.Logf("%s: %s %s: %s", tc.name, r.Status, r.Check, r.Detail)
			assert.Equal(t, "job image signature", r.Component)
			assert.Equal(t, tc.status, r.Status)
			assert.Contains(t, r.Detail, tc.wantDetail)
		})
	}
}

// TestPreflightChecksTheJobImageSignature: deploy's preflight has the signature row, and a wrong
// identity stops the deploy.
func TestPreflightChecksTheJobImageSignature(t *testing.T) {
	setupCluster(t)
	reg := newTestRegistry(t, "", "")
	digest := reg.push(t, "my-org/litemaas-sync:0.1.0")
	root := repoCopy(t)
	pinJobImage(t, root, reg.host+"/my-org/litemaas-sync:0.1.0")
	o := DeployOptions{Root: root, RepoURL: testRepoURL, Yes: true, Out: io.Discard}
	_, rows, err := preflight(context.Background(), newCluster(t, srv.Config), &o)
	require.NoError(t, err)
	var sig []row
	for _, r := range rows {
		if r.Component == "job image signature" {
			sig = append(sig, r)
		}
	}
	require.Len(t, sig, 1)
	t.Logf("%+v", sig[0])
	// This registry has no referrers API and nothing attached: unsigned, a warning.
	assert.Equal(t, statusWarn, sig[0].Status)
	assert.Contains(t, sig[0].Detail, "is unsigned")
	assert.Contains(t, sig[0].Detail, digest)
}
