// Package advisory reads the known advisories of the pinned images (images/advisories.yaml, embedded)
// and says which apply to an image reference.
package advisory

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/litemaas-gitops/litemaas-gitops/images"
)

// File is advisories.yaml.
type File struct {
	// Images are the image names whose advisories were reviewed: those of images.yaml.
	Images     []string   `yaml:"images"`
	Advisories []Advisory `yaml:"advisories"`
}

// Advisory is one known advisory of one image.
type Advisory struct {
	ID          string   `yaml:"id"`
	URL         string   `yaml:"url"`
	Aliases     []string `yaml:"aliases"`
	Image       string   `yaml:"image"`
	Affected    string   `yaml:"affected"`
	Fixed       string   `yaml:"fixed"`
	Severity    string   `yaml:"severity"`
	Summary     string   `yaml:"summary"`
	Exposure    string   `yaml:"exposure"`
	Mitigation  string   `yaml:"mitigation"`
	MitigatedBy string   `yaml:"mitigatedBy"`

	constraints []constraint
}

// Verdict says whether an advisory applies to a version.
type Verdict string

const (
	Affected    Verdict = "affected"
	NotAffected Verdict = "not affected"
	// Unknown: the tag carries no version (a digest, a commit build).
	Unknown Verdict = "cannot tell"
)

type constraint struct {
	op string
	v  []int
}

var (
	constraintRE = regexp.MustCompile(`^(<=|<|>=|>|=)\s*(\d+(?:\.\d+)*)$`)
	versionRE    = regexp.MustCompile(`\d+(?:\.\d+)+`)
)

// Load parses the embedded advisories.yaml.
func Load() (*File, error) { return Parse(images.Advisories) }

// Parse reads an advisories file and checks every entry: an id, an image of the reviewed list, a
// parseable affected range, a mitigation.
func Parse(data []byte) (*File, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("images/advisories.yaml: %w", err)
	}
	var errs []string
	seen := map[string]bool{}
	for i := range f.Advisories {
		a := &f.Advisories[i]
		where := fmt.Sprintf("advisory %d (%s)", i+1, a.ID)
		switch {
		case a.ID == "":
			errs = append(errs, where+": no id")
		case seen[a.ID]:
			errs = append(errs, where+": id listed twice")
		}
		seen[a.ID] = true
		if !contains(f.Images, a.Image) {
			errs = append(errs, fmt.Sprintf("%s: image %q is not in images:", where, a.Image))
		}
		if a.Mitigation == "" || a.Exposure == "" {
			errs = append(errs, where+": exposure and mitigation are required")
		}
		for _, part := range strings.Split(a.Affected, ",") {
			m := constraintRE.FindStringSubmatch(strings.TrimSpace(part))
			if m == nil {
				errs = append(errs, fmt.Sprintf("%s: affected %q: want constraints like \"< 1.84.0\" or \">= 16.0, < 16.14\"", where, a.Affected))
				break
			}
			a.constraints = append(a.constraints, constraint{op: m[1], v: parseVersion(m[2])})
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("images/advisories.yaml: %s", strings.Join(errs, "; "))
	}
	return &f, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func parseVersion(s string) []int {
	var out []int
	for _, p := range strings.Split(s, ".") {
		n, _ := strconv.Atoi(p)
		out = append(out, n)
	}
	return out
}

// VersionOf returns the first dotted version in an image tag or a version string ("main-v1.81.0-stable-custom"
// -> 1.81.0, "16.15-alpine" -> 16.15), or "" when there is none.
func VersionOf(tag string) string { return versionRE.FindString(tag) }

func compare(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// Applies says whether the advisory applies to a version (or a tag that contains one).
func (a Advisory) Applies(version string) Verdict {
	v := VersionOf(version)
	if v == "" {
		return Unknown
	}
	pv := parseVersion(v)
	for _, c := range a.constraints {
		r := compare(pv, c.v)
		ok := false
		switch c.op {
		case "<":
			ok = r < 0
		case "<=":
			ok = r <= 0
		case ">":
			ok = r > 0
		case ">=":
			ok = r >= 0
		case "=":
			ok = r == 0
		}
		if !ok {
			return NotAffected
		}
	}
	return Affected
}

// SplitImage returns an image reference's name and its tag (empty when pinned by digest only).
func SplitImage(ref string) (name, tag string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}

// Match is an advisory held against one image reference.
type Match struct {
	Advisory
	Ref     string
	Verdict Verdict
}

// For returns the advisories of the image named in ref that are affected or cannot be told, in file order.
func (f *File) For(ref string) []Match {
	name, tag := SplitImage(ref)
	var out []Match
	for _, a := range f.Advisories {
		if a.Image != name {
			continue
		}
		if v := a.Applies(tag); v != NotAffected {
			out = append(out, Match{Advisory: a, Ref: ref, Verdict: v})
		}
	}
	return out
}

// Find returns the advisory with this id.
func (f *File) Find(id string) (Advisory, bool) {
	for _, a := range f.Advisories {
		if a.ID == id {
			return a, true
		}
	}
	return Advisory{}, false
}

// Line is a one-line summary of a match for the tools' output.
func (m Match) Line() string {
	fixed := m.Fixed
	if fixed == "" {
		fixed = "no release yet"
	}
	return fmt.Sprintf("%s (%s) %s: %s [affected %s, fixed in %s]. Here: %s Mitigation: %s",
		m.ID, m.Severity, m.Ref, strings.TrimSuffix(m.Summary, "."), m.Affected, fixed, m.Exposure, m.Mitigation)
}

// Short is the match in one short line: id, severity, image reference, where it is fixed.
func (m Match) Short() string {
	fixed := m.Fixed
	if fixed == "" {
		fixed = "no release yet"
	}
	sev := ""
	if m.Severity != "" && m.Severity != "see advisory" {
		sev = " (" + m.Severity + ")"
	}
	return fmt.Sprintf("%s%s %s, fixed in %s", m.ID, sev, m.Ref, fixed)
}
