package cifsproc

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// stats2Rows builds the STATS2 table as rows 0..n-1 of {count, total, fastest, slowest}.
func stats2Rows(counts ...[4]int64) []CommandStats {
	rows := make([]CommandStats, len(counts))
	for i, c := range counts {
		rows[i] = CommandStats{Command: uint16(i), Count: c[0], TotalJiffies: c[1], FastestJiffy: c[2], SlowestJiffy: c[3], HasFastestSlowest: true}
	}
	return rows
}

func shareCommands(sent map[string]int64) []ShareCommand {
	order := []string{"TreeConnects", "TreeDisconnects", "Creates", "Closes", "Flushes", "Reads", "Writes",
		"Locks", "IOCTLs", "QueryDirectories", "ChangeNotifies", "QueryInfos", "SetInfos", "OplockBreaks"}
	out := make([]ShareCommand, len(order))
	for i, l := range order {
		out[i] = ShareCommand{Label: l, Command: shareLabelCommands[l], Known: true, Sent: sent[l]}
	}
	return out
}

func TestParseStatsRealKernels(t *testing.T) {
	for _, tc := range []struct {
		file  string
		want  Stats
		since time.Time
	}{
		{
			file: "kernel-6.1/Stats",
			want: Stats{
				Sessions: 1, Shares: 2, LargeBuffers: 1, LargeBufferPool: 5, SmallBuffers: 1, SmallBufferPool: 30,
				HasAllocTotals: true, LargeAllocations: 56, SmallAllocations: 564,
				VFSOperations: 130, VFSMaxActive: 4,
				Servers: []ServerStats{{
					Server: "127.0.0.1", MaxInFlight: 6, JiffiesPerSecond: 250,
					Commands: stats2Rows(
						[4]int64{1, 55, 55, 55}, [4]int64{2, 14, 4, 10}, [4]int64{}, [4]int64{2, 8, 3, 5}, [4]int64{},
						[4]int64{55, 131, 0, 44}, [4]int64{54, 255, 0, 44}, [4]int64{4, 28, 0, 26}, [4]int64{69, 25, 0, 1},
						[4]int64{65, 27, 0, 2}, [4]int64{}, [4]int64{2, 0, 0, 0}, [4]int64{}, [4]int64{}, [4]int64{},
						[4]int64{}, [4]int64{50, 92, 0, 44}, [4]int64{5, 55, 0, 54}, [4]int64{}),
					Shares: []ShareStats{{
						Server: "127.0.0.1", Share: "share", SMBs: 304,
						HasBytes: true, BytesRead: 4194328, BytesWritten: 4194311,
						HasOpenFiles: true, OpenFilesLocal: 1, OpenFilesRemote: 1,
						CommandCounters: shareCommands(map[string]int64{
							"TreeConnects": 1, "Creates": 55, "Closes": 54, "Flushes": 4, "Reads": 69, "Writes": 65,
							"IOCTLs": 1, "QueryInfos": 50, "SetInfos": 5}),
					}},
				}},
			},
		},
		{
			file: "kernel-6.12/Stats",
			want: Stats{
				Sessions: 1, Shares: 2, LargeBuffers: 1, LargeBufferPool: 5, SmallBuffers: 1, SmallBufferPool: 30,
				HasAllocTotals: true, LargeAllocations: 56, SmallAllocations: 576,
				VFSOperations: 199, VFSMaxActive: 4,
				Servers: []ServerStats{{
					Server: "127.0.0.1", MaxInFlight: 6, JiffiesPerSecond: 250,
					Commands: stats2Rows(
						[4]int64{1, 37, 37, 37}, [4]int64{2, 13, 3, 10}, [4]int64{}, [4]int64{2, 7, 2, 5}, [4]int64{},
						[4]int64{58, 188, 0, 53}, [4]int64{57, 346, 0, 53}, [4]int64{4, 28, 0, 26}, [4]int64{69, 28, 0, 1},
						[4]int64{65, 23, 0, 1}, [4]int64{}, [4]int64{2, 2, 1, 1}, [4]int64{}, [4]int64{}, [4]int64{},
						[4]int64{}, [4]int64{50, 92, 0, 44}, [4]int64{5, 57, 0, 53}, [4]int64{}),
					Shares: []ShareStats{{
						Server: "127.0.0.1", Share: "share", SMBs: 310,
						Since:    time.Date(2026, 11, 26, 2, 11, 33, 0, time.UTC),
						HasBytes: true, BytesRead: 4194328, BytesWritten: 4194311,
						HasOpenFiles: true, OpenFilesLocal: 1, OpenFilesRemote: 1,
						CommandCounters: shareCommands(map[string]int64{
							"TreeConnects": 1, "Creates": 58, "Closes": 57, "Flushes": 4, "Reads": 69, "Writes": 65,
							"IOCTLs": 1, "QueryInfos": 50, "SetInfos": 5}),
					}},
				}},
			},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			got, err := ParseStats(readTestdata(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseStatsMultipleServers(t *testing.T) {
	st, err := ParseStats(readTestdata(t, "proc/cifs-multi/fs/cifs/Stats"))
	if err != nil {
		t.Fatal(err)
	}
	if st.SessionReconnects != 4 || st.ShareReconnects != 7 || st.LargeAllocations != 1200 || st.MIDs != 2 {
		t.Errorf("globals: %+v", st)
	}
	if len(st.Servers) != 2 {
		t.Fatalf("servers: %+v", st.Servers)
	}
	s1, s2 := st.Servers[0], st.Servers[1]
	if s1.Server != "fs1.example.com" || s1.JiffiesPerSecond != 1000 || len(s1.Commands) != 3 || s1.Commands[1].Command != 8 || s1.Commands[1].TotalJiffies != 70000 {
		t.Errorf("server 1: %+v", s1)
	}
	if !reflect.DeepEqual(s1.SlowResponses, []SlowResponses{{Command: 8, Count: 3}}) {
		t.Errorf("slow responses: %+v", s1.SlowResponses)
	}
	if len(s1.Shares) != 2 || s1.Shares[1].Share != "home" || !s1.Shares[1].Disconnected || s1.Shares[0].Disconnected {
		t.Errorf("server 1 shares: %+v", s1.Shares)
	}
	creates := s1.Shares[0].CommandCounters[1]
	if creates != (ShareCommand{Label: "Creates", Command: 5, Known: true, Sent: 800, Failed: 12}) {
		t.Errorf("creates: %+v", creates)
	}
	if ob := s1.Shares[0].CommandCounters[4]; ob.Label != "OplockBreaks" || ob.Sent != 2 {
		t.Errorf("oplock breaks: %+v", ob)
	}
	// The second block has no slow-response line: it is named after its share. Its share
	// negotiated SMB1-style counters, which are skipped rather than misread.
	if s2.Server != "198.51.100.7" || s2.MaxInFlight != 3 || len(s2.Commands) != 1 {
		t.Errorf("server 2: %+v", s2)
	}
	if sh := s2.Shares[0]; sh.SMBs != 7 || sh.HasBytes || len(sh.CommandCounters) != 0 || !sh.Since.IsZero() {
		t.Errorf("server 2 share: %+v", sh)
	}
}

func TestParseStatsErrors(t *testing.T) {
	if _, err := ParseStats(readTestdata(t, "kernel-6.1/DebugData")); !errors.Is(err, ErrNotStats) {
		t.Errorf("DebugData text: err = %v, want ErrNotStats", err)
	}
	full := string(readTestdata(t, "kernel-6.12/Stats"))
	for _, tc := range []struct{ from, to, want string }{
		{"Bytes read: 4194328", "Bytes read: 41x94328", "Bytes read"},
		{"CIFS Session: 1", "CIFS Session: one", "CIFS Session"},
		{"since 2026-11-26 02:11:33 UTC", "since yesterday", "yesterday"},
		{"jiffies (250 per second)", "jiffies (0 per second)", "jiffies rate"},
	} {
		st, err := ParseStats([]byte(strings.Replace(full, tc.from, tc.to, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want one naming %q", tc.to, err, tc.want)
		}
		// The rest still parses.
		if len(st.Servers) != 1 || len(st.Servers[0].Shares) != 1 || st.Servers[0].Shares[0].Share != "share" {
			t.Errorf("%q: lost the rest: %+v", tc.to, st)
		}
	}
}

func FuzzParseStats(f *testing.F) {
	for _, name := range []string{"kernel-6.1/Stats", "kernel-6.12/Stats", "proc/cifs-multi/fs/cifs/Stats"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte("Resources in use\nTotal time spent processing by command. (9 per second)\n 70000 1\n1) \\\\a\\b\nSMBs: 1 since x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStats(data)
		if st == nil {
			t.Fatalf("nil result (err %v)", err)
		}
		for _, s := range st.Servers {
			if len(s.Commands) > 0 && s.JiffiesPerSecond <= 0 {
				t.Fatalf("per-command times without a jiffies rate: %+v", s)
			}
		}
	})
}
