// Package configs holds aod's default configuration, embedded in the binary.
package configs

import _ "embed"

// DefaultName stands for the embedded file in messages.
const DefaultName = "configs/aod.yaml (embedded)"

// Default is configs/aod.yaml: the configuration `aod run` uses without --config.
//
//go:embed aod.yaml
var Default []byte
