package ops

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
)

// sigstoreRoots is the Sigstore instance the job image's attestations must come from (Fulcio CAs, Rekor
// logs): Sigstore's public good, which actions/attest uses for public repositories. Tests put a virtual
// instance here.
var sigstoreRoots = jobimage.PublicGoodTrustedRoot

// imageWorkflow is the workflow of the fork that builds, pushes and attests the job image.
const imageWorkflow = ".github/workflows/image.yaml"

// signerWorkflow is the identity the fork's image workflow signs with (without the ref): the fork is
// the repository Argo CD syncs, so an image attested by its workflow is built from what it syncs.
func signerWorkflow(repoURL string) (string, bool) {
	u, err := url.Parse(strings.TrimSuffix(strings.TrimSuffix(repoURL, "/"), ".git"))
	if err != nil || u.Host != "github.com" {
		return "", false
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" || strings.Contains(repoURL, repoURLPlaceholder) {
		return "", false
	}
	return "https://github.com/" + parts[0] + "/" + parts[1] + "/" + imageWorkflow, true
}

// checkJobImageSignatures verifies the attestations of the images the overlay's hook Jobs run against
// the fork's image workflow, for those the pull check (pulled, one row per image, as checkJobImages
// returns them) found in their registry: an unreachable registry is not waited on twice.
func checkJobImageSignatures(ctx context.Context, overlayDir, fork string, pulled []row) []row {
	objs, err := manifests.Render(overlayDir)
	if err != nil {
		return nil // the pull check reports it
	}
	images := hookImages(objs)
	if len(images) != len(pulled) {
		return nil
	}
	var rows []row
	for i, h := range images {
		if pulled[i].Status == statusOK {
			rows = append(rows, checkJobImageSignature(ctx, h.ref, fork))
		}
	}
	return rows
}

// checkJobImageSignature: an attestation by the fork's workflow for the image's digest passes; none is a
// warning (an image pushed by hand has none); one that is about another digest, signed by another
// identity or whose signature does not verify stops the deploy, saying which.
func checkJobImageSignature(ctx context.Context, ref, fork string) row {
	const component = "job image signature"
	workflow, ok := signerWorkflow(fork)
	if !ok {
		return row{component, ref, statusSkip, fmt.Sprintf("the signer is your fork's image workflow on github.com; %q is not a github.com repository, so %s is not checked", fork, ref)}
	}
	check := "attested by " + strings.TrimPrefix(workflow, "https://")
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	anon := jobimage.RegistryOptions{Transport: registryTransport}
	digest, err := jobimage.Lookup(ctx, ref, anon)
	if err != nil {
		return row{component, check, statusSkip, ref + ": not checked, the registry does not show it anonymously (see the pull check)"}
	}
	r, err := jobimage.ParseReference(ref)
	if err != nil {
		return row{component, check, statusSkip, err.Error()}
	}
	roots, err := sigstoreRoots()
	if err != nil {
		return row{component, check, statusWarn, err.Error()}
	}
	verify := fmt.Sprintf("gh attestation verify oci://%s@%s --signer-workflow %s", r.Context().Name(), digest, strings.TrimPrefix(workflow, "https://github.com/"))
	got, err := jobimage.VerifyAttestations(ctx, r.Context().Digest(digest.String()), jobimage.Identity{Workflow: workflow}, roots, anon)
	switch {
	case err == nil:
		var types []string
		for _, a := range got {
			types = append(types, a.PredicateType)
		}
		return row{component, check, statusOK, fmt.Sprintf("%s@%s: %s signed by %s", r.Context().Name(), digest, strings.Join(types, ", "), got[0].SAN)}
	case errors.Is(err, jobimage.ErrUnsigned):
		return row{component, check, statusWarn, fmt.Sprintf("%s is unsigned: %v. Publish it from your fork's image workflow (%s) to have it attested", ref, err, imageWorkflow)}
	case errors.Is(err, jobimage.ErrDigestMismatch), errors.Is(err, jobimage.ErrIdentityMismatch), errors.Is(err, jobimage.ErrBadSignature):
		return row{component, check, statusFail, fmt.Sprintf("%s: %v. Do not deploy this image: pin one your fork's image workflow built and attested", ref, err)}
	case errors.Is(err, jobimage.ErrUntrustedCertificate):
		return row{component, check, statusWarn, fmt.Sprintf("%s: %v (GitHub signs a private repository's attestations with its own Sigstore CA, which this check does not hold); verify it with: %s", ref, err, verify)}
	default:
		return row{component, check, statusWarn, fmt.Sprintf("cannot read the attestations of %s: %v", ref, shortRegistryErr(err))}
	}
}
