// Package sigstoretest signs attestations the way GitHub's actions/attest does for a public repository,
// against a virtual Sigstore, for tests of the job image's signature check.
//
// Rekor (the transparency log entry: the DSSE entry, its signed entry timestamp and inclusion proof) and
// the timestamp authority are sigstore-go's VirtualSigstore (github.com/sigstore/sigstore-go
// pkg/testing/ca). Fulcio is a stand-in here, because VirtualSigstore's puts the identity in an e-mail
// SAN: this one issues what github.com/sigstore/fulcio issues for a GitHub Actions token, a short-lived
// code-signing certificate whose URI SAN is the workflow @ the ref and whose extension
// 1.3.6.1.4.1.57264.1.8 is the OIDC issuer. Bundles are Sigstore bundle v0.3 JSON
// (github.com/sigstore/protobuf-specs), pushed as actions/attest's push-to-registry does: an OCI referrer
// of the image with the bundle as its one layer.
package sigstoretest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
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
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// Issuer is GitHub Actions' OIDC issuer, as Fulcio records it.
const Issuer = "https://token.actions.githubusercontent.com"

// BundleType is the media type (and referrer artifact type) of a Sigstore bundle v0.3.
const BundleType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// PredicateType is the predicate of the statements Bundle signs (actions/attest-build-provenance's).
const PredicateType = "https://slsa.dev/provenance/v1"

var oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

// Sigstore is a virtual Sigstore instance: a Fulcio stand-in, VirtualSigstore's Rekor and TSA.
type Sigstore struct {
	virtual    *ca.VirtualSigstore
	fulcioKey  *ecdsa.PrivateKey
	fulcioCert *x509.Certificate
}

// New starts a Sigstore instance of its own (its keys are made here; nothing else trusts them).
func New(t testing.TB) *Sigstore {
	t.Helper()
	virtual, err := ca.NewVirtualSigstore()
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sigstore", Organization: []string{"sigstore.dev"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &Sigstore{virtual: virtual, fulcioKey: key, fulcioCert: cert}
}

// TrustedMaterial is the instance's trusted root: the Fulcio stand-in's CA, VirtualSigstore's Rekor
// log key and TSA chain.
func (s *Sigstore) TrustedMaterial() root.TrustedMaterial {
	return trustedMaterial{s.virtual, &root.FulcioCertificateAuthority{
		Root: s.fulcioCert, URI: "https://fulcio.localhost",
		ValidityPeriodStart: s.fulcioCert.NotBefore, ValidityPeriodEnd: s.fulcioCert.NotAfter,
	}}
}

type trustedMaterial struct {
	*ca.VirtualSigstore
	fulcio *root.FulcioCertificateAuthority
}

func (m trustedMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority {
	return []root.CertificateAuthority{m.fulcio}
}

// BundleOption changes what Bundle makes.
type BundleOption func(*protobundle.Bundle)

// WithoutTlogEntry leaves the transparency log entry out of the bundle (the signed timestamp stays).
func WithoutTlogEntry() BundleOption {
	return func(b *protobundle.Bundle) { b.VerificationMaterial.TlogEntries = nil }
}

// Bundle signs an in-toto statement (SLSA provenance, empty predicate) about digest as the workflow
// identity san (a URL: the workflow file @ the ref), logs it in Rekor, has the TSA timestamp the
// signature, and returns the Sigstore bundle JSON.
func (s *Sigstore) Bundle(t testing.TB, san string, digest v1.Hash, opts ...BundleOption) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	u, err := url.Parse(san)
	require.NoError(t, err)
	issuer, err := asn1.Marshal(Issuer)
	require.NoError(t, err)
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(9 * time.Minute),
		URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		ExtraExtensions: []pkix.Extension{{Id: oidIssuerV2, Value: issuer}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, s.fulcioCert, &key.PublicKey, s.fulcioKey)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)

	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": "ghcr.io/acme/litemaas-sync", "digest": map[string]string{digest.Algorithm: digest.Hex}}},
		"predicateType": PredicateType,
		"predicate":     map[string]any{},
	})
	require.NoError(t, err)
	const pt = "application/vnd.in-toto+json"
	sum := sha256.Sum256(fmt.Appendf(nil, "DSSEv1 %d %s %d %s", len(pt), pt, len(stmt), stmt))
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	require.NoError(t, err)

	env := &dsse.Envelope{PayloadType: pt, Payload: base64.StdEncoding.EncodeToString(stmt),
		Signatures: []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}}}
	entry, err := s.virtual.GenerateTlogEntry(leaf, env, sig, now.Unix(), true)
	require.NoError(t, err)
	// The entry as a bundle holds it: VirtualSigstore keeps the kind and the signed entry timestamp (the
	// inclusion promise) beside its protobuf form, so they are added here, the promise signed again with
	// the log's key over the same payload.
	tle := proto.Clone(entry.TransparencyLogEntry()).(*protorekor.TransparencyLogEntry)
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	set, err := s.virtual.RekorSignPayload(tlog.RekorPayload{Body: base64.StdEncoding.EncodeToString(tle.CanonicalizedBody),
		IntegratedTime: tle.IntegratedTime, LogIndex: tle.LogIndex, LogID: hex.EncodeToString(tle.LogId.KeyId)})
	require.NoError(t, err)
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tsr, err := s.virtual.TimestampResponse(sig)
	require.NoError(t, err)

	b := &protobundle.Bundle{
		MediaType: BundleType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: der}},
			TlogEntries: []*protorekor.TransparencyLogEntry{tle},
			TimestampVerificationData: &protobundle.TimestampVerificationData{
				Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: tsr}},
			},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: stmt, PayloadType: pt, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	for _, o := range opts {
		o(b)
	}
	raw, err := protojson.Marshal(b)
	require.NoError(t, err)
	return raw
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
