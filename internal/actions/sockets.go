package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/linuxdiag/aod/internal/procnet"
)

// smbPort is the TCP port of SMB; sockets to or from it are the client's connections.
const smbPort = 445

// procNetTCP are the kernel's TCP socket tables, read when ss is not installed.
var procNetTCP = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// socketsAction lists the TCP sockets to or from port 445 with the kernel's TCP
// state for each (ss -tinpem: RTT, retransmits, congestion window, queues, owning
// process). Without ss it decodes /proc/net/tcp and tcp6, which have fewer fields
// (state, queues, retransmits, uid, inode).
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
		if _, err := fmt.Fprintf(w, "# %s; TCP sockets on port %d from %s\n", skip.reason, smbPort, r.Source); err != nil {
			return err
		}
		var conns []procnet.Conn
		var errs []error
		for _, p := range procNetTCP {
			data, err := os.ReadFile(p)
			if err == nil {
				conns, err = procnet.Parse(data, conns)
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) { // no tcp6 without IPv6
				errs = append(errs, fmt.Errorf("%s: %w", p, err))
			}
		}
		return errors.Join(append(errs, writeSockets(w, conns, smbPort))...)
	}}
}

// writeSockets writes the connections to or from port as a table with ss's column
// names.
func writeSockets(w io.Writer, conns []procnet.Conn, port uint16) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "State\tRecv-Q\tSend-Q\tLocal Address:Port\tPeer Address:Port\tRetrans\tUID\tInode")
	for _, c := range conns {
		if c.Local.Port() != port && c.Remote.Port() != port {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\n", procnet.StateName(c.State), c.RxQueue, c.TxQueue,
			c.Local, c.Remote, c.Retransmits, c.UID, c.Inode)
	}
	return tw.Flush()
}
