package jobimage

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
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

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage/sigstoretest"
)

const (
	workflow = "https://github.com/acme/litemaas-gitops/.github/workflows/image.yaml"
	goodSAN  = workflow + "@refs/heads/main"
)

func TestVerifyAttestations(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ca := sigstoretest.NewCA(t)
	other := sigstoretest.NewCA(t)

	push := func(t *testing.T, repo string) (name.Digest, v1.Hash) {
		idx, err := random.Index(64, 1, 2)
		require.NoError(t, err)
		idx = mutate.IndexMediaType(idx, types.OCIImageIndex)
		ref, err := name.ParseReference(host + "/acme/" + repo + ":1")
		require.NoError(t, err)
		require.NoError(t, remote.WriteIndex(ref, idx))
		h, err := idx.Digest()
		require.NoError(t, err)
		return ref.Context().Digest(h.String()), h
	}
	anotherDigest := func(t *testing.T) v1.Hash {
		img, err := random.Image(32, 1)
		require.NoError(t, err)
		h, err := img.Digest()
		require.NoError(t, err)
		return h
	}

	for _, tc := range []struct {
		name    string
		attach  func(t *testing.T, d name.Digest, h v1.Hash)
		wantErr error
		wantMsg string
	}{
		{name: "good", attach: func(t *testing.T, d name.Digest, h v1.Hash) { sigstoretest.Attach(t, d, ca.Bundle(t, goodSAN, h)) }},
		{name: "unsigned", attach: func(*testing.T, name.Digest, v1.Hash) {}, wantErr: ErrUnsigned, wantMsg: "no signature or attestation attached"},
		{name: "tampered digest", attach: func(t *testing.T, d name.Digest, _ v1.Hash) {
			sigstoretest.Attach(t, d, ca.Bundle(t, goodSAN, anotherDigest(t)))
		},
			wantErr: ErrDigestMismatch, wantMsg: "digest mismatch: the attestation (https://slsa.dev/provenance/v1) is about sha256:"},
		{name: "wrong identity", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, ca.Bundle(t, "https://github.com/mallory/litemaas-gitops/.github/workflows/image.yaml@refs/heads/main", h))
		}, wantErr: ErrIdentityMismatch, wantMsg: `identity mismatch: signed by "https://github.com/mallory/litemaas-gitops/.github/workflows/image.yaml@refs/heads/main"`},
		{name: "another workflow of the repository", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, ca.Bundle(t, "https://github.com/acme/litemaas-gitops/.github/workflows/image.yaml.evil@refs/heads/main", h))
		}, wantErr: ErrIdentityMismatch, wantMsg: "identity mismatch"},
		{name: "untrusted CA", attach: func(t *testing.T, d name.Digest, h v1.Hash) { sigstoretest.Attach(t, d, other.Bundle(t, goodSAN, h)) },
			wantErr: ErrUntrustedCertificate, wantMsg: "does not chain to the trusted Sigstore roots"},
		{name: "payload changed after signing", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			b := ca.Bundle(t, goodSAN, h)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			env := m["dsseEnvelope"].(map[string]any)
			env["payloadType"] = "application/vnd.in-toto+jsonx"
			b, err := json.Marshal(m)
			require.NoError(t, err)
			sigstoretest.Attach(t, d, b)
		}, wantErr: ErrBadSignature, wantMsg: "DSSE signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, h := push(t, strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")))
			tc.attach(t, d, h)
			got, err := VerifyAttestations(context.Background(), d, Identity{Workflow: workflow}, ca.Pool(), RegistryOptions{})
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Len(t, got, 1)
				assert.Equal(t, goodSAN, got[0].SAN)
				assert.Equal(t, "https://slsa.dev/provenance/v1", got[0].PredicateType)
				t.Logf("%s: verified %s signed by %s", tc.name, got[0].PredicateType, got[0].SAN)
				return
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.wantMsg)
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

// publicGoodFulcio reads the Fulcio certificates of Sigstore's public-good trusted root.
func publicGoodFulcio(t *testing.T) *x509.CertPool {
	t.Helper()
	raw, err := os.ReadFile("testdata/sigstore/trusted-root-public-good.json")
	require.NoError(t, err)
	var tr struct {
		CertificateAuthorities []struct {
			CertChain struct {
				Certificates []struct {
					RawBytes []byte `json:"rawBytes"`
				} `json:"certificates"`
			} `json:"certChain"`
		} `json:"certificateAuthorities"`
	}
	require.NoError(t, json.Unmarshal(raw, &tr))
	pool := x509.NewCertPool()
	n := 0
	for _, ca := range tr.CertificateAuthorities {
		for _, c := range ca.CertChain.Certificates {
			cert, err := x509.ParseCertificate(c.RawBytes)
			require.NoError(t, err)
			pool.AddCert(cert)
			n++
		}
	}
	require.Positive(t, n)
	return pool
}

// A bundle GitHub Actions really signed (through Sigstore's public-good Fulcio) verifies, and fails on
// another digest or another workflow, with the message that says which.
func TestVerifyBundleGitHubSigned(t *testing.T) {
	raw, err := os.ReadFile("testdata/sigstore/sigstore-js-2.0.0-provenance.sigstore.json")
	require.NoError(t, err)
	roots := publicGoodFulcio(t)
	subject := v1.Hash{Algorithm: "sha512", Hex: "46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c"}
	identity := Identity{Workflow: "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml"}

	a, err := VerifyBundle(raw, subject, identity, roots)
	require.NoError(t, err)
	assert.Equal(t, "https://slsa.dev/provenance/v1", a.PredicateType)
	assert.Equal(t, "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main", a.SAN)

	tampered := subject
	tampered.Hex = strings.Repeat("0", len(subject.Hex))
	_, err = VerifyBundle(raw, tampered, identity, roots)
	assert.ErrorIs(t, err, ErrDigestMismatch)
	t.Logf("tampered digest: %v", err)

	_, err = VerifyBundle(raw, subject, Identity{Workflow: "https://github.com/acme/litemaas-gitops/.github/workflows/image.yaml"}, roots)
	assert.ErrorIs(t, err, ErrIdentityMismatch)
	t.Logf("wrong identity: %v", err)

	_, err = VerifyBundle(raw, subject, identity, sigstoretest.NewCA(t).Pool())
	assert.ErrorIs(t, err, ErrUntrustedCertificate)

	// The embedded roots are those of the test data.
	embedded, err := PublicGoodFulcio()
	require.NoError(t, err)
	_, err = VerifyBundle(raw, subject, identity, embedded)
	require.NoError(t, err)
}
