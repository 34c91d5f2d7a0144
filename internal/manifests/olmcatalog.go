package manifests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/litemaas-gitops/litemaas-gitops/internal/manifests/objects"
)

// OLMCatalogFile is the tree's record of the catalog the OLM Subscriptions resolve against: the
// package, its channels and their CSVs, as the certified-operators catalog of OpenShift serves them.
const OLMCatalogFile = "gitops/test/olm/certified-operators.yaml"

// OLMCatalog is the content of OLMCatalogFile.
type OLMCatalog struct {
	Source          string       `json:"source"`
	SourceNamespace string       `json:"sourceNamespace"`
	Packages        []OLMPackage `json:"packages"`
}

// OLMPackage is one package of the catalog.
type OLMPackage struct {
	Name           string       `json:"name"`
	DefaultChannel string       `json:"defaultChannel"`
	Channels       []OLMChannel `json:"channels"`
	Bundles        []OLMBundle  `json:"bundles"`
}

// OLMChannel lists a channel's CSVs in upgrade order (each replaces the previous; the last is the head).
type OLMChannel struct {
	Name    string   `json:"name"`
	Entries []string `json:"entries"`
}

// OLMBundle is a CSV whose CRDs a test installs: the kinds it owns and where their CRDs are read from
// (a Go module, as in upstream-crds.yaml).
type OLMBundle struct {
	Name    string         `json:"name"`
	Version string         `json:"version"`
	Owned   []string       `json:"owned"`
	CRDs    UpstreamSource `json:"crds"`
}

// LoadOLMCatalog reads OLMCatalogFile under root.
func LoadOLMCatalog(root string) (*OLMCatalog, error) {
	path := filepath.Join(root, filepath.FromSlash(OLMCatalogFile))
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("OLM catalog fixture: %w", err)
	}
	var c OLMCatalog
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", OLMCatalogFile, err)
	}
	if c.Source == "" || c.SourceNamespace == "" || len(c.Packages) == 0 {
		return nil, fmt.Errorf("%s: source, sourceNamespace and packages are required", OLMCatalogFile)
	}
	return &c, nil
}

// Package returns the named package, or nil.
func (c *OLMCatalog) Package(name string) *OLMPackage {
	for i := range c.Packages {
		if c.Packages[i].Name == name {
			return &c.Packages[i]
		}
	}
	return nil
}

// Channel returns the named channel, or nil.
func (p *OLMPackage) Channel(name string) *OLMChannel {
	for i := range p.Channels {
		if p.Channels[i].Name == name {
			return &p.Channels[i]
		}
	}
	return nil
}

// checkSubscriptions: every OLM Subscription names a package, channel and startingCSV the catalog
// serves, from that catalog; and, with manual approval, pins a startingCSV (without one, OLM installs
// whatever the channel's head is on the day of the first sync, which is not what the tests validated).
// A Subscription whose channel the catalog lacks resolves nothing: no operator, no CRDs, no sync.
func checkSubscriptions(objs []*unstructured.Unstructured, cat *OLMCatalog) []string {
	var p objects.Problems
	for _, o := range objs {
		if o.GetKind() != "Subscription" || !strings.HasPrefix(o.GetAPIVersion(), "operators.coreos.com/") {
			continue
		}
		spec := objects.MapAt(o.Object, "spec")
		if src, ns := objects.StringAt(spec, "source"), objects.StringAt(spec, "sourceNamespace"); src != cat.Source || ns != cat.SourceNamespace {
			p.Addf("%s: source %s/%s, but the catalog recorded in %s is %s/%s", objects.Ref(o), ns, src, OLMCatalogFile, cat.SourceNamespace, cat.Source)
			continue
		}
		name := objects.StringAt(spec, "name")
		pkg := cat.Package(name)
		if pkg == nil {
			p.Addf("%s: package %q is not in catalog %s (%s)", objects.Ref(o), name, cat.Source, OLMCatalogFile)
			continue
		}
		chName := objects.StringAt(spec, "channel")
		if chName == "" {
			chName = pkg.DefaultChannel
		}
		ch := pkg.Channel(chName)
		if ch == nil {
			var names []string
			for _, c := range pkg.Channels {
				names = append(names, c.Name)
			}
			p.Addf("%s: channel %q is not a channel of package %s (it has %s): OLM resolves nothing", objects.Ref(o), chName, name, strings.Join(names, ", "))
			continue
		}
		csv := objects.StringAt(spec, "startingCSV")
		switch {
		case csv == "" && objects.StringAt(spec, "installPlanApproval") == "Manual":
			p.Addf("%s: installPlanApproval Manual without startingCSV: the first install takes the channel's head of the day, not the version the manifests are validated against", objects.Ref(o))
		case csv != "" && !slices.Contains(ch.Entries, csv):
			p.Addf("%s: startingCSV %q is not in channel %s of package %s", objects.Ref(o), csv, chName, name)
		}
	}
	return p
}
