package jobimage

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA is a Fulcio stand-in (github.com/sigstore/fulcio: a root, and short-lived code-signing leaf
// certificates whose URI SAN is the workflow and whose extension 1.3.6.1.4.1.57264.1.8 the issuer).
type testCA struct {
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test sigstore"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{key, cert}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// bundle signs an in-toto statement about digest as workflow, and returns the Sigstore bundle v0.3 JSON.
func (ca *testCA) bundle(t *testing.T, san string, digest v1.Hash) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	u, err := url.Parse(san)
	require.NoError(t, err)
	issuer, err := asn1.Marshal(GitHubActionsIssuer)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(9 * time.Minute),
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV2, Value: issuer}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "ghcr.io/acme/litemaas-sync", "digest": map[string]string{digest.Algorithm: digest.Hex}}},
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate":     map[string]any{},
	})
	require.NoError(t, err)
	const pt = "application/vnd.in-toto+json"
	sum := sha256.Sum256(fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(pt), pt, len(stmt), stmt))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	require.NoError(t, err)
	b, err := json.Marshal(map[string]any{
		"mediaType":            "application/vnd.dev.sigstore.bundle.v0.3+json",
		"verificationMaterial": map[string]any{"certificate": map[string]any{"rawBytes": der}},
		"dsseEnvelope":         map[string]any{"payload": stmt, "payloadType": pt, "signatures": []any{map[string]any{"sig": sig}}},
	})
	require.NoError(t, err)
	return b
}

const (
	workflow = "https://github.com/acme/litemaas-gitops/.github/workflows/image.yaml"
	goodSAN  = workflow + "@refs/heads/main"
)

// attach pushes bundle as an OCI referrer of subject, as actions/attest's push-to-registry does.
func attach(t *testing.T, subject name.Digest, bundle []byte) {
	t.Helper()
	const bundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(bundle, bundleType)})
	require.NoError(t, err)
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	// The in-process registry takes a referrer's artifact type from its config's media type.
	img = mutate.ConfigMediaType(img, bundleType)
	h, err := v1.NewHash(subject.DigestStr())
	require.NoError(t, err)
	img = mutate.Subject(img, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h}).(v1.Image)
	d, err := img.Digest()
	require.NoError(t, err)
	require.NoError(t, remote.Write(subject.Context().Digest(d.String()), img))
}

func TestVerifyAttestations(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ca := newTestCA(t)
	other := newTestCA(t)

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
		{name: "good", attach: func(t *testing.T, d name.Digest, h v1.Hash) { attach(t, d, ca.bundle(t, goodSAN, h)) }},
		{name: "unsigned", attach: func(*testing.T, name.Digest, v1.Hash) {}, wantErr: ErrUnsigned, wantMsg: "no signature or attestation attached"},
		{name: "tampered digest", attach: func(t *testing.T, d name.Digest, _ v1.Hash) { attach(t, d, ca.bundle(t, goodSAN, anotherDigest(t))) },
			wantErr: ErrDigestMismatch, wantMsg: "digest mismatch: the attestation (https://slsa.dev/provenance/v1) is about sha256:"},
		{name: "wrong identity", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			attach(t, d, ca.bundle(t, "https://github.com/mallory/litemaas-gitops/.github/workflows/image.yaml@refs/heads/main", h))
		}, wantErr: ErrIdentityMismatch, wantMsg: `identity mismatch: signed by "https://github.com/mallory/litemaas-gitops/.github/workflows/image.yaml@refs/heads/main"`},
		{name: "another workflow of the repository", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			attach(t, d, ca.bundle(t, "https://github.com/acme/litemaas-gitops/.github/workflows/image.yaml.evil@refs/heads/main", h))
		}, wantErr: ErrIdentityMismatch, wantMsg: "identity mismatch"},
		{name: "untrusted CA", attach: func(t *testing.T, d name.Digest, h v1.Hash) { attach(t, d, other.bundle(t, goodSAN, h)) },
			wantErr: ErrUntrustedCertificate, wantMsg: "does not chain to the trusted Sigstore roots"},
		{name: "payload changed after signing", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			b := ca.bundle(t, goodSAN, h)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			env := m["dsseEnvelope"].(map[string]any)
			env["payloadType"] = "application/vnd.in-toto+jsonx"
			b, err := json.Marshal(m)
			require.NoError(t, err)
			attach(t, d, b)
		}, wantErr: ErrBadSignature, wantMsg: "DSSE signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, h := push(t, strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")))
			tc.attach(t, d, h)
			got, err := VerifyAttestations(context.Background(), d, Identity{Workflow: workflow}, ca.pool(), RegistryOptions{})
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

	_, err = VerifyBundle(raw, subject, identity, newTestCA(t).pool())
	assert.ErrorIs(t, err, ErrUntrustedCertificate)

	// The embedded roots are those of the test data.
	embedded, err := PublicGoodFulcio()
	require.NoError(t, err)
	_, err = VerifyBundle(raw, subject, identity, embedded)
	require.NoError(t, err)
}
