// Package data holds the files embedded in the binary: the seed catalogue
// that `allowlist serve --seed` loads into an empty registry, and example
// configuration.
package data

import _ "embed"

// Catalogue is the seed catalogue (catalogue.yaml).
//
//go:embed catalogue.yaml
var Catalogue []byte
