package initoverlay

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/litemaas-gitops/litemaas-gitops/internal/jobimage"
)

// AskJobImage asks --init-overlay's question: which job image the new overlay runs. An empty answer (or
// no input) keeps the template's.
func AskJobImage(in io.Reader, out io.Writer, current string) string {
	fmt.Fprintf(out, "Job image for the hook Jobs litemaas-secrets and litemaas-sync, as published by `make image-push` or the image workflow\n(e.g. ghcr.io/<you>/litemaas-sync@sha256:...; empty keeps %s): ", current)
	if in == nil {
		fmt.Fprintln(out)
		return ""
	}
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.TrimSpace(line)
}

// SetJobImage points the overlay's images: entry for the job image at ref (a tag or a digest),
// and lists ref in images/images.yaml, whose inventory test would otherwise fail. Both files are edited
// as text, so that their comments and layout stay as the user wrote them.
func SetJobImage(root, overlayRel, ref string) error {
	r, err := jobimage.ParseReference(ref)
	if err != nil {
		return err
	}
	file := filepath.Join(root, filepath.FromSlash(overlayRel), "kustomization.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(data), "\n")
	at, indent := listEntry(lines, is("- name: "+jobimage.DefaultName))
	if at < 0 {
		return fmt.Errorf("%s/kustomization.yaml has no images: entry for %s: add one (see images/README.md)", overlayRel, jobimage.DefaultName)
	}
	end := at + 1
	for end < len(lines) && strings.TrimSpace(lines[end]) != "" && leading(lines[end]) > indent && !strings.HasPrefix(strings.TrimSpace(lines[end]), "#") {
		end++
	}
	field := strings.Repeat(" ", indent+2)
	var entry []string
	entry = append(entry, lines[at])
	if repo := r.Context().Name(); repo != jobimage.DefaultName {
		entry = append(entry, field+"newName: "+repo+"\n")
	}
	switch r := r.(type) {
	case name.Digest:
		entry = append(entry, field+"digest: "+r.DigestStr()+"\n")
	case name.Tag:
		entry = append(entry, field+"newTag: "+r.TagStr()+"\n")
	}
	lines = append(lines[:at], append(entry, lines[end:]...)...)
	if err := os.WriteFile(file, []byte(strings.Join(lines, "")), 0o644); err != nil {
		return err
	}
	return listImage(root, r.Name(), "hook Jobs litemaas-secrets and litemaas-sync of "+overlayRel)
}

// listImage adds ref to images/images.yaml, after the tree's job image, unless it is listed already.
func listImage(root, ref, usedBy string) error {
	file := filepath.Join(root, "images", "images.yaml")
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	lines := strings.SplitAfter(string(data), "\n")
	if at, _ := listEntry(lines, is("- name: "+ref)); at >= 0 {
		return nil
	}
	at, indent := listEntry(lines, func(t string) bool { return strings.HasPrefix(t, "- name: "+jobimage.DefaultName+":") })
	if at < 0 {
		return fmt.Errorf("images/images.yaml does not list %s: add %s under mirror.additionalImages", jobimage.DefaultName, ref)
	}
	pad := strings.Repeat(" ", indent)
	add := []string{pad + "# " + usedBy + "\n", pad + "- name: " + ref + "\n"}
	lines = append(lines[:at+1], append(add, lines[at+1:]...)...)
	return os.WriteFile(file, []byte(strings.Join(lines, "")), 0o644)
}

// listEntry finds the first line that, without its indentation, match accepts, and returns its index
// and indentation (-1 when there is none).
func listEntry(lines []string, match func(string) bool) (int, int) {
	for i, l := range lines {
		if match(strings.TrimSpace(l)) {
			return i, leading(l)
		}
	}
	return -1, 0
}

func is(s string) func(string) bool { return func(t string) bool { return t == s } }

func leading(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
