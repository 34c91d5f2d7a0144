package image

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
)

// instruction is one Containerfile instruction, continuation lines joined.
type instruction struct {
	Cmd  string // upper case: FROM, COPY, ...
	Args string
}

// stages parses the Containerfile into its build stages.
func stages(t *testing.T) [][]instruction {
	t.Helper()
	f, err := os.Open("../../Containerfile")
	require.NoError(t, err)
	defer f.Close()
	var all [][]instruction
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
		cmd, args, _ := strings.Cut(line, " ")
		ins := instruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)}
		if ins.Cmd == "FROM" {
			all = append(all, nil)
		}
		if len(all) == 0 {
			// Global build arguments (the Go image) are all a Containerfile may say before FROM.
			require.Equal(t, "ARG", ins.Cmd, "instruction %q before the first FROM", line)
			continue
		}
		all[len(all)-1] = append(all[len(all)-1], ins)
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, all)
	return all
}

// words splits KEY=VALUE pairs and flags the way a Containerfile does: double quotes group, a backslash
// escapes the next character.
func words(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, started := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			started = true
		case c == '"':
			inQuote = !inQuote
			started = true
		case (c == ' ' || c == '\t') && !inQuote:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

var argRef = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// containerImage is what the Containerfile's final stage says of the image, with the build arguments
// that `make image` would pass.
type containerImage struct {
	Files      map[string]int64 // path -> mode
	Owners     map[string]string
	User       string
	Entrypoint []string
	Cmd        []string
	Labels     map[string]string
	Args       []string // ARG names of the final stage
}

func finalStage(t *testing.T, buildArgs map[string]string) containerImage {
	t.Helper()
	all := stages(t)
	stage := all[len(all)-1]
	require.Equal(t, "scratch", stage[0].Args, "the final stage starts from an empty root")
	ci := containerImage{Files: map[string]int64{}, Owners: map[string]string{}, Labels: map[string]string{}}
	args := map[string]string{}
	expand := func(s string) string {
		return argRef.ReplaceAllStringFunc(s, func(m string) string {
			sub := argRef.FindStringSubmatch(m)
			n := sub[1] + sub[2]
			v, ok := args[n]
			if !ok {
				t.Errorf("%s is not an ARG of the final stage", m)
			}
			return v
		})
	}
	for _, ins := range stage[1:] {
		switch ins.Cmd {
		case "ARG":
			n, def, _ := strings.Cut(ins.Args, "=")
			ci.Args = append(ci.Args, n)
			if v, ok := buildArgs[n]; ok {
				def = v
			}
			args[n] = def
		case "LABEL":
			for _, w := range words(ins.Args) {
				k, v, ok := strings.Cut(w, "=")
				require.True(t, ok, "LABEL %q: want KEY=VALUE", w)
				ci.Labels[k] = expand(v)
			}
		case "COPY":
			mode, owner := int64(0o644), "0:0" // a file copied from the build stage keeps Debian's 0644, root:root
			var paths []string
			for _, w := range words(ins.Args) {
				switch {
				case strings.HasPrefix(w, "--chmod="):
					m, err := strconv.ParseInt(strings.TrimPrefix(w, "--chmod="), 8, 64)
					require.NoError(t, err)
					mode = m
				case strings.HasPrefix(w, "--chown="):
					owner = strings.TrimPrefix(w, "--chown=")
				case strings.HasPrefix(w, "--from="):
				case strings.HasPrefix(w, "--"):
					t.Errorf("COPY flag %q is not understood by this test", w)
				default:
					paths = append(paths, w)
				}
			}
			require.Len(t, paths, 2, "COPY %s: one source, one destination", ins.Args)
			ci.Files[paths[1]] = mode
			ci.Owners[paths[1]] = owner
		case "USER":
			ci.User = ins.Args
		case "ENTRYPOINT":
			require.NoError(t, json.Unmarshal([]byte(ins.Args), &ci.Entrypoint), "ENTRYPOINT in exec form")
		case "CMD":
			require.NoError(t, json.Unmarshal([]byte(ins.Args), &ci.Cmd), "CMD in exec form")
		default:
			t.Errorf("final stage instruction %s %s adds more than the binary and CA certificates", ins.Cmd, ins.Args)
		}
	}
	return ci
}

// TestContainerfileAndGoBuildDescribeTheSameImage: podman build -f Containerfile and make image give
// the same files, modes, owner, user, entrypoint, default argument and labels.
func TestContainerfileAndGoBuildDescribeTheSameImage(t *testing.T) {
	ci := finalStage(t, map[string]string{"SOURCE": meta.Source, "REVISION": meta.Revision, "VERSION": meta.Version})
	assert.ElementsMatch(t, []string{"SOURCE", "REVISION", "VERSION"}, ci.Args)
	assert.Equal(t, map[string]int64{jobimage.CABundlePath: 0o644, jobimage.BinaryPath: 0o555}, ci.Files)
	for p, o := range ci.Owners {
		assert.Equal(t, "0:0", o, p)
	}
	assert.Equal(t, jobimage.User, ci.User)
	assert.Equal(t, jobimage.Entrypoint, ci.Entrypoint)
	assert.Equal(t, jobimage.Cmd, ci.Cmd)
	assert.Equal(t, jobimage.Labels(meta), ci.Labels)

	// The files as the Go build lays them out.
	_, idx := sharedLayout(t)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	img, err := idx.Image(im.Manifests[0].Digest)
	require.NoError(t, err)
	got := map[string]int64{}
	for n, f := range filesOf(t, img) {
		if f.Type != '0' { // regular files; the directories are implied by COPY
			continue
		}
		got["/"+n] = f.Mode
	}
	assert.Equal(t, ci.Files, got)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, ci.User, cf.Config.User)
	assert.Equal(t, ci.Entrypoint, cf.Config.Entrypoint)
	assert.Equal(t, ci.Cmd, cf.Config.Cmd)
	assert.Equal(t, ci.Labels, cf.Config.Labels)

	// User 1001 in group 0, never root.
	u, g, ok := strings.Cut(ci.User, ":")
	require.True(t, ok, "USER %q must name group 0", ci.User)
	assert.Equal(t, "0", g, "group 0, so that files group-owned by root stay readable under any UID")
	assert.NotEqual(t, "0", u, "never root")
}

// TestContainerfileCompilesLikeTheGoBuild: the build stage's go build has the flags of jobimage.Compile.
func TestContainerfileCompilesLikeTheGoBuild(t *testing.T) {
	all := stages(t)
	require.Len(t, all, 2, "a build stage and the final stage")
	var builds []string
	for _, ins := range all[0] {
		if ins.Cmd == "RUN" && strings.Contains(ins.Args, "go build") {
			builds = append(builds, ins.Args)
		}
	}
	require.Len(t, builds, 1)
	w := words(builds[0])
	want := append(append([]string{"CGO_ENABLED=0", "go", "build"}, jobimage.GoBuildFlags...), "-o", "/out"+jobimage.BinaryPath, jobimage.Package)
	assert.Equal(t, want, w, fmt.Sprintf("RUN %s", builds[0]))
}

func TestWords(t *testing.T) {
	for in, want := range map[string][]string{
		`a="b c" d=e`:            {"a=b c", "d=e"},
		`x="say \"hi\""`:         {`x=say "hi"`},
		`--chmod=0555 /a  /b`:    {"--chmod=0555", "/a", "/b"},
		`go build -ldflags "-s"`: {"go", "build", "-ldflags", "-s"},
	} {
		assert.Equal(t, want, words(in), in)
	}
}
