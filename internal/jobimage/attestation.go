package jobimage

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// This file checks the Sigstore bundles the image workflow pushes next to the image (actions/attest:
// OCI referrers of the index, one layer holding the bundle). It is a scoped check, written against the
// Sigstore bundle format (github.com/sigstore/protobuf-specs, bundle v0.1 to v0.3) rather than with
// sigstore-go: the DSSE signature over the in-toto statement, the certificate's chain to the given roots
// at the certificate's own start time, the workflow identity in the certificate (URI SAN and OIDC issuer),
// and the statement's subject digest. It does not check the transparency log entry or a signed timestamp,
// so it trusts the certificate's validity window as the signing time; `gh attestation verify` does the
// full check.

// BundleArtifactTypePrefix starts the artifact type of a Sigstore bundle pushed as an OCI referrer.
const BundleArtifactTypePrefix = "application/vnd.dev.sigstore.bundle"

// GitHubActionsIssuer is the OIDC issuer of GitHub Actions' tokens, as Fulcio records it.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"

// Fulcio's certificate extensions for the OIDC issuer: the original (raw string) and the v2 one (DER
// UTF8String); see github.com/sigstore/fulcio docs/oid-info.md.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
)

// Identity is the signer an attestation must come from.
type Identity struct {
	// Workflow is the workflow file's URL without the ref, e.g.
	// https://github.com/<owner>/<repo>/.github/workflows/image.yaml; the certificate's URI SAN is this
	// followed by @<ref>.
	Workflow string
	// Issuer is the OIDC issuer; empty means GitHubActionsIssuer.
	Issuer string
}

// Why an attestation did not verify.
var (
	// ErrUnsigned: the registry holds no Sigstore bundle for the image.
	ErrUnsigned = errors.New("no signature or attestation")
	// ErrDigestMismatch: a bundle is attached but its statement is about another digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrIdentityMismatch: a bundle is attached but signed by another identity.
	ErrIdentityMismatch = errors.New("identity mismatch")
	// ErrBadSignature: the bundle's signature does not verify.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrUntrustedCertificate: the bundle's certificate does not chain to the given roots (another
	// Sigstore instance, e.g. GitHub's own for private repositories, or a forged certificate).
	ErrUntrustedCertificate = errors.New("certificate not issued by a trusted Sigstore CA")
)

// Attestation is one bundle that verified.
type Attestation struct {
	PredicateType string
	// SAN is the certificate's URI: the workflow and the ref it ran on.
	SAN string
}

// VerifyAttestations fetches the Sigstore bundles attached to digest (OCI referrers, with the tag
// fallback for registries without the referrers API) and verifies each. It returns those that verify,
// or an error wrapping ErrUnsigned when there is none, or, when bundles exist and none verifies, the
// reason of the first (ErrDigestMismatch, ErrIdentityMismatch, ErrBadSignature, ErrUntrustedCertificate)
// with the details.
func VerifyAttestations(ctx context.Context, digest name.Digest, want Identity, roots *x509.CertPool, o RegistryOptions) ([]Attestation, error) {
	idx, err := remote.Referrers(digest, o.remote(ctx)...)
	if err != nil {
		return nil, fmt.Errorf("listing what is attached to %s: %w", digest, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("listing what is attached to %s: %w", digest, err)
	}
	subject, err := v1.NewHash(digest.DigestStr())
	if err != nil {
		return nil, err
	}
	var ok []Attestation
	var errs []error
	for _, d := range im.Manifests {
		if !strings.HasPrefix(d.ArtifactType, BundleArtifactTypePrefix) {
			continue
		}
		raw, err := bundleOf(digest.Context().Digest(d.Digest.String()), o.remote(ctx))
		if err != nil {
			return nil, fmt.Errorf("reading the attestation %s of %s: %w", d.Digest, digest, err)
		}
		a, err := VerifyBundle(raw, subject, want, roots)
		if err != nil {
			errs = append(errs, fmt.Errorf("attestation %s: %w", d.Digest, err))
			continue
		}
		ok = append(ok, a)
	}
	if len(ok) > 0 {
		return ok, nil
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return nil, fmt.Errorf("%s: %w attached (the image workflow attests every image it pushes; an image built and pushed by hand has none)", digest, ErrUnsigned)
}

// bundleOf reads the bundle from the referrer manifest's one layer.
func bundleOf(ref name.Digest, opts []remote.Option) ([]byte, error) {
	img, err := remote.Image(ref, opts...)
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != 1 {
		return nil, fmt.Errorf("want one layer holding the bundle, found %d", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, 16<<20))
}

// The parts of a Sigstore bundle (JSON of dev.sigstore.bundle.v1.Bundle) this check reads.
type sigstoreBundle struct {
	MediaType            string `json:"mediaType"`
	VerificationMaterial struct {
		Certificate *struct {
			RawBytes []byte `json:"rawBytes"`
		} `json:"certificate"`
		X509CertificateChain *struct {
			Certificates []struct {
				RawBytes []byte `json:"rawBytes"`
			} `json:"certificates"`
		} `json:"x509CertificateChain"`
	} `json:"verificationMaterial"`
	DSSEEnvelope *struct {
		Payload     []byte `json:"payload"`
		PayloadType string `json:"payloadType"`
		Signatures  []struct {
			Sig []byte `json:"sig"`
		} `json:"signatures"`
	} `json:"dsseEnvelope"`
}

type inTotoStatement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string `json:"predicateType"`
}

// VerifyBundle verifies one bundle for subject: signature and chain first (a bundle that does not verify
// says nothing about identity or digest), then the identity, then the digest.
func VerifyBundle(raw []byte, subject v1.Hash, want Identity, roots *x509.CertPool) (Attestation, error) {
	var b sigstoreBundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return Attestation{}, fmt.Errorf("%w: not a Sigstore bundle: %v", ErrBadSignature, err)
	}
	if !strings.HasPrefix(b.MediaType, "application/vnd.dev.sigstore.bundle") {
		return Attestation{}, fmt.Errorf("%w: media type %q is not a Sigstore bundle's", ErrBadSignature, b.MediaType)
	}
	var der [][]byte
	switch vm := b.VerificationMaterial; {
	case vm.Certificate != nil:
		der = append(der, vm.Certificate.RawBytes)
	case vm.X509CertificateChain != nil:
		for _, c := range vm.X509CertificateChain.Certificates {
			der = append(der, c.RawBytes)
		}
	}
	if len(der) == 0 {
		return Attestation{}, fmt.Errorf("%w: the bundle holds no certificate (a key-signed bundle is not a keyless workflow signature)", ErrBadSignature)
	}
	leaf, err := x509.ParseCertificate(der[0])
	if err != nil {
		return Attestation{}, fmt.Errorf("%w: certificate: %v", ErrBadSignature, err)
	}
	inter := x509.NewCertPool()
	for _, d := range der[1:] {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return Attestation{}, fmt.Errorf("%w: intermediate certificate: %v", ErrBadSignature, err)
		}
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: leaf.NotBefore,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		return Attestation{}, fmt.Errorf("%w: the certificate does not chain to the trusted Sigstore roots: %v", ErrUntrustedCertificate, err)
	}
	env := b.DSSEEnvelope
	if env == nil || len(env.Signatures) == 0 {
		return Attestation{}, fmt.Errorf("%w: the bundle holds no DSSE envelope", ErrBadSignature)
	}
	pae := fmt.Appendf(nil, "DSSEv1 %d %s %d ", len(env.PayloadType), env.PayloadType, len(env.Payload))
	pae = append(pae, env.Payload...)
	if err := verifySignature(leaf, pae, env.Signatures[0].Sig); err != nil {
		return Attestation{}, fmt.Errorf("%w: DSSE signature: %v", ErrBadSignature, err)
	}

	san := ""
	if len(leaf.URIs) == 1 {
		san = leaf.URIs[0].String()
	}
	issuer := certIssuer(leaf)
	wantIssuer := want.Issuer
	if wantIssuer == "" {
		wantIssuer = GitHubActionsIssuer
	}
	if !strings.HasPrefix(san, strings.TrimSuffix(want.Workflow, "/")+"@") || issuer != wantIssuer {
		return Attestation{}, fmt.Errorf("%w: signed by %q (issuer %q), want %s@<ref> (issuer %q)", ErrIdentityMismatch, san, issuer, want.Workflow, wantIssuer)
	}

	if env.PayloadType != "application/vnd.in-toto+json" {
		return Attestation{}, fmt.Errorf("%w: payload type %q is not an in-toto statement", ErrBadSignature, env.PayloadType)
	}
	var st inTotoStatement
	if err := json.Unmarshal(env.Payload, &st); err != nil {
		return Attestation{}, fmt.Errorf("%w: in-toto statement: %v", ErrBadSignature, err)
	}
	var got []string
	for _, s := range st.Subject {
		if h := s.Digest[subject.Algorithm]; h != "" {
			if h == subject.Hex {
				return Attestation{PredicateType: st.PredicateType, SAN: san}, nil
			}
			got = append(got, subject.Algorithm+":"+h)
		}
	}
	return Attestation{}, fmt.Errorf("%w: the attestation (%s) is about %s, the image is %s", ErrDigestMismatch, st.PredicateType, strings.Join(got, ", "), subject)
}

// certIssuer is the OIDC issuer Fulcio wrote into the certificate.
func certIssuer(c *x509.Certificate) string {
	for _, e := range c.Extensions {
		switch {
		case e.Id.Equal(oidIssuerV2):
			var s string
			if _, err := asn1.Unmarshal(e.Value, &s); err == nil {
				return s
			}
		case e.Id.Equal(oidIssuerV1):
			return string(e.Value)
		}
	}
	return ""
}

// verifySignature checks sig over msg with the certificate's key (Fulcio issues ECDSA P-256 for GitHub
// Actions; RSA and Ed25519 for completeness).
func verifySignature(c *x509.Certificate, msg, sig []byte) error {
	sum := sha256.Sum256(msg)
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, sum[:], sig) {
			return errors.New("ECDSA signature does not match the payload")
		}
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, crypto.SHA256, sum[:], sig)
	case ed25519.PublicKey:
		if !ed25519.Verify(k, msg, sig) {
			return errors.New("Ed25519 signature does not match the payload")
		}
	default:
		return fmt.Errorf("unsupported key type %T", k)
	}
	return nil
}

// publicGoodTrustedRoot is the trusted root of Sigstore's public-good instance (the one GitHub's
// actions/attest uses for public repositories), as github.com/sigstore/sigstore-go ships it: Fulcio's root
// and intermediate certificates are what PublicGoodFulcio reads of it.
//
//go:embed sigstore-public-good-trusted-root.json
var publicGoodTrustedRoot []byte

// PublicGoodFulcio returns the certificates of the public-good Fulcio CAs, as the roots of VerifyBundle.
func PublicGoodFulcio() (*x509.CertPool, error) {
	var tr struct {
		CertificateAuthorities []struct {
			CertChain struct {
				Certificates []struct {
					RawBytes []byte `json:"rawBytes"`
				} `json:"certificates"`
			} `json:"certChain"`
		} `json:"certificateAuthorities"`
	}
	if err := json.Unmarshal(publicGoodTrustedRoot, &tr); err != nil {
		return nil, fmt.Errorf("the embedded Sigstore trusted root: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for _, ca := range tr.CertificateAuthorities {
		for _, c := range ca.CertChain.Certificates {
			cert, err := x509.ParseCertificate(c.RawBytes)
			if err != nil {
				return nil, fmt.Errorf("the embedded Sigstore trusted root: %w", err)
			}
			pool.AddCert(cert)
			n++
		}
	}
	if n == 0 {
		return nil, errors.New("the embedded Sigstore trusted root holds no Fulcio certificate")
	}
	return pool, nil
}
