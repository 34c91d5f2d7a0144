package jobimage

import (
	"context"
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
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage/sigstoretest"
)

const (
	workflow = "https://github.com/acme/litemaas-gitops/.github/workflows/image.yaml"
	goodSAN  = workflow + "@refs/heads/main"
)

// TestVerifyAttestations: bundles of a virtual Sigstore (Fulcio, Rekor, TSA), pushed as OCI referrers
// of the image as actions/attest does, verified with the virtual instance's trusted root.
func TestVerifyAttestations(t *testing.T) {
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(true)))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	sigstore := sigstoretest.New(t)
	other := sigstoretest.New(t)

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
	img, err := random.Image(32, 1)
	require.NoError(t, err)
	anotherDigest, err := img.Digest()
	require.NoError(t, err)
	const mallory = "https://github.com/mallory/litemaas-gitops/.github/workflows/image.yaml@refs/heads/main"

	for _, tc := range []struct {
		name    string
		attach  func(t *testing.T, d name.Digest, h v1.Hash)
		wantErr []error
		wantMsg []string
	}{
		{name: "good", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, sigstore.Bundle(t, goodSAN, h))
		}},
		{name: "good without a signed timestamp", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, sigstore.Bundle(t, goodSAN, h, withoutTimestamp))
		}},
		{name: "unsigned", attach: func(*testing.T, name.Digest, v1.Hash) {},
			wantErr: []error{ErrUnsigned}, wantMsg: []string{"no signature or attestation attached"}},
		{name: "tampered digest", attach: func(t *testing.T, d name.Digest, _ v1.Hash) {
			sigstoretest.Attach(t, d, sigstore.Bundle(t, goodSAN, anotherDigest))
		}, wantErr: []error{ErrDigestMismatch}, wantMsg: []string{
			"digest mismatch: the attestation (https://slsa.dev/provenance/v1) is about " + anotherDigest.String() + ", the image is sha256:",
			"/acme/tampered-digest@sha256:", // the image
		}},
		{name: "wrong identity", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, sigstore.Bundle(t, mallory, h))
		}, wantErr: []error{ErrIdentityMismatch}, wantMsg: []string{
			`identity mismatch: signed by "` + mallory + `" (issuer "https://token.actions.githubusercontent.com"), want the workflow ` + workflow + "@<ref>",
			"/acme/wrong-identity@sha256:",
		}},
		{name: "another workflow of the repository", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, sigstore.Bundle(t, "https://github.com/acme/litemaas-gitops/.github/workflows/image.yaml.evil@refs/heads/main", h))
		}, wantErr: []error{ErrIdentityMismatch}, wantMsg: []string{"identity mismatch"}},
		{name: "no transparency log entry", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, sigstore.Bundle(t, goodSAN, h, sigstoretest.WithoutTlogEntry()))
		}, wantErr: []error{ErrNoTransparencyLog, ErrBadSignature}, wantMsg: []string{"no transparency log entry: the bundle was never logged"}},
		{name: "transparency log entry of another signature", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, swapTlogEntry(t, sigstore.Bundle(t, goodSAN, h), sigstore.Bundle(t, goodSAN, h)))
		}, wantErr: []error{ErrBadSignature}, wantMsg: []string{"signature does not verify"}},
		{name: "logged in a log the trusted root does not hold", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			sigstoretest.Attach(t, d, swapTlogEntry(t, sigstore.Bundle(t, goodSAN, h), other.Bundle(t, goodSAN, h)))
		}, wantErr: []error{ErrUntrustedCertificate}, wantMsg: []string{"logged only in a transparency log the trusted root does not hold"}},
		{name: "another Sigstore instance", attach: func(t *testing.T, d name.Digest, h v1.Hash) { sigstoretest.Attach(t, d, other.Bundle(t, goodSAN, h)) },
			wantErr: []error{ErrUntrustedCertificate}, wantMsg: []string{"does not chain to the trusted root's Fulcio CAs"}},
		{name: "payload changed after signing", attach: func(t *testing.T, d name.Digest, h v1.Hash) {
			b := sigstore.Bundle(t, goodSAN, h)
			var m map[string]any
			require.NoError(t, json.Unmarshal(b, &m))
			env := m["dsseEnvelope"].(map[string]any)
			env["payloadType"] = "application/vnd.in-toto+jsonx"
			b, err := json.Marshal(m)
			require.NoError(t, err)
			sigstoretest.Attach(t, d, b)
		}, wantErr: []error{ErrBadSignature}, wantMsg: []string{"signature does not verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, h := push(t, strings.ToLower(strings.ReplaceAll(tc.name, " ", "-")))
			tc.attach(t, d, h)
			got, err := VerifyAttestations(context.Background(), d, Identity{Workflow: workflow}, sigstore.TrustedMaterial(), RegistryOptions{})
			if tc.wantErr == nil {
				require.NoError(t, err)
				require.Len(t, got, 1)
				assert.Equal(t, goodSAN, got[0].SAN)
				assert.Equal(t, sigstoretest.PredicateType, got[0].PredicateType)
				t.Logf("%s: verified %s signed by %s", tc.name, got[0].PredicateType, got[0].SAN)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				assert.ErrorIs(t, err, want)
			}
			for _, want := range tc.wantMsg {
				assert.Contains(t, err.Error(), want)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

// withoutTimestamp leaves the RFC 3161 timestamp out: the log's integrated time is the observer timestamp,
// as in the bundles actions/attest makes for public repositories.
func withoutTimestamp(b *protobundle.Bundle) { b.VerificationMaterial.TimestampVerificationData = nil }

// swapTlogEntry gives bundle the transparency log entry of donor: a real entry of the same log, about
// another signature.
func swapTlogEntry(t *testing.T, bundle, donor []byte) []byte {
	t.Helper()
	var b, d map[string]any
	require.NoError(t, json.Unmarshal(bundle, &b))
	require.NoError(t, json.Unmarshal(donor, &d))
	b["verificationMaterial"].(map[string]any)["tlogEntries"] = d["verificationMaterial"].(map[string]any)["tlogEntries"]
	out, err := json.Marshal(b)
	require.NoError(t, err)
	return out
}

// A bundle GitHub Actions really signed (through Sigstore's public-good Fulcio, logged in its Rekor)
// verifies against the embedded public-good trusted root, transparency log entry included, and fails on
// another digest, another workflow, a removed log entry or another trusted root, saying which.
func TestVerifyBundleGitHubSigned(t *testing.T) {
	raw, err := os.ReadFile("testdata/sigstore/sigstore-js-2.0.0-provenance.sigstore.json")
	require.NoError(t, err)
	publicGood, err := PublicGoodTrustedRoot()
	require.NoError(t, err)
	subject := v1.Hash{Algorithm: "sha512", Hex: "46d4e2f74c4877316640000a6fdf8a8b59f1e0847667973e9859f774dd31b8f1e0937813b777fb66a2ac67d50540fe34640966eee9fc2ccca387082b4c85cd3c"}
	const release = "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml"
	identity := Identity{Workflow: release}

	a, err := VerifyBundle(raw, subject, identity, publicGood)
	require.NoError(t, err)
	assert.Equal(t, "https://slsa.dev/provenance/v1", a.PredicateType)
	assert.Equal(t, release+"@refs/heads/main", a.SAN)

	var withoutLog map[string]any
	require.NoError(t, json.Unmarshal(raw, &withoutLog))
	delete(withoutLog["verificationMaterial"].(map[string]any), "tlogEntries")
	noLog, err := json.Marshal(withoutLog)
	require.NoError(t, err)

	tampered := subject
	tampered.Hex = strings.Repeat("0", len(subject.Hex))
	for _, tc := range []struct {
		name     string
		raw      []byte
		subject  v1.Hash
		identity Identity
		trusted  TrustedRoot
		wantErr  error
		wantMsg  string
	}{
		{"tampered digest", raw, tampered, identity, publicGood, ErrDigestMismatch, "is about sha512:46d4e2f7"},
		{"wrong identity", raw, subject, Identity{Workflow: workflow}, publicGood, ErrIdentityMismatch,
			`signed by "` + release + `@refs/heads/main" (issuer "https://token.actions.githubusercontent.com"), want the workflow ` + workflow + "@<ref>"},
		{"wrong issuer", raw, subject, Identity{Workflow: release, Issuer: "https://accounts.google.com"}, publicGood, ErrIdentityMismatch,
			`want the workflow ` + release + `@<ref> (issuer "https://accounts.google.com")`},
		{"no transparency log entry", noLog, subject, identity, publicGood, ErrNoTransparencyLog, "signature does not verify: no transparency log entry"},
		{"another trusted root", raw, subject, identity, sigstoretest.New(t).TrustedMaterial(), ErrUntrustedCertificate, "does not chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBundle(tc.raw, tc.subject, tc.identity, tc.trusted)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.wantMsg)
			t.Logf("%s: %v", tc.name, err)
		})
	}
}
