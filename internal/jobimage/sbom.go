package jobimage

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// SBOMMediaType is the media type of the SBOM SBOM writes: SPDX 2.3 in JSON.
const SBOMMediaType = "application/spdx+json"

// SBOMPath is where `make image` writes the SBOM of the OCI layout in dir: next to it, not inside it, so
// the layout stays exactly what is pushed.
func SBOMPath(layoutDir string) string {
	return strings.TrimRight(layoutDir, "/") + ".spdx.json"
}

// The SPDX 2.3 JSON document, only the fields this SBOM fills. Field order is the struct order and every
// list is sorted, so that the bytes depend only on the build's inputs.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	PackageFileName  string            `json:"packageFileName,omitempty"`
	Supplier         string            `json:"supplier,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
	LicenseConcluded string            `json:"licenseConcluded"`
	LicenseDeclared  string            `json:"licenseDeclared"`
	CopyrightText    string            `json:"copyrightText"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// SBOM returns the SPDX 2.3 JSON document of the index built from binaries (keyed by
// v1.Platform.String(), as Index takes them): the image, one package per platform's binary with its
// SHA-256, the Go standard library, and every module the binaries link, at the versions their build
// information records (what the linker used, so what go.sum pinned). Licenses are NOASSERTION: the build
// information does not carry them, and a guess would be worse than none. The creation time is the
// commit's, and every list is sorted, so two builds of one commit give one SBOM. repository is where the
// image is published (the package URL's repository_url); empty means DefaultName.
func SBOM(idx v1.ImageIndex, binaries map[string][]byte, m Metadata, repository string) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	digest, err := idx.Digest()
	if err != nil {
		return nil, fmt.Errorf("SBOM: digest of the index: %w", err)
	}
	const imageID = "SPDXRef-Image"
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        Title + "@" + digest.String(),
		// Unique per image and the same for every build of it, as SPDX asks of the namespace.
		DocumentNamespace: strings.TrimRight(m.Source, "/") + "/spdx/" + Title + "/" + digest.Algorithm + "-" + digest.Hex,
		CreationInfo: spdxCreationInfo{
			Created:  m.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: litemaas-gitops-hack-image"},
		},
		DocumentDescribes: []string{imageID},
	}
	imageRepo := repository
	if imageRepo == "" {
		imageRepo = DefaultName
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		Name:             Title,
		SPDXID:           imageID,
		VersionInfo:      m.Version,
		DownloadLocation: "NOASSERTION",
		Checksums:        []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: digest.Hex}},
		PrimaryPurpose:   "CONTAINER",
		ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
			Locator: "pkg:oci/" + Title + "@" + url.PathEscape(digest.String()) + "?repository_url=" + url.QueryEscape(imageRepo)}},
	})

	mainID := "SPDXRef-Source"
	var goVersion, mainPath string
	modules := map[string]string{} // path -> version
	for _, p := range Platforms {
		bin, ok := binaries[p.String()]
		if !ok {
			return nil, fmt.Errorf("SBOM: no binary for %s", p)
		}
		bi, err := buildinfo.Read(bytes.NewReader(bin))
		if err != nil {
			return nil, fmt.Errorf("SBOM: reading the build information of the %s binary: %w", p, err)
		}
		if goVersion != "" && (bi.GoVersion != goVersion || bi.Main.Path != mainPath) {
			return nil, fmt.Errorf("SBOM: the binaries were built differently (%s %s, %s %s)", bi.Main.Path, bi.GoVersion, mainPath, goVersion)
		}
		goVersion, mainPath = bi.GoVersion, bi.Main.Path
		for _, d := range bi.Deps {
			if d.Replace != nil {
				// The replacement is what was compiled in; go.sum pins it under its own path.
				d = d.Replace
			}
			if v, seen := modules[d.Path]; seen && v != d.Version {
				return nil, fmt.Errorf("SBOM: module %s at %s in one binary and %s in another", d.Path, v, d.Version)
			}
			modules[d.Path] = d.Version
		}
		id := "SPDXRef-Binary-" + p.OS + "-" + p.Architecture
		sum := sha256.Sum256(bin)
		doc.Packages = append(doc.Packages, spdxPackage{
			Name:             Title + " (" + p.String() + ")",
			SPDXID:           id,
			VersionInfo:      m.Version,
			PackageFileName:  BinaryPath,
			DownloadLocation: "NOASSERTION",
			Checksums:        []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: hex.EncodeToString(sum[:])}},
			PrimaryPurpose:   "APPLICATION",
		})
		doc.Relationships = append(doc.Relationships,
			spdxRelationship{imageID, "CONTAINS", id},
			spdxRelationship{id, "GENERATED_FROM", mainID},
			spdxRelationship{id, "DEPENDS_ON", "SPDXRef-Go-stdlib"})
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		Name:             mainPath,
		SPDXID:           mainID,
		VersionInfo:      m.Revision,
		DownloadLocation: "git+" + strings.TrimRight(m.Source, "/") + "@" + m.Revision,
		PrimaryPurpose:   "SOURCE",
		ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
			Locator: "pkg:golang/" + mainPath + "@" + url.PathEscape(m.Revision)}},
	}, spdxPackage{
		Name:             "stdlib",
		SPDXID:           "SPDXRef-Go-stdlib",
		VersionInfo:      goVersion,
		Supplier:         "Organization: Go",
		DownloadLocation: "https://go.dev/dl/",
		PrimaryPurpose:   "LIBRARY",
		ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
			Locator: "pkg:golang/stdlib@" + url.PathEscape(goVersion)}},
	})
	paths := make([]string, 0, len(modules))
	for p := range modules {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		v := modules[p]
		id := moduleID(p, v)
		doc.Packages = append(doc.Packages, spdxPackage{
			Name:             p,
			SPDXID:           id,
			VersionInfo:      v,
			DownloadLocation: "https://proxy.golang.org/" + escapeModulePath(p) + "/@v/" + v + ".zip",
			PrimaryPurpose:   "LIBRARY",
			ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
				Locator: "pkg:golang/" + p + "@" + url.PathEscape(v)}},
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{mainID, "DEPENDS_ON", id})
	}
	doc.Relationships = append([]spdxRelationship{{"SPDXRef-DOCUMENT", "DESCRIBES", imageID}}, doc.Relationships...)
	for i := range doc.Packages {
		doc.Packages[i].LicenseConcluded, doc.Packages[i].LicenseDeclared, doc.Packages[i].CopyrightText = "NOASSERTION", "NOASSERTION", "NOASSERTION"
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteSBOM writes the SBOM to SBOMPath(layoutDir).
func WriteSBOM(layoutDir string, sbom []byte) (string, error) {
	p := SBOMPath(layoutDir)
	if err := os.WriteFile(p, sbom, 0o644); err != nil {
		return "", fmt.Errorf("writing the SBOM: %w", err)
	}
	return p, nil
}

var notIDChar = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// moduleID is an SPDX identifier ([A-Za-z0-9.-]) for a module: readable, and unique thanks to the hash
// of path and version (two paths may sanitize to one string).
func moduleID(path, version string) string {
	sum := sha256.Sum256([]byte(path + "@" + version))
	return "SPDXRef-Go-" + notIDChar.ReplaceAllString(path, "-") + "-" + hex.EncodeToString(sum[:4])
}

// escapeModulePath is the module proxy's case encoding: an upper-case letter becomes '!' and its lower case.
func escapeModulePath(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			b.WriteRune(r + ('a' - 'A'))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
