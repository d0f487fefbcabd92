//go:build !linux

package aodreceiver

import (
	"context"
	"fmt"
	"runtime"

	"go.opentelemetry.io/collector/component"

	"github.com/linuxdiag/aod/receiver/aodreceiver/internal/metadata"
)

// start fails: the probes are Linux eBPF programs. The collector still builds with
// this receiver in it, and says why it cannot run it.
func start(context.Context, component.Host, *aodReceiver) (runner, error) {
	return nil, fmt.Errorf("%s receiver: measures SMB requests with Linux eBPF probes and cannot run on %s", metadata.Type, runtime.GOOS)
}
