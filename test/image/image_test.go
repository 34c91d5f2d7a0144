// Package image checks what can be checked of the container image without a container engine: the
// Containerfile's final stage holds only the binary and CA certificates, the binary is static, and it
// runs as an arbitrary UID in group 0 with a read-only root filesystem and no HOME, as OpenShift's
// restricted-v2 runs it.
package image

import (
	"bufio"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/litellm/litellmtest"
	"github.com/litemaas-gitops/litemaas-gitops/internal/pgtest"
)

// An arbitrary UID from an OpenShift namespace range, in group 0.
const uid = "1000680000"

var pg *pgtest.Server

func TestMain(m *testing.M) {
	pg = pgtest.MustStart(m)
	code := m.Run()
	_ = pg.Stop()
	os.Exit(code)
}

// buildAsContainerfile builds the binary with the Containerfile's own build command.
func buildAsContainerfile(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	// Readable by the arbitrary UID: the test's temporary folders are private by default.
	require.NoError(t, os.Chmod(dir, 0o755))
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	bin := filepath.Join(dir, "litemaas-sync")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "../../cmd/litemaas-sync")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

func finalStage(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../../Containerfile")
	require.NoError(t, err)
	defer f.Close()
	var stage []string
	var cont string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		if strings.HasPrefix(strings.ToUpper(line), "FROM ") {
			stage = nil
		}
		stage = append(stage, line)
	}
	require.NoError(t, sc.Err())
	return stage
}

func TestContainerfileFinalStageHoldsOnlyBinaryAndCACertificates(t *testing.T) {
	stage := finalStage(t)
	require.NotEmpty(t, stage)
	assert.Equal(t, "FROM scratch", stage[0])
	var copies []string
	var user string
	for _, ins := range stage[1:] {
		word := strings.ToUpper(strings.Fields(ins)[0])
		switch word {
		case "COPY":
			fields := strings.Fields(ins)
			copies = append(copies, fields[len(fields)-1])
		case "USER":
			user = strings.Fields(ins)[1]
		case "LABEL", "ENTRYPOINT", "CMD":
		default:
			t.Errorf("final stage instruction %q adds more than the binary and CA certificates", ins)
		}
	}
	assert.ElementsMatch(t, []string{"/etc/ssl/certs/ca-certificates.crt", "/litemaas-sync"}, copies)
	u, g, ok := strings.Cut(user, ":")
	require.True(t, ok, "USER %q must name group 0", user)
	assert.Equal(t, "0", g, "group 0, so that files group-owned by root stay readable under any UID")
	assert.NotEqual(t, "0", u, "never root")
}

func TestBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(buildAsContainerfile(t))
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a dynamic loader is required: the scratch image has none")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs)
}

// The job's real work (wait, migrate, LiteLLM, database) as UID 1000680000:0 in a mount namespace
// whose root is read-only, with an empty environment besides its configuration.
func TestRunsAsArbitraryUIDOnReadOnlyRootWithoutHome(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a read-only mount namespace and switch to an arbitrary UID (CI runs as root)")
	}
	for _, tool := range []string{"unshare", "setpriv"} {
		_, err := exec.LookPath(tool)
		require.NoError(t, err, "%s (Debian package util-linux) is needed", tool)
	}
	bin := buildAsContainerfile(t)
	const key = "sk-image-test"
	_, srv := litellmtest.NewTestServer(t, litellmtest.Options{MasterKey: key})
	catalog := filepath.Join(filepath.Dir(bin), "models.yaml")
	data, err := os.ReadFile("../../gitops/base/models.yaml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(catalog, data, 0o644))

	env := []string{"MODELS_FILE=" + catalog, "DATABASE_URL=" + pg.NewDatabase(t, true), "LITELLM_URL=" + srv.URL,
		"LITELLM_MASTER_KEY=" + key, "LOG_FORMAT=json", "WAIT_TIMEOUT=30s"}
	script := `mount -o remount,bind,ro / && touch /probe-rw 2>/dev/null && { echo "root is writable"; exit 99; }
exec setpriv --reuid=` + uid + ` --regid=0 --clear-groups env -i "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "sh", "-c", script, "sh"}, append(env, bin, "reconcile")...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "done: litellm created=5")
	assert.NotContains(t, string(out), key)
}
