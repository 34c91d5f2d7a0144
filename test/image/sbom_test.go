package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
)

// sbomDoc is what the tests read of the SPDX document.
type sbomDoc struct {
	SPDXVersion       string `json:"spdxVersion"`
	DocumentNamespace string `json:"documentNamespace"`
	CreationInfo      struct {
		Created string `json:"created"`
	} `json:"creationInfo"`
	DocumentDescribes []string `json:"documentDescribes"`
	Packages          []struct {
		Name         string `json:"name"`
		SPDXID       string `json:"SPDXID"`
		VersionInfo  string `json:"versionInfo"`
		Checksums    []struct{ Algorithm, ChecksumValue string }
		ExternalRefs []struct {
			Type    string `json:"referenceType"`
			Locator string `json:"referenceLocator"`
		} `json:"externalRefs"`
	} `json:"packages"`
	Relationships []struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	} `json:"relationships"`
}

// linkedModules is what the Go toolchain says the job's binary links for platform p, as path@version,
// without the main module: `go list -deps` over the package, with go.mod and go.sum as they are.
func linkedModules(t *testing.T, goos, goarch string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if not .Main}}{{with .Replace}}{{.Path}}@{{.Version}}{{else}}{{$.Module.Path}}@{{$.Module.Version}}{{end}}{{end}}{{end}}", jobimage.Package)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-mod=readonly")
	out, err := cmd.Output()
	require.NoError(t, err, "go list -deps")
	set := map[string]bool{}
	for _, l := range strings.Fields(string(out)) {
		set[l] = true
	}
	var mods []string
	for m := range set {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	return mods
}

// goSum is go.sum's module content hashes: "path version" lines without /go.mod.
func goSum(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open("../../go.sum")
	require.NoError(t, err)
	defer f.Close()
	sums := map[string]bool{}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) == 3 && !strings.HasSuffix(fields[1], "/go.mod") {
			sums[fields[0]+"@"+fields[1]] = true
		}
	}
	require.NoError(t, s.Err())
	return sums
}

func TestSBOMListsTheBinarysModulesAtTheGoSumVersions(t *testing.T) {
	_, idx := sharedLayout(t)
	bins, _ := compiled(t)
	raw, err := jobimage.SBOM(idx, bins, meta, "ghcr.io/acme/litemaas-sync")
	require.NoError(t, err)
	var doc sbomDoc
	require.NoError(t, json.Unmarshal(raw, &doc))
	assert.Equal(t, "SPDX-2.3", doc.SPDXVersion)
	assert.Equal(t, "2026-11-30T12:00:00Z", doc.CreationInfo.Created, "the commit's time, not the build's")

	var modules []string
	ids := map[string]bool{}
	binarySums := map[string]string{}
	var stdlib string
	for _, p := range doc.Packages {
		assert.False(t, ids[p.SPDXID], "SPDXID %s twice", p.SPDXID)
		ids[p.SPDXID] = true
		assert.Regexp(t, `^SPDXRef-[A-Za-z0-9.-]+$`, p.SPDXID)
		if strings.HasPrefix(p.SPDXID, "SPDXRef-Binary-") {
			require.Len(t, p.Checksums, 1)
			binarySums[p.Name] = p.Checksums[0].ChecksumValue
		}
		for _, r := range p.ExternalRefs {
			if r.Type != "purl" || !strings.HasPrefix(r.Locator, "pkg:golang/") {
				continue
			}
			switch {
			case p.SPDXID == "SPDXRef-Go-stdlib":
				stdlib = p.VersionInfo
			case p.SPDXID == "SPDXRef-Source":
				assert.Equal(t, meta.Revision, p.VersionInfo)
			default:
				modules = append(modules, p.Name+"@"+p.VersionInfo)
			}
		}
	}
	sort.Strings(modules)

	// Exactly what the toolchain links for either platform, no more, no less.
	want := map[string]bool{}
	for _, p := range jobimage.Platforms {
		for _, m := range linkedModules(t, p.OS, p.Architecture) {
			want[m] = true
		}
	}
	var wantList []string
	for m := range want {
		wantList = append(wantList, m)
	}
	sort.Strings(wantList)
	require.NotEmpty(t, wantList)
	assert.Equal(t, wantList, modules)

	// Every one at a version go.sum pins.
	sums := goSum(t)
	for _, m := range modules {
		assert.True(t, sums[m], "%s is in the SBOM but go.sum has no hash for it", m)
	}
	assert.Equal(t, runtime.Version(), stdlib, "the toolchain that built the binaries")

	// The binaries' checksums are those of the files in the image.
	for _, p := range jobimage.Platforms {
		sum := sha256.Sum256(bins[p.String()])
		assert.Equal(t, hex.EncodeToString(sum[:]), binarySums["litemaas-sync ("+p.String()+")"], p.String())
	}
	d, err := idx.Digest()
	require.NoError(t, err)
	assert.Contains(t, doc.DocumentNamespace, d.Hex, "the namespace names the image")
	purl := "pkg:oci/litemaas-sync@sha256:" + d.Hex + "?repository_url=ghcr.io%2Facme%2Flitemaas-sync"
	assert.True(t, strings.Contains(string(raw), purl), "the image's package URL names where it is published: %s", purl)
	t.Logf("SBOM: %d Go modules, stdlib %s, %d bytes", len(modules), stdlib, len(raw))
}

func TestTwoBuildsGiveOneSBOM(t *testing.T) {
	bins, _ := compiled(t)
	var digests []string
	for range 2 {
		dir, idx := buildLayout(t, meta)
		raw, err := jobimage.SBOM(idx, bins, meta, "ghcr.io/acme/litemaas-sync")
		require.NoError(t, err)
		p, err := jobimage.WriteSBOM(dir, raw)
		require.NoError(t, err)
		assert.Equal(t, filepath.Dir(dir), filepath.Dir(p), "next to the layout")
		onDisk, err := os.ReadFile(p)
		require.NoError(t, err)
		sum := sha256.Sum256(onDisk)
		digests = append(digests, "sha256:"+hex.EncodeToString(sum[:]))
	}
	t.Logf("SBOM digest of two builds: %s, %s", digests[0], digests[1])
	assert.Equal(t, digests[0], digests[1])

	// The time in it is the commit's: another commit time, another SBOM.
	later := meta
	later.Created = meta.Created.Add(time.Second)
	_, idx := buildLayout(t, later)
	raw, err := jobimage.SBOM(idx, bins, later, "ghcr.io/acme/litemaas-sync")
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	assert.NotEqual(t, digests[0], "sha256:"+hex.EncodeToString(sum[:]))
}
