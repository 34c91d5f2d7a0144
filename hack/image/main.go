// Command image builds the litemaas-sync job image without a container engine and publishes it:
//
//	go run ./hack/image build [--out _output/image] [--image NAME:TAG] [--ca-bundle FILE]
//	go run ./hack/image push  [--layout _output/image] --image REGISTRY/REPOSITORY:TAG
//	go run ./hack/image inspect [--layout _output/image]
//
// build writes an OCI image layout with one index for linux/amd64 and linux/arm64, and next to it
// (DIR.spdx.json) the SBOM of the image in SPDX 2.3 JSON, made from the binaries' build information. The labels and
// timestamps come from git (revision, `git describe`, the commit time) unless SOURCE_DATE_EPOCH,
// --revision, --version or --source say otherwise. push sends that index to a registry with the
// credentials of the usual auth files, then prints its digest and the overlay's images: entry.
package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
)

const usage = `usage:
  image build [--out DIR] [--image NAME:TAG] [--ca-bundle FILE] [--source URL] [--revision SHA] [--version V]
  image push  [--layout DIR] --image REGISTRY/REPOSITORY:TAG
  image inspect [--layout DIR]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		if errors.Is(err, flag.ErrHelp) || strings.HasPrefix(err.Error(), "usage") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("image "+args[0], flag.ContinueOnError)
	image := fs.String("image", jobimage.DefaultName+":dev", "image name (and tag)")
	switch args[0] {
	case "build":
		dir := fs.String("out", "_output/image", "directory of the OCI image layout to write")
		ca := fs.String("ca-bundle", "", "CA bundle to copy into the image (default: the host's, "+jobimage.CABundleCandidates[0]+" or the like)")
		source := fs.String("source", jobimage.DefaultSource, "repository URL (label org.opencontainers.image.source)")
		revision := fs.String("revision", "", "commit (default: git rev-parse HEAD)")
		version := fs.String("version", "", "version (default: git describe --tags --always --dirty)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if _, err := jobimage.ParseReference(*image); err != nil {
			return err
		}
		m, err := metadata(ctx, *source, *revision, *version)
		if err != nil {
			return err
		}
		start := time.Now()
		idx, binaries, err := jobimage.Build(ctx, jobimage.BuildOptions{Root: ".", CABundle: *ca, Metadata: m})
		if err != nil {
			return err
		}
		if err := jobimage.WriteLayout(*dir, *image, idx); err != nil {
			return err
		}
		ref, err := jobimage.ParseReference(*image)
		if err != nil {
			return err
		}
		sbom, err := jobimage.SBOM(idx, binaries, m, ref.Context().Name())
		if err != nil {
			return err
		}
		sbomPath, err := jobimage.WriteSBOM(*dir, sbom)
		if err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "built %s for linux/amd64 and linux/arm64 in %s (%s)\n", *image, time.Since(start).Round(time.Second), m.Version)
		fmt.Fprintf(out, "OCI layout: %s\nindex digest: %s\nSBOM (SPDX 2.3): %s sha256:%x\n", *dir, d, sbomPath, sha256.Sum256(sbom))
		return nil

	case "push":
		dir := fs.String("layout", "_output/image", "directory of the OCI image layout `image build` wrote")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		idx, built, err := jobimage.ReadLayout(*dir)
		if err != nil {
			return err
		}
		pushed, err := jobimage.Push(ctx, idx, *image, jobimage.RegistryOptions{Keychain: jobimage.AuthFiles()})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "pushed %s (built as %s)\ndigest: %s\n\n", *image, built, pushed.DigestStr())
		fmt.Fprintf(out, "Pin it in your overlay, gitops/overlays/<cluster>/kustomization.yaml (replace the %s entry):\n\n%s\n", jobimage.DefaultName, jobimage.KustomizeEntry(pushed))
		fmt.Fprintf(out, "and list it in images/images.yaml, under mirror.additionalImages:\n\n    - name: %s\n", pushed.Name())
		return nil

	case "inspect":
		dir := fs.String("layout", "_output/image", "directory of the OCI image layout `image build` wrote")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return inspect(out, *dir)

	default:
		return errors.New(usage)
	}
}

// inspect prints what the layout holds: the index, and per platform its manifest, how it runs and its files.
func inspect(out io.Writer, dir string) error {
	idx, built, err := jobimage.ReadLayout(dir)
	if err != nil {
		return err
	}
	d, err := idx.Digest()
	if err != nil {
		return err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "%s\nindex %s\n", built, d)
	for _, desc := range im.Manifests {
		img, err := idx.Image(desc.Digest)
		if err != nil {
			return err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\n%s  manifest %s\n  user %s, entrypoint %v, cmd %v, created %s\n", desc.Platform, desc.Digest,
			cf.Config.User, cf.Config.Entrypoint, cf.Config.Cmd, cf.Created.UTC().Format(time.RFC3339))
		rc := mutate.Extract(img)
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				rc.Close()
				return err
			}
			kind := "file"
			if h.Typeflag == tar.TypeDir {
				kind = "dir "
			}
			fmt.Fprintf(out, "  %s %04o %d:%d %10d /%s\n", kind, h.Mode, h.Uid, h.Gid, h.Size, h.Name)
		}
		rc.Close()
	}
	return nil
}

// metadata fills what the flags leave empty from git and SOURCE_DATE_EPOCH.
func metadata(ctx context.Context, source, revision, version string) (jobimage.Metadata, error) {
	m := jobimage.Metadata{Source: source, Revision: revision, Version: version}
	var err error
	if m.Revision == "" {
		if m.Revision, err = git(ctx, "rev-parse", "HEAD"); err != nil {
			return m, err
		}
	}
	if m.Version == "" {
		if m.Version, err = git(ctx, "describe", "--tags", "--always", "--dirty"); err != nil {
			return m, err
		}
	}
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		if epoch, err = git(ctx, "log", "-1", "--format=%ct"); err != nil {
			return m, err
		}
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return m, fmt.Errorf("SOURCE_DATE_EPOCH %q: want seconds since 1970: %w", epoch, err)
	}
	m.Created = time.Unix(sec, 0).UTC()
	return m, nil
}

func git(ctx context.Context, args ...string) (string, error) {
	b, err := exec.CommandContext(ctx, "git", args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return "", fmt.Errorf("git %s (the labels come from git; outside a checkout pass --revision, --version and SOURCE_DATE_EPOCH): %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}
