// Package sigstoretest signs attestations the way GitHub's actions/attest does, with a local CA in
// place of Sigstore's Fulcio, for tests of the job image's signature check. It follows
// github.com/sigstore/fulcio (short-lived code-signing certificates whose URI SAN is the workflow and
// whose extension 1.3.6.1.4.1.57264.1.8 is the OIDC issuer), the DSSE envelope of
// github.com/secure-systems-lab/dsse, the Sigstore bundle v0.3 JSON of github.com/sigstore/protobuf-specs,
// and actions/attest's push-to-registry (an OCI referrer of the image with the bundle as its one layer).
package sigstoretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
	"net/url"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/require"
)

// Issuer is GitHub Actions' OIDC issuer, as Fulcio records it.
const Issuer = "https://token.actions.githubusercontent.com"

// BundleType is the media type (and referrer artifact type) of a Sigstore bundle v0.3.
const BundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"

var oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

// CA is a Fulcio stand-in.
type CA struct {
	key  *ecdsa.PrivateKey
	Cert *x509.Certificate
}

// NewCA makes a self-signed root.
func NewCA(t testing.TB) *CA {
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
	return &CA{key, cert}
}

// Pool is the CA as a root pool.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// Bundle signs an in-toto statement (SLSA provenance, empty predicate) about digest as the workflow
// identity san (a URL: the workflow file @ the ref) and returns the Sigstore bundle JSON.
func (ca *CA) Bundle(t testing.TB, san string, digest v1.Hash) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	u, err := url.Parse(san)
	require.NoError(t, err)
	issuer, err := asn1.Marshal(Issuer)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(9 * time.Minute),
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV2, Value: issuer}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
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
		"mediaType":            BundleType,
		"verificationMaterial": map[string]any{"certificate": map[string]any{"rawBytes": der}},
		"dsseEnvelope":         map[string]any{"payload": stmt, "payloadType": pt, "signatures": []any{map[string]any{"sig": sig}}},
	})
	require.NoError(t, err)
	return b
}

// Attach pushes bundle as an OCI referrer of subject (an index), as actions/attest's push-to-registry does.
func Attach(t testing.TB, subject name.Digest, bundle []byte, opts ...remote.Option) {
	t.Helper()
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: static.NewLayer(bundle, BundleType)})
	require.NoError(t, err)
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	// go-containerregistry's registry takes a referrer's artifact type from its config's media type.
	img = mutate.ConfigMediaType(img, BundleType)
	h, err := v1.NewHash(subject.DigestStr())
	require.NoError(t, err)
	img = mutate.Subject(img, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h}).(v1.Image)
	d, err := img.Digest()
	require.NoError(t, err)
	require.NoError(t, remote.Write(subject.Context().Digest(d.String()), img, opts...))
}
