package otelconv

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/linuxdiag/aod/internal/cifsproc"
	"github.com/linuxdiag/aod/internal/smb"
)

// cumKey names one cifs Stats counter series.
type cumKey struct {
	metric, server, share, sub string
}

type cumState struct {
	start pcommon.Timestamp
	last  int64
	seen  bool
}

// cumulative gives the cifs Stats counters, which the kernel keeps and anyone can
// reset by writing to the Stats file, stable start times: the kernel's own "since"
// where it prints one, else the default start until the value goes down, which means
// a reset between the previous snapshot and this one.
type cumulative struct {
	m         map[cumKey]*cumState
	prev, now pcommon.Timestamp
}

func newCumulative() *cumulative { return &cumulative{m: map[cumKey]*cumState{}} }

// advance starts a new snapshot.
func (c *cumulative) advance(now pcommon.Timestamp) {
	c.prev, c.now = c.now, now
	for _, st := range c.m {
		st.seen = false
	}
}

// startOf records v for the series and returns its start time. since is the kernel's
// reset time for the series (0 if it prints none); dflt the start assumed otherwise.
func (c *cumulative) startOf(key cumKey, v int64, since, dflt pcommon.Timestamp) pcommon.Timestamp {
	st := c.m[key]
	switch {
	case st == nil:
		st = &cumState{start: dflt}
		c.m[key] = st
	case v < st.last:
		st.start = c.prev
		if st.start == 0 {
			st.start = c.now
		}
	}
	if since != 0 {
		st.start = since
	}
	st.last, st.seen = v, true
	return st.start
}

// sweep forgets series the last snapshot did not have (an unmounted share).
func (c *cumulative) sweep() {
	for k, st := range c.m {
		if !st.seen {
			delete(c.m, k)
		}
	}
}

// statsBuilder appends the cifs Stats metrics.
type statsBuilder struct {
	*builder
	cum   *cumulative
	start pcommon.Timestamp // default start of Stats counters
}

// counter appends a point of a Stats counter whose start the cumulative tracker keeps.
func (s *statsBuilder) counter(dps pmetric.NumberDataPointSlice, key cumKey, v int64, since pcommon.Timestamp, kv ...string) {
	dp := dps.AppendEmpty()
	dp.SetStartTimestamp(s.cum.startOf(key, v, since, s.start))
	dp.SetTimestamp(s.now)
	dp.SetIntValue(v)
	putAttrs(dp.Attributes(), kv)
}

// seconds appends a point of a Stats time counter kept in jiffies.
func (s *statsBuilder) seconds(dps pmetric.NumberDataPointSlice, key cumKey, jiffies, hz int64, kv ...string) {
	dp := dps.AppendEmpty()
	dp.SetStartTimestamp(s.cum.startOf(key, jiffies, 0, s.start))
	dp.SetTimestamp(s.now)
	dp.SetDoubleValue(float64(jiffies) / float64(hz))
	putAttrs(dp.Attributes(), kv)
}

func (m *Metrics) buildStats(b *builder, st *cifsproc.Stats) {
	s := statsBuilder{builder: b, cum: m.cum, start: m.statsStart}

	b.level(b.gauge("cifs.sessions", "{session}", "SMB sessions the cifs client has allocated."), st.Sessions)
	b.level(b.gauge("cifs.shares", "{share}", "Tree connections (unique mount targets) the cifs client has allocated."), st.Shares)
	bufs := b.gauge("cifs.buffers", "{buffer}", "Request/response buffers in use.")
	b.level(bufs, st.LargeBuffers, AttrBufferSize, "large")
	b.level(bufs, st.SmallBuffers, AttrBufferSize, "small")
	pool := b.gauge("cifs.buffer.pool_size", "{buffer}", "Buffers the cifs client keeps preallocated.")
	b.level(pool, st.LargeBufferPool, AttrBufferSize, "large")
	b.level(pool, st.SmallBufferPool, AttrBufferSize, "small")
	if st.HasAllocTotals {
		allocs := b.sum("cifs.buffer.allocations", "{buffer}", "Request/response buffers allocated (CONFIG_CIFS_STATS2).")
		s.counter(allocs, cumKey{metric: "alloc", sub: "large"}, st.LargeAllocations, 0, AttrBufferSize, "large")
		s.counter(allocs, cumKey{metric: "alloc", sub: "small"}, st.SmallAllocations, 0, AttrBufferSize, "small")
	}
	b.level(b.gauge("cifs.mids", "{request}", "Requests (MIDs) allocated and not yet released."), st.MIDs)
	rec := b.sum("cifs.reconnects", "{reconnect}", "Session and share reconnects.")
	s.counter(rec, cumKey{metric: "reconnect", sub: "session"}, st.SessionReconnects, 0, AttrReconnect, "session")
	s.counter(rec, cumKey{metric: "reconnect", sub: "share"}, st.ShareReconnects, 0, AttrReconnect, "share")
	s.counter(b.sum("cifs.vfs.operations", "{operation}", "File system operations the cifs client started."),
		cumKey{metric: "vfs"}, st.VFSOperations, 0)
	b.level(b.gauge("cifs.vfs.operations.max_active", "{operation}", "Most file system operations in progress at once since the counters were reset."), st.VFSMaxActive)

	if len(st.Servers) == 0 {
		return
	}
	servers := mergeServers(st.Servers)
	inFlight := b.gauge("cifs.server.requests.max_in_flight", "{request}", "Most requests on the wire to a server at once since the counters were reset.")
	for _, srv := range servers {
		b.level(inFlight, srv.MaxInFlight, AttrServer, srv.Server)
	}
	buildServerCommands(&s, servers)
	buildShares(&s, mergeShares(st.Servers))
}

// mergeServers adds up the blocks of connections to the same server (a nosharesock
// mount opens one of its own), so that each series is exported once.
func mergeServers(in []cifsproc.ServerStats) []cifsproc.ServerStats {
	out := make([]cifsproc.ServerStats, 0, len(in))
	idx := make(map[string]int, len(in))
	for _, srv := range in {
		i, ok := idx[srv.Server]
		if !ok {
			idx[srv.Server] = len(out)
			out = append(out, cifsproc.ServerStats{Server: srv.Server, JiffiesPerSecond: srv.JiffiesPerSecond})
			i = len(out) - 1
		}
		o := &out[i]
		o.MaxInFlight = max(o.MaxInFlight, srv.MaxInFlight)
		for _, c := range srv.Commands {
			o.Commands = mergeCommand(o.Commands, c)
		}
		for _, r := range srv.SlowResponses {
			o.SlowResponses = mergeSlow(o.SlowResponses, r)
		}
	}
	return out
}

func mergeCommand(cs []cifsproc.CommandStats, c cifsproc.CommandStats) []cifsproc.CommandStats {
	for i := range cs {
		if cs[i].Command != c.Command {
			continue
		}
		o := &cs[i]
		switch {
		case c.Count == 0:
		case o.Count == 0:
			o.FastestJiffy, o.SlowestJiffy = c.FastestJiffy, c.SlowestJiffy
		default:
			o.FastestJiffy = min(o.FastestJiffy, c.FastestJiffy)
			o.SlowestJiffy = max(o.SlowestJiffy, c.SlowestJiffy)
		}
		o.Count += c.Count
		o.TotalJiffies += c.TotalJiffies
		o.HasFastestSlowest = o.HasFastestSlowest && c.HasFastestSlowest
		return cs
	}
	return append(cs, c)
}

func mergeSlow(rs []cifsproc.SlowResponses, r cifsproc.SlowResponses) []cifsproc.SlowResponses {
	for i := range rs {
		if rs[i].Command == r.Command {
			rs[i].Count += r.Count
			return rs
		}
	}
	return append(rs, r)
}

// mergeShares adds up the tree connections to the same share: a multiuser mount has one
// per user session. Their counters reset together only when Stats is written, so a
// merged share keeps a kernel "since" only when all its parts agree.
func mergeShares(servers []cifsproc.ServerStats) []cifsproc.ShareStats {
	var out []cifsproc.ShareStats
	idx := map[[2]string]int{}
	for _, srv := range servers {
		for _, sh := range srv.Shares {
			k := [2]string{sh.Server, sh.Share}
			i, ok := idx[k]
			if !ok {
				idx[k] = len(out)
				sh.CommandCounters = append([]cifsproc.ShareCommand(nil), sh.CommandCounters...)
				out = append(out, sh)
				continue
			}
			o := &out[i]
			if !o.Since.Equal(sh.Since) {
				o.Since = time.Time{}
			}
			o.Disconnected = o.Disconnected || sh.Disconnected
			o.SMBs += sh.SMBs
			o.HasBytes = o.HasBytes || sh.HasBytes
			o.BytesRead += sh.BytesRead
			o.BytesWritten += sh.BytesWritten
			o.HasOpenFiles = o.HasOpenFiles || sh.HasOpenFiles
			o.OpenFilesLocal += sh.OpenFilesLocal
			o.OpenFilesRemote += sh.OpenFilesRemote
		next:
			for _, c := range sh.CommandCounters {
				for j := range o.CommandCounters {
					if o.CommandCounters[j].Label == c.Label {
						o.CommandCounters[j].Sent += c.Sent
						o.CommandCounters[j].Failed += c.Failed
						continue next
					}
				}
				o.CommandCounters = append(o.CommandCounters, c)
			}
		}
	}
	return out
}

func buildServerCommands(s *statsBuilder, servers []cifsproc.ServerStats) {
	var hasTable, hasSlow bool
	for _, srv := range servers {
		hasTable = hasTable || len(srv.Commands) > 0
		hasSlow = hasSlow || len(srv.SlowResponses) > 0
	}
	if hasTable {
		count := s.sum("cifs.server.commands", "{request}", "Responses received per SMB2 command (CONFIG_CIFS_STATS2).")
		total := s.sum("cifs.server.command.time", "s", "Summed response time per SMB2 command, counted in jiffies (CONFIG_CIFS_STATS2).")
		fastest := s.gauge("cifs.server.command.fastest", "s", "Fastest response per SMB2 command since the counters were reset (CONFIG_CIFS_STATS2).")
		slowest := s.gauge("cifs.server.command.slowest", "s", "Slowest response per SMB2 command since the counters were reset (CONFIG_CIFS_STATS2).")
		for _, srv := range servers {
			for _, c := range srv.Commands {
				cmd := smb.Command(c.Command).String()
				key := cumKey{metric: "cmd", server: srv.Server, sub: cmd}
				s.counter(count, key, c.Count, 0, AttrServer, srv.Server, smb.Table.Keys.Command, cmd)
				key.metric = "cmdtime"
				s.seconds(total, key, c.TotalJiffies, srv.JiffiesPerSecond, AttrServer, srv.Server, smb.Table.Keys.Command, cmd)
				if c.HasFastestSlowest && c.Count > 0 {
					hz := float64(srv.JiffiesPerSecond)
					s.levelDouble(fastest, float64(c.FastestJiffy)/hz, AttrServer, srv.Server, smb.Table.Keys.Command, cmd)
					s.levelDouble(slowest, float64(c.SlowestJiffy)/hz, AttrServer, srv.Server, smb.Table.Keys.Command, cmd)
				}
			}
		}
	}
	if hasSlow {
		slow := s.sum("cifs.server.slow_responses", "{response}", "Responses slower than the cifs client's own slow-response limit, per SMB2 command.")
		for _, srv := range servers {
			for _, r := range srv.SlowResponses {
				cmd := smb.Command(r.Command).String()
				s.counter(slow, cumKey{metric: "slow", server: srv.Server, sub: cmd}, r.Count, 0, AttrServer, srv.Server, smb.Table.Keys.Command, cmd)
			}
		}
	}
}

func buildShares(s *statsBuilder, shares []cifsproc.ShareStats) {
	if len(shares) == 0 {
		return
	}
	var hasBytes, hasOpen, hasCmds bool
	for _, sh := range shares {
		hasBytes = hasBytes || sh.HasBytes
		hasOpen = hasOpen || sh.HasOpenFiles
		hasCmds = hasCmds || len(sh.CommandCounters) > 0
	}
	reqs := s.sum("cifs.share.requests", "{request}", "SMB requests sent on a share.")
	disc := s.gauge("cifs.share.disconnected", "1", "1 while the share's tree connection needs a reconnect, else 0.")
	var io, open, cmds, failed pmetric.NumberDataPointSlice
	if hasBytes {
		io = s.sum("cifs.share.io", "By", "Bytes read from and written to a share.")
	}
	if hasOpen {
		open = s.gauge("cifs.share.open_files", "{file}", "Files open on a share, as the client and as the server count them.")
	}
	if hasCmds {
		cmds = s.sum("cifs.share.commands", "{request}", "Requests sent on a share, per SMB2 command.")
		failed = s.sum("cifs.share.command.failures", "{request}", "Requests on a share that failed, per SMB2 command.")
	}
	for _, sh := range shares {
		since := pcommon.Timestamp(0)
		if !sh.Since.IsZero() {
			since = pcommon.NewTimestampFromTime(sh.Since)
		}
		key := cumKey{metric: "smbs", server: sh.Server, share: sh.Share}
		s.counter(reqs, key, sh.SMBs, since, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share)
		var d int64
		if sh.Disconnected {
			d = 1
		}
		s.level(disc, d, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share)
		if sh.HasBytes {
			key.metric, key.sub = "io", "read"
			s.counter(io, key, sh.BytesRead, since, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share, AttrDirection, "read")
			key.sub = "write"
			s.counter(io, key, sh.BytesWritten, since, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share, AttrDirection, "write")
		}
		if sh.HasOpenFiles {
			s.level(open, sh.OpenFilesLocal, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share, AttrOpenScope, "local")
			s.level(open, sh.OpenFilesRemote, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share, AttrOpenScope, "server")
		}
		for _, c := range sh.CommandCounters {
			cmd := c.Label
			if c.Known {
				cmd = smb.Command(c.Command).String()
			}
			key.metric, key.sub = "sent", cmd
			s.counter(cmds, key, c.Sent, since, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share, smb.Table.Keys.Command, cmd)
			key.metric = "failed"
			s.counter(failed, key, c.Failed, since, AttrServer, sh.Server, smb.Table.Keys.Share, sh.Share, smb.Table.Keys.Command, cmd)
		}
	}
}

// levelDouble appends one floating-point gauge point.
func (b *builder) levelDouble(dps pmetric.NumberDataPointSlice, v float64, kv ...string) {
	dp := dps.AppendEmpty()
	dp.SetTimestamp(b.now)
	dp.SetDoubleValue(v)
	putAttrs(dp.Attributes(), kv)
}
