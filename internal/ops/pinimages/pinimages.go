// Package pinimages is `litemaas-ops pin-images`: it resolves every image tag of images/images.yaml and
// of the overlays' images: entries to its digest and writes the digests, keeping comments and layout.
package pinimages

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/litemaas-gitops/litemaas-gitops/internal/cli"
	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests"
	"github.com/litemaas-gitops/litemaas-gitops/internal/ops/tree"
)

// NewCommand is `litemaas-ops pin-images`.
func NewCommand() *cli.Command {
	return &cli.Command{
		Name: "pin-images", Args: "",
		Summary: "resolve every image tag of images/images.yaml and the overlays' images: entries to its digest, and write it",
		Help: "Each tag is looked up anonymously, then with the credentials of podman's or docker's auth file\n" +
			"(as image-push reads them). Overlay entries get a digest: next to their newTag; images/images.yaml\n" +
			"lists <repository>:<tag>@<digest>. Comments and layout stay. A tag that does not resolve is named\n" +
			"with its file and line, and nothing is written. Running it again changes nothing unless a tag moved.",
		New: func(fs *flag.FlagSet) cli.Runner { return &Command{} },
	}
}

// Command is `litemaas-ops pin-images`: the tree is the checkout holding the working directory.
type Command struct{}

// Run pins the tree's image tags to their digests.
func (c *Command) Run(ctx context.Context, out io.Writer) error {
	root, err := tree.WorkRoot()
	if err != nil {
		return err
	}
	return PinImages(ctx, Options{Root: root, Out: out})
}

// Options configures PinImages.
type Options struct {
	// Root is the repository root.
	Root string
	// Registry reaches the registries; its Keychain is asked only when a registry refuses anonymous access
	// (nil: the auth files image-push reads, jobimage.AuthFiles).
	Registry jobimage.RegistryOptions
	Out      io.Writer
}

// imageUse is one tag written in a file: an images/images.yaml entry or an overlay's images: entry.
type imageUse struct {
	file string // relative to the root
	line int    // 1-based, the line holding the tag
	repo string // the repository the tag is resolved in (newName when set)
	tag  string
	// For images.yaml: the whole reference as written; for an overlay entry: the digest line, if any
	// (0 when none).
	written    string
	digestLine int
}

func (u imageUse) ref() string { return u.repo + ":" + u.tag }
func (u imageUse) at() string  { return fmt.Sprintf("%s:%d", u.file, u.line) }

const imagesFile = "images/images.yaml"

var (
	inventoryLine = regexp.MustCompile(`^(\s*-\s*name:\s*)(\S+)(\s*)$`)
	entryName     = regexp.MustCompile(`^(\s*)-\s*name:\s*(\S+)\s*$`)
	entryField    = regexp.MustCompile(`^(\s*)(newName|newTag|digest):\s*(\S+)\s*$`)
)

// inventoryUses reads the tags of images/images.yaml.
func inventoryUses(root string) ([]imageUse, []string, error) {
	data, err := os.ReadFile(filepath.Join(root, imagesFile))
	if err != nil {
		return nil, nil, err
	}
	lines := strings.SplitAfter(string(data), "\n")
	var uses []imageUse
	for i, l := range lines {
		m := inventoryLine.FindStringSubmatch(strings.TrimRight(l, "\n"))
		if m == nil {
			continue
		}
		ref := m[2]
		base, _, _ := strings.Cut(ref, "@")
		r, err := name.NewTag(base, name.StrictValidation)
		if err != nil || !strings.Contains(base[strings.LastIndex(base, "/")+1:], ":") {
			return nil, nil, fmt.Errorf("%s:%d: %q is no <repository>:<tag>[@sha256:<digest>] reference", imagesFile, i+1, ref)
		}
		uses = append(uses, imageUse{file: imagesFile, line: i + 1, repo: strings.TrimSuffix(base, ":"+r.TagStr()), tag: r.TagStr(), written: ref})
	}
	return uses, lines, nil
}

// overlayUses reads the tags of the images: entries of every kustomization under gitops/overlays and
// gitops/clusters.
func overlayUses(root string) (map[string][]string, []imageUse, error) {
	files := map[string][]string{}
	var uses []imageUse
	for _, dir := range []string{"gitops/overlays", "gitops/clusters"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
				return err
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			lines := strings.SplitAfter(string(data), "\n")
			found := entriesIn(rel, lines)
			if len(found) > 0 {
				files[rel] = lines
				uses = append(uses, found...)
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
	}
	return files, uses, nil
}

// entriesIn finds the entries of the top-level images: list that set a newTag.
func entriesIn(file string, lines []string) []imageUse {
	var uses []imageUse
	in := false
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], "\n")
		if strings.HasPrefix(l, "images:") {
			in = true
			continue
		}
		if in && l != "" && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "-") && !strings.HasPrefix(l, "#") {
			in = false
		}
		if !in {
			continue
		}
		m := entryName.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		u := imageUse{file: file, repo: m[2]}
		indent := len(m[1])
		for j := i + 1; j < len(lines); j++ {
			f := entryField.FindStringSubmatch(strings.TrimRight(lines[j], "\n"))
			if f == nil || len(f[1]) <= indent {
				break
			}
			switch f[2] {
			case "newName":
				u.repo = f[3]
			case "newTag":
				u.tag, u.line = strings.Trim(f[3], `"'`), j+1
			case "digest":
				u.digestLine = j + 1
			}
		}
		if u.tag != "" {
			uses = append(uses, u)
		}
	}
	return uses
}

// PinImages resolves every tag of images/images.yaml and of the overlays' images: entries to its
// digest, writes the digests (overlay entries get a digest: next to their newTag; images.yaml lists
// <repository>:<tag>@<digest> for what the overlays pin), and prints what changed. A tag that does not
// resolve is reported with its file and line, and nothing is written; so is a result that would fail the
// image inventory check.
func PinImages(ctx context.Context, o Options) error {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	inv, invLines, err := inventoryUses(o.Root)
	if err != nil {
		return err
	}
	files, ovl, err := overlayUses(o.Root)
	if err != nil {
		return err
	}
	digests, err := resolveAll(ctx, append(append([]imageUse{}, inv...), ovl...), o.Registry)
	if err != nil {
		return err
	}
	newFiles, changes := pinOverlays(files, ovl, digests)
	pinnedByOverlay := map[string]bool{}
	for _, u := range ovl {
		pinnedByOverlay[u.ref()] = true
	}
	invOut, invChanges, notPinned := pinInventory(inv, invLines, pinnedByOverlay, digests)
	newFiles[imagesFile] = invOut
	changes = append(changes, invChanges...)
	if len(changes) > 0 {
		if err := writeChecked(o.Root, newFiles); err != nil {
			return err
		}
	}
	printPinned(out, changes, notPinned, len(digests))
	return nil
}

// resolveAll resolves each repository:tag of uses once, anonymously first, then with the user's
// credentials; it returns the digests by repository:tag, or an error naming every tag that did not
// resolve with its file and line.
func resolveAll(ctx context.Context, uses []imageUse, reg jobimage.RegistryOptions) (map[string]string, error) {
	digests := map[string]string{}
	var failed []string
	for _, u := range uses {
		if _, ok := digests[u.ref()]; ok {
			continue
		}
		d, err := resolve(ctx, u.ref(), reg)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %s: %s", u.at(), u.ref(), whyUnresolved(err)))
			digests[u.ref()] = ""
			continue
		}
		digests[u.ref()] = d
	}
	for _, u := range uses {
		if digests[u.ref()] == "" && !containsPrefix(failed, u.at()+":") {
			failed = append(failed, fmt.Sprintf("%s: %s: see above", u.at(), u.ref()))
		}
	}
	if len(failed) > 0 {
		return nil, fmt.Errorf("cannot resolve %d image tag(s); nothing written:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return digests, nil
}

// whyUnresolved says what to do about a tag the registry did not resolve.
func whyUnresolved(err error) string {
	var ce *jobimage.CheckError
	why := err.Error()
	if errors.As(err, &ce) {
		switch ce.Kind {
		case jobimage.NotFound:
			why = "the registry has no such tag (" + err.Error() + ")"
		case jobimage.NeedsCredentials:
			why = "the registry wants credentials: log in with podman login or docker login (" + err.Error() + ")"
		}
	}
	return why
}

// pinOverlays returns the overlays' kustomization files (by path relative to the root) with a digest:
// after each newTag (replaced when there is one), and the changes made.
func pinOverlays(files map[string][]string, ovl []imageUse, digests map[string]string) (map[string]string, []string) {
	var changes []string
	byFile := map[string][]imageUse{}
	for _, u := range ovl {
		byFile[u.file] = append(byFile[u.file], u)
	}
	newFiles := map[string]string{}
	for file, uses := range byFile {
		lines := append([]string{}, files[file]...)
		// From the bottom, so that inserted lines do not move the ones still to edit.
		sort.Slice(uses, func(i, j int) bool { return uses[i].line > uses[j].line })
		for _, u := range uses {
			d := digests[u.ref()]
			tagLine := strings.TrimRight(lines[u.line-1], "\n")
			indent := tagLine[:len(tagLine)-len(strings.TrimLeft(tagLine, " "))]
			want := indent + "digest: " + d + "\n"
			switch {
			case u.digestLine > 0 && lines[u.digestLine-1] == want:
				continue
			case u.digestLine > 0:
				lines[u.digestLine-1] = want
			default:
				lines = append(lines[:u.line], append([]string{want}, lines[u.line:]...)...)
			}
			changes = append(changes, fmt.Sprintf("%s: %s -> %s", u.at(), u.ref(), d))
		}
		newFiles[file] = strings.Join(lines, "")
	}
	return newFiles, changes
}

// pinInventory returns images/images.yaml with <repository>:<tag>@<digest> for what the overlays pin
// (the rest stays as written), the changes made, and the tags left unpinned with why.
func pinInventory(inv []imageUse, invLines []string, pinnedByOverlay map[string]bool, digests map[string]string) (string, []string, []string) {
	var changes, notPinned []string
	invOut := append([]string{}, invLines...)
	for _, u := range inv {
		if !pinnedByOverlay[u.ref()] {
			notPinned = append(notPinned, fmt.Sprintf("%s (%s): no overlay's images: entry sets it, so the manifests keep its tag; resolved to %s", u.ref(), u.at(), digests[u.ref()]))
			continue
		}
		ref := u.ref() + "@" + digests[u.ref()]
		if ref == u.written {
			continue
		}
		m := inventoryLine.FindStringSubmatch(strings.TrimRight(invOut[u.line-1], "\n"))
		invOut[u.line-1] = m[1] + ref + m[3] + "\n"
		changes = append(changes, fmt.Sprintf("%s: %s -> %s", u.at(), u.written, ref))
	}
	return strings.Join(invOut, ""), changes, notPinned
}

// printPinned prints what changed (sorted), what stays unpinned, and the summary line.
func printPinned(out io.Writer, changes, notPinned []string, resolved int) {
	sort.Strings(changes)
	for _, c := range changes {
		fmt.Fprintln(out, c)
	}
	for _, n := range notPinned {
		fmt.Fprintln(out, "not pinned:", n)
	}
	if len(changes) == 0 {
		fmt.Fprintf(out, "every image is pinned at its tag's current digest (%d tags resolved)\n", resolved)
	} else {
		fmt.Fprintf(out, "%d change(s) written (%d tags resolved); commit them with the overlays they pin\n", len(changes), resolved)
	}
}

func containsPrefix(l []string, prefix string) bool {
	for _, s := range l {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// resolve returns the digest a tag points at: anonymously, then with the keychain when the registry
// refuses anonymous access.
func resolve(ctx context.Context, ref string, o jobimage.RegistryOptions) (string, error) {
	anon := o
	anon.Keychain = nil
	h, err := jobimage.Lookup(ctx, ref, anon)
	var ce *jobimage.CheckError
	if err != nil && errors.As(err, &ce) && ce.Kind == jobimage.NeedsCredentials {
		withCreds := o
		if withCreds.Keychain == nil {
			withCreds.Keychain = jobimage.AuthFiles()
		}
		h, err = jobimage.Lookup(ctx, ref, withCreds)
	}
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// writeChecked writes files (relative to root), then runs the image inventory check of the tree; when
// it fails, the files are restored and the check's findings returned.
func writeChecked(root string, files map[string]string) error {
	old := map[string][]byte{}
	for rel := range files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		old[rel] = b
	}
	restore := func() {
		for rel, b := range old {
			_ = os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), b, 0o644)
		}
	}
	for rel, s := range files {
		if err := os.WriteFile(filepath.Join(root, filepath.FromSlash(rel)), []byte(s), 0o644); err != nil {
			restore()
			return err
		}
	}
	c := manifests.NewChecker(root)
	ts, err := manifests.Targets(root)
	if err != nil {
		restore()
		return err
	}
	var problems []string
	for _, f := range c.CheckTree(ts) {
		if f.Rule == "image inventory" {
			problems = append(problems, f.String())
		}
	}
	if len(problems) > 0 {
		// Name the kustomizations that render an image unpinned: each needs an images: entry.
		for _, t := range ts {
			if t.Kind != manifests.AppTarget && t.Kind != manifests.HATarget {
				continue
			}
			for _, f := range c.CheckTarget(t, ts) {
				if f.Rule == "images pinned" {
					problems = append(problems, f.String())
				}
			}
		}
		used := map[string][]string{}
		for _, t := range ts {
			objs, err := c.Render(t.Dir)
			if err != nil {
				continue
			}
			for _, o := range objs {
				for _, img := range containerImages(o.Object) {
					if !strings.Contains(img, "@") {
						used[img] = append(used[img], t.Dir)
					}
				}
			}
		}
		for img, dirs := range used {
			problems = append(problems, fmt.Sprintf("%s renders %s without a digest: give it an images: entry for %s", strings.Join(slices.Compact(dirs), ", "), img, img[:strings.LastIndex(img, ":")]))
		}
		sort.Strings(problems)
	}
	if len(problems) > 0 {
		restore()
		return fmt.Errorf("pinning would leave images/images.yaml unequal to the images the overlays render (an overlay without an images: entry for a pinned image?); nothing written:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// containerImages returns the images of the containers and init containers of a pod template anywhere in
// obj (Deployment, StatefulSet, Job, CronJob).
func containerImages(obj map[string]any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				if (k == "containers" || k == "initContainers") && c != nil {
					if l, ok := c.([]any); ok {
						for _, e := range l {
							if m, ok := e.(map[string]any); ok {
								if img, ok := m["image"].(string); ok {
									out = append(out, img)
								}
							}
						}
					}
					continue
				}
				walk(c)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(obj)
	return out
}
