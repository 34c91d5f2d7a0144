package jobimage

import (
	"context"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
)

// This file verifies the Sigstore bundles the image workflow pushes next to the image (actions/attest:
// OCI referrers of the index, one layer holding the bundle) with sigstore-go, as `gh attestation verify`
// does but for SCTs: the transparency log entry (Rekor: its signed entry timestamp or inclusion proof, by a log key of
// the trusted root) and an observer timestamp (the log's integrated time or an RFC 3161 signed
// timestamp), the certificate's chain to the trusted root's Fulcio CAs at that time, the DSSE signature
// over the in-toto statement, the workflow identity in the certificate (URI SAN and OIDC issuer) and the
// statement's subject digest. The certificate's embedded SCTs (its certificate transparency log entries)
// are not required: the Rekor entry already makes the signing public, and the identity check is what
// ties it to the fork.

// BundleArtifactTypePrefix starts the artifact type of a Sigstore bundle pushed as an OCI referrer.
const BundleArtifactTypePrefix = "application/vnd.dev.sigstore.bundle"

// GitHubActionsIssuer is the OIDC issuer of GitHub Actions' tokens, as Fulcio records it.
const GitHubActionsIssuer = "https://token.actions.githubusercontent.com"

// Identity is the signer an attestation must come from.
type Identity struct {
	// Workflow is the workflow file's URL without the ref, e.g.
	// https://github.com/<owner>/<repo>/.github/workflows/image.yaml; the certificate's URI SAN is this
	// followed by @<ref>.
	Workflow string
	// Issuer is the OIDC issuer; empty means GitHubActionsIssuer.
	Issuer string
}

func (w Identity) issuer() string {
	if w.Issuer == "" {
		return GitHubActionsIssuer
	}
	return w.Issuer
}

// certificateIdentity is w as sigstore-go's policy: the URI SAN is the workflow at any ref, the issuer
// exactly w's.
func (w Identity) certificateIdentity() (verify.CertificateIdentity, error) {
	san := "^" + regexp.QuoteMeta(strings.TrimSuffix(w.Workflow, "/")) + "@"
	return verify.NewShortCertificateIdentity(w.issuer(), "", "", san)
}

// TrustedRoot is the Sigstore instance attestations must come from: its Fulcio CAs, Rekor logs and
// timestamp authorities (sigstore-go's trusted material).
type TrustedRoot = root.TrustedMaterial

// Why an attestation did not verify.
var (
	// ErrUnsigned: the registry holds no Sigstore bundle for the image.
	ErrUnsigned = errors.New("no signature or attestation")
	// ErrDigestMismatch: a bundle is attached but its statement is about another digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrIdentityMismatch: a bundle is attached but signed by another identity.
	ErrIdentityMismatch = errors.New("identity mismatch")
	// ErrBadSignature: the bundle's signature, transparency log entry or timestamps do not verify.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrNoTransparencyLog: the bundle has no transparency log entry (it also wraps ErrBadSignature):
	// actions/attest logs every attestation of a public repository in Rekor.
	ErrNoTransparencyLog = errors.New("no transparency log entry")
	// ErrUntrustedCertificate: the bundle comes from a Sigstore instance the trusted root does not hold:
	// its certificate does not chain to the trusted Fulcio CAs (another instance, e.g. GitHub's own for
	// private repositories, or a forged certificate), or it is logged only in logs the root does not know.
	ErrUntrustedCertificate = errors.New("certificate not issued by a trusted Sigstore CA")
)

// Attestation is one bundle that verified.
type Attestation struct {
	PredicateType string
	// SAN is the certificate's URI: the workflow and the ref it ran on.
	SAN string
}

// VerifyAttestations fetches the Sigstore bundles attached to digest (OCI referrers, with the tag
// fallback for registries without the referrers API) and verifies each against trusted for want. It
// returns those that verify, or an error wrapping ErrUnsigned when there is none, or, when bundles exist
// and none verifies, the reason of the first (ErrDigestMismatch, ErrIdentityMismatch, ErrBadSignature,
// ErrNoTransparencyLog, ErrUntrustedCertificate), naming the image and the attestation.
func VerifyAttestations(ctx context.Context, digest name.Digest, want Identity, trusted TrustedRoot, o RegistryOptions) ([]Attestation, error) {
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
		a, err := VerifyBundle(raw, subject, want, trusted)
		if err != nil {
			errs = append(errs, fmt.Errorf("attestation %s of %s: %w", d.Digest, digest, err))
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

// VerifyBundle verifies one bundle for subject with sigstore-go: the verdict is its verifier's, with the
// transparency log entry and an observer timestamp required and the policy of subject's digest and
// want's identity. When it fails, explain says which part did, for the message.
func VerifyBundle(raw []byte, subject v1.Hash, want Identity, trusted TrustedRoot) (Attestation, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		return Attestation{}, fmt.Errorf("%w: not a Sigstore bundle: %v", ErrBadSignature, err)
	}
	digest, err := hex.DecodeString(subject.Hex)
	if err != nil {
		return Attestation{}, fmt.Errorf("digest %s: %w", subject, err)
	}
	id, err := want.certificateIdentity()
	if err != nil {
		return Attestation{}, fmt.Errorf("workflow %q: %w", want.Workflow, err)
	}
	v, err := verify.NewVerifier(trusted, verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1))
	if err != nil {
		return Attestation{}, err
	}
	res, err := v.Verify(&b, verify.NewPolicy(verify.WithArtifactDigest(subject.Algorithm, digest), verify.WithCertificateIdentity(id)))
	if err != nil {
		return Attestation{}, explain(v, &b, subject, want, id, trusted, err)
	}
	a := Attestation{SAN: res.Signature.Certificate.SubjectAlternativeName}
	if res.Statement != nil {
		a.PredicateType = res.Statement.GetPredicateType()
	}
	return a, nil
}

// explain turns the verifier's failure (failed) into the error of the part that failed: the certificate's
// CA or the log being unknown, no log entry, the signature or log entry not verifying, the identity, or
// the digest. The checks only classify; none of them can make a failed bundle pass.
func explain(v *verify.Verifier, b *bundle.Bundle, subject v1.Hash, want Identity, id verify.CertificateIdentity, trusted TrustedRoot, failed error) error {
	vc, err := b.VerificationContent()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, failed)
	}
	leaf := vc.Certificate()
	if leaf == nil {
		return fmt.Errorf("%w: the bundle is signed with a key, not a workflow's certificate", ErrBadSignature)
	}
	if _, err := verify.VerifyLeafCertificate(leaf.NotBefore, leaf, trusted); err != nil {
		return fmt.Errorf("%w: the certificate (issued by %q) does not chain to the trusted root's Fulcio CAs", ErrUntrustedCertificate, leaf.Issuer)
	}
	entries, err := b.TlogEntries()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, failed)
	}
	if len(entries) == 0 {
		return fmt.Errorf("%w: %w: the bundle was never logged in Sigstore's transparency log (Rekor), where actions/attest logs every attestation of a public repository", ErrBadSignature, ErrNoTransparencyLog)
	}
	known := false
	for _, e := range entries {
		if _, ok := trusted.RekorLogs()[hex.EncodeToString([]byte(e.LogKeyID()))]; ok {
			known = true
		}
	}
	if !known {
		return fmt.Errorf("%w: logged only in a transparency log the trusted root does not hold (log ID %x)", ErrUntrustedCertificate, entries[0].LogKeyID())
	}
	res, err := v.Verify(b, verify.NewPolicy(verify.WithoutArtifactUnsafe(), verify.WithoutIdentitiesUnsafe()))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	found := res.Signature.Certificate
	if err := id.Verify(*found); err != nil {
		return fmt.Errorf("%w: signed by %q (issuer %q), want the workflow %s@<ref> (issuer %q)", ErrIdentityMismatch, found.SubjectAlternativeName, found.Issuer, want.Workflow, want.issuer())
	}
	if res.Statement == nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, failed)
	}
	var got []string
	for _, s := range res.Statement.GetSubject() {
		for alg, h := range s.GetDigest() {
			got = append(got, alg+":"+h)
		}
	}
	slices.Sort(got)
	return fmt.Errorf("%w: the attestation (%s) is about %s, the image is %s", ErrDigestMismatch, res.Statement.GetPredicateType(), strings.Join(got, ", "), subject)
}

// publicGoodTrustedRoot is the trusted root (trusted_root.json) of Sigstore's public-good instance, the
// one GitHub's actions/attest uses for public repositories, as github.com/sigstore/sigstore-go ships it
// (examples/trusted-root-public-good.json).
//
// It is embedded rather than fetched over TUF (sigstore-go's tuf client, from tuf-repo-cdn.sigstore.dev)
// because deploy's preflight runs where the cluster's registry is reachable, which says nothing of
// Sigstore's TUF repository, and should give the same answer offline and write nothing under $HOME. The
// cost is key rotation: a bundle logged in a Rekor log, or certified by a Fulcio CA, newer than this copy
// is reported as ErrUntrustedCertificate, which the preflight shows as a warning with the `gh attestation
// verify` command (which fetches the current root over TUF), not as a failure. Refresh the copy when
// Sigstore adds a log or CA (`gh attestation trusted-root` prints the current one).
//
//go:embed sigstore-public-good-trusted-root.json
var publicGoodTrustedRoot []byte

// PublicGoodTrustedRoot is the trusted root of Sigstore's public-good instance, for VerifyAttestations.
func PublicGoodTrustedRoot() (TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(publicGoodTrustedRoot)
	if err != nil {
		return nil, fmt.Errorf("the embedded Sigstore trusted root: %w", err)
	}
	return tr, nil
}
