package aodanomalyconnector

import (
	"math"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/linuxdiag/aod/internal/anomalypdata"
	"github.com/linuxdiag/aod/internal/event"
	"github.com/linuxdiag/aod/internal/otelconv"
	"github.com/linuxdiag/aod/internal/podattr"
	"github.com/linuxdiag/aod/internal/proto"
)

// unknownCommand marks a command name outside the protocol's table; no latency rule
// tracks it.
const unknownCommand = math.MaxUint16

// decode turns one of the receiver's log records (receiver/otelconv.LogBuilder) back
// into the event it was built from, with times in Unix nanoseconds instead of
// CLOCK_MONOTONIC. It reports false for records that are not aod events.
func decode(lr plog.LogRecord, e *event.Event) bool {
	attrs := lr.Attributes()
	pv, ok := attrs.Get(otelconv.AttrProtocol)
	if !ok {
		return false
	}
	p, ok := proto.ParseProtocol(pv.Str())
	if !ok {
		return false
	}
	kv, ok := attrs.Get(otelconv.AttrEventKind)
	if !ok {
		return false
	}
	kind, ok := anomalypdata.KindByName(kv.Str())
	if !ok {
		return false
	}
	k := &proto.TableOf(p).Keys
	*e = event.Event{Protocol: p, Kind: kind}
	e.EndNs = uint64(lr.Timestamp())
	if e.EndNs == 0 {
		e.EndNs = uint64(lr.ObservedTimestamp())
	}
	e.Rc = int32(intAttr(attrs, k.Rc))
	switch kind {
	case event.KindSlow, event.KindError:
		e.Command = unknownCommand
		if v, ok := attrs.Get(k.Command); ok {
			if c, ok := proto.ParseCommand(p, v.Str()); ok {
				e.Command = c.Code
			}
		}
		if v, ok := attrs.Get(k.OpDuration); ok && v.Type() == pcommon.ValueTypeDouble {
			// Without a usable duration StartNs stays 0 and the latency detector skips
			// the event as having no start.
			if ns := math.Round(v.Double() * 1e9); ns >= 0 && ns <= float64(e.EndNs) {
				e.StartNs = e.EndNs - uint64(ns)
			}
		}
		e.Status = uint32(intAttr(attrs, k.Status))
		e.SessionID = hexAttr(attrs, k.SessionID)
		e.TreeID = uint32(hexAttr(attrs, k.TreeID))
		e.MessageID = uint64(intAttr(attrs, k.MessageID))
		e.Tgid = uint32(intAttr(attrs, otelconv.AttrPid))
		e.Pid = uint32(intAttr(attrs, otelconv.AttrTid))
		if v, ok := attrs.Get(otelconv.AttrComm); ok {
			copy(e.Comm[:len(e.Comm)-1], v.Str())
		}
		e.CgroupID = hexAttr(attrs, podattr.KeyCgroupID)
	default:
		e.ConnID = hexAttr(attrs, k.ConnID)
		if v, ok := attrs.Get(otelconv.AttrServer); ok {
			copy(e.Server[:len(e.Server)-1], v.Str())
		}
	}
	return true
}

func intAttr(m pcommon.Map, key string) int64 {
	v, ok := m.Get(key)
	if !ok {
		return 0
	}
	return v.Int()
}

// hexAttr reads the receiver's "0x..."-formatted ids; anything else is 0.
func hexAttr(m pcommon.Map, key string) uint64 {
	v, ok := m.Get(key)
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v.Str(), 0, 64)
	if err != nil {
		return 0
	}
	return n
}
