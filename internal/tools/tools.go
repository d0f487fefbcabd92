//go:build tools

// Package tools records the build tools this module pins; nothing imports it.
package tools

import (
	_ "go.opentelemetry.io/collector/cmd/mdatagen"
)
