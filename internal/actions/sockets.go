package actions

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/linuxdiag/aod/internal/procnet"
	"github.com/linuxdiag/aod/internal/proto"
)

// procNetTCP are the kernel's TCP socket tables, read when ss is not installed.
var procNetTCP = []string{"/proc/net/tcp", "/proc/net/tcp6"}

// socketsAction lists the TCP sockets to or from the server port of the anomaly's
// protocol (445 for SMB; every protocol's for a snapshot) with the kernel's TCP
// state for each (ss -tinpem: RTT, retransmits, congestion window, queues, owning
// process). Without ss it decodes /proc/net/tcp and tcp6, which have fewer fields
// (state, queues, retransmits, uid, inode).
func socketsAction() Action {
	return Action{Name: NameSockets, Run: func(ctx context.Context, env *Env, out *Output, r *Result) error {
		w, err := out.Create("sockets.txt")
		if err != nil {
			return err
		}
		ports := env.serverPorts()
		var terms []string
		for _, p := range ports {
			terms = append(terms, fmt.Sprintf("sport = :%d or dport = :%d", p, p))
		}
		filter := "( " + strings.Join(terms, " or ") + " )"
		err = runCommand(ctx, env, w, r, "ss", "-t", "-a", "-n", "-i", "-p", "-e", "-m", filter)
		var skip *skipError
		if !errors.As(err, &skip) {
			return err
		}
		r.Source = strings.Join(procNetTCP, ",")
		if _, err := fmt.Fprintf(w, "# %s; TCP sockets on ports %v from %s\n", skip.reason, ports, r.Source); err != nil {
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
		return errors.Join(append(errs, writeSockets(w, conns, ports))...)
	}}
}

// writeSockets writes the connections to or from one of ports as a table with ss's
// column names.
func writeSockets(w io.Writer, conns []procnet.Conn, ports []uint16) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "State\tRecv-Q\tSend-Q\tLocal Address:Port\tPeer Address:Port\tRetrans\tUID\tInode")
	for _, c := range conns {
		if !slices.Contains(ports, c.Local.Port()) && !slices.Contains(ports, c.Remote.Port()) {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%d\n", procnet.StateName(c.State), c.RxQueue, c.TxQueue,
			c.Local, c.Remote, c.Retransmits, c.UID, c.Inode)
	}
	return tw.Flush()
}

// serverPorts are the TCP ports of the servers of the anomaly's protocol, or of every
// protocol aod has a table for when the anomaly has none (an on-demand snapshot).
func (env *Env) serverPorts() []uint16 {
	if env != nil && env.Anomaly != nil {
		if p, ok := proto.ParseProtocol(env.Anomaly.Protocol); ok {
			if port := proto.TableOf(p).Port; port != 0 {
				return []uint16{port}
			}
		}
	}
	var ports []uint16
	for t := range proto.Tables() {
		if t.Port != 0 && !slices.Contains(ports, t.Port) {
			ports = append(ports, t.Port)
		}
	}
	return ports
}
