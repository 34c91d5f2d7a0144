// Package images carries the image inventory's data files into the binaries: the known advisories of
// the pinned images (advisories.yaml), read by `litemaas-ops check` and `verify` wherever they run.
package images

import _ "embed"

// Advisories is advisories.yaml as committed.
//
//go:embed advisories.yaml
var Advisories []byte

// ImageSet is images.yaml as committed.
//
//go:embed images.yaml
var ImageSet []byte
