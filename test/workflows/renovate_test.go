package workflows

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// renovateValidator finds Renovate's own config validator: $RENOVATE_VALIDATOR, the copy .ci/run
// installs into the cache, or one on PATH.
func renovateValidator() string {
	if p := os.Getenv("RENOVATE_VALIDATOR"); p != "" {
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache")
		}
	}
	if p := filepath.Join(cache, "litemaas-gitops", "renovate", "node_modules", ".bin", "renovate-config-validator"); fileExists(p) {
		return p
	}
	p, _ := exec.LookPath("renovate-config-validator")
	return p
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// TestRenovateConfigValid runs Renovate's validator (npm package renovate) in strict mode on
// renovate.json: unknown options, a bad regex or a deprecated name fail.
func TestRenovateConfigValid(t *testing.T) {
	v := renovateValidator()
	if v == "" {
		msg := "renovate-config-validator not found: .ci/run installs it (npm install --prefix ~/.cache/litemaas-gitops/renovate renovate), or set RENOVATE_VALIDATOR"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(v, "--strict", "renovate.json")
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), "RENOVATE_CONFIG_FILE=renovate.json", "LOG_LEVEL=info")
	out, err := cmd.CombinedOutput()
	t.Logf("%s --strict renovate.json:\n%s", v, out)
	require.NoError(t, err, "Renovate rejects renovate.json")

	// The validator can fail: an unknown option is an error.
	bad := filepath.Join(t.TempDir(), "renovate.json")
	b, err := os.ReadFile("../../renovate.json")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(string(b), `"pinDigests": true`, `"pinDigests": true, "pinDigestz": true`, 1)), 0o644))
	out, err = exec.Command(v, "--strict", bad).CombinedOutput()
	require.Error(t, err, "the validator accepts an unknown option:\n%s", out)
	assert.Contains(t, string(out), "Invalid configuration option: pinDigestz")
}

// TestRenovateRegexManagerMatchesInventory: the regex manager for images/images.yaml sees every image
// the inventory lists, with its tag and (once pinned) digest, so that Renovate updates the inventory
// in the same pull request as the overlays.
func TestRenovateRegexManagerMatchesInventory(t *testing.T) {
	b, err := os.ReadFile("../../renovate.json")
	require.NoError(t, err)
	var cfg struct {
		CustomManagers []struct {
			FileMatch    []string `json:"fileMatch"`
			MatchStrings []string `json:"matchStrings"`
		} `json:"customManagers"`
	}
	require.NoError(t, json.Unmarshal(b, &cfg))
	require.Len(t, cfg.CustomManagers, 1)
	require.Len(t, cfg.CustomManagers[0].MatchStrings, 1)
	// Renovate's (?<name>...) groups are Go's too.
	re, err := regexp.Compile(cfg.CustomManagers[0].MatchStrings[0])
	require.NoError(t, err)

	inv, err := os.ReadFile("../../images/images.yaml")
	require.NoError(t, err)
	var listed []string
	for _, l := range strings.Split(string(inv), "\n") {
		if t := strings.TrimSpace(l); strings.HasPrefix(t, "- name: ") {
			listed = append(listed, strings.TrimPrefix(t, "- name: "))
		}
	}
	require.NotEmpty(t, listed)
	matches := re.FindAllStringSubmatch(string(inv), -1)
	require.Len(t, matches, len(listed), "every listed image is a dependency")
	for i, m := range matches {
		dep, val, dig := m[re.SubexpIndex("depName")], m[re.SubexpIndex("currentValue")], m[re.SubexpIndex("currentDigest")]
		want := dep + ":" + val
		if dig != "" {
			want += "@" + dig
		}
		assert.Equal(t, listed[i], want)
	}
	pinned := "    - name: docker.io/library/postgres:16.9-alpine@sha256:" + strings.Repeat("ab", 32)
	m := re.FindStringSubmatch(pinned)
	require.NotNil(t, m, "a pinned entry is matched")
	assert.Equal(t, "sha256:"+strings.Repeat("ab", 32), m[re.SubexpIndex("currentDigest")])
}
