package actions

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// smbPort is the TCP port of SMB; sockets to or from it are the client's connections.
const smbPort = 445

// procNetTCP are the kernel's TCP socket tables, read when ss is not installed.
var procNetTCP = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// socketsAction lists the TCP sockets to or from port 445 with the kernel's TCP
// state for each (ss -tinpem: RTT, retransmits, congestion window, queues, owning
// process). Without ss it copies the matching rows of /proc/net/tcp and tcp6, which
// have fewer fields (queues, retransmits, timers, uid, inode, rto, cwnd).
func socketsAction() Action {
	return Action{Name: NameSockets, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		w, err := out.Create("sockets.txt")
		if err != nil {
			return err
		}
		filter := fmt.Sprintf("( sport = :%d or dport = :%d )", smbPort, smbPort)
		err = runCommand(ctx, env, w, r, "ss", "-t", "-a", "-n", "-i", "-p", "-e", "-m", filter)
		var skip *skipError
		if !errors.As(err, &skip) {
			return err
		}
		r.Source = strings.Join(procNetTCP, ",")
		if _, err := fmt.Fprintf(w, "# %s; rows of %s on port %d\n", skip.reason, r.Source, smbPort); err != nil {
			return err
		}
		var errs []error
		for _, p := range procNetTCP {
			if err := copyProcNetTCP(w, p, smbPort); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}}
}

// copyProcNetTCP copies the header and the rows of a kernel TCP table whose local or
// remote port is port, as the kernel wrote them (addresses in hex; the columns are
// documented in the kernel's proc_net_tcp.rst). Decoding the addresses is left to
// the reader: this is the fallback for hosts without ss.
func copyProcNetTCP(w io.Writer, path string, port uint16) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 512), 64*1024)
	var bad int
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		keep := n == 1 // the column header
		if !keep {
			local, remote, err := rowPorts(line)
			if err != nil {
				bad++
				continue
			}
			keep = local == port || remote == port
		}
		if keep {
			if _, err := io.WriteString(w, line+"\n"); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if bad > 0 {
		return fmt.Errorf("%s: %d rows without two ADDR:PORT columns", path, bad)
	}
	return nil
}

// rowPorts reads the local and remote ports of a TCP table row
// ("sl: ADDR:PORT ADDR:PORT st ...", ports in hex).
func rowPorts(line string) (local, remote uint16, err error) {
	f := strings.Fields(line)
	if len(f) < 3 || !strings.HasSuffix(f[0], ":") {
		return 0, 0, fmt.Errorf("not a TCP table row: %.80q", line)
	}
	ports := [2]uint16{}
	for i, field := range f[1:3] {
		_, hex, ok := strings.Cut(field, ":")
		p, err := strconv.ParseUint(hex, 16, 16)
		if !ok || err != nil {
			return 0, 0, fmt.Errorf("%.50q is not ADDR:PORT", field)
		}
		ports[i] = uint16(p)
	}
	return ports[0], ports[1], nil
}
