//go:build linux

package bpf

import "github.com/linuxdiag/aod/bpf/internal/probeaccess"

// The test harness (bpf/bpftest) reaches the programs and the in-flight table through
// probeaccess, so that they stay out of the package's API.
func init() {
	probeaccess.Of = func(v any) probeaccess.Internals {
		p := v.(*Probes)
		o := &p.objs
		return probeaccess.Internals{
			CmdEnter:    o.AodCmdEnter,
			CmdDone:     o.AodCmdDone,
			CmdErr:      o.AodCmdErr,
			Reconnect:   o.AodReconnect,
			ConnectDone: o.AodConnectDone,
			ConnectErr:  o.AodConnectErr,
			Events:      o.Events,
			SetStart:    p.setStart,
			Now:         monotonicNow,
		}
	}
	probeaccess.OfNFS = func(v any) probeaccess.NFSInternals {
		o := &v.(*NFSProbes).objs
		return probeaccess.NFSInternals{
			RPCStats:      o.AodRpcStats,
			RPCError:      o.AodRpcError,
			NFSXdrStatus:  o.AodNfsXdrStatus,
			NFS4XdrStatus: o.AodNfs4XdrStatus,
			Connect:       o.AodNfsConnect,
			ForceClose:    o.AodNfsDisconnectForce,
			AutoClose:     o.AodNfsDisconnectAuto,
			Create:        o.AodNfsXprtCreate,
		}
	}
}
