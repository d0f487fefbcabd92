package agent

import (
	"os"
	"runtime"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"golang.org/x/sys/unix"

	"github.com/linuxdiag/aod/internal/version"
)

// resource describes this agent on everything it exports. service.instance.id is the
// host name so that Prometheus (instance label) and OTLP backends tell nodes apart.
func resource() pcommon.Resource {
	r := pcommon.NewResource()
	at := r.Attributes()
	at.PutStr("service.name", "aod")
	at.PutStr("service.version", version.Version)
	host, _ := os.Hostname()
	if host != "" {
		at.PutStr("host.name", host)
		at.PutStr("service.instance.id", host)
	}
	at.PutStr("os.type", runtime.GOOS)
	if rel := kernelRelease(); rel != "" {
		at.PutStr("os.version", rel)
	}
	return r
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}
