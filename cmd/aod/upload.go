package main

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/linuxdiag/aod/internal/control"
	"github.com/linuxdiag/aod/internal/upload"
)

// upload is `aod upload status|validate`. AODv2's `upload enable|disable` edited
// its configuration; aod's upload is switched in the file (upload.enabled) like
// every other setting, so configuration management stays the one writer of it.
func (c *cli) upload(ctx context.Context, args []string) int {
	if len(args) == 0 {
		return c.usageError("upload needs a subcommand: status or validate")
	}
	sub, args := args[0], args[1:]
	fs := c.newFlags("upload " + sub)
	switch sub {
	case "status":
		sock := fs.String("control-socket", control.DefaultPath, "the running agent's control socket")
		asJSON := fs.Bool("json", false, "print the queue as JSON")
		if code, done := c.parse(fs, args); done {
			return code
		}
		if fs.NArg() > 0 {
			return c.usageError("upload status takes no arguments, got %q", fs.Args())
		}
		st, err := control.UploadStatus(ctx, *sock)
		if err != nil {
			fmt.Fprintf(c.stderr, "aod: upload status: %v\n", err)
			return exitFailure
		}
		if *asJSON {
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(st)
			return exitOK
		}
		printUploadStatus(c, st, time.Now())
		return exitOK
	case "validate":
		file := fs.String("config", "", "configuration file (default: the embedded one)")
		if code, done := c.parse(fs, args); done {
			return code
		}
		return c.uploadValidate(ctx, *file)
	}
	return c.usageError("unknown upload subcommand %q; allowed: status, validate", sub)
}

func printUploadStatus(c *cli, st upload.Status, now time.Time) {
	for _, d := range st.Destinations {
		state := "ok"
		if !d.PausedUntil.IsZero() {
			state = fmt.Sprintf("paused until %s (auth or not-found errors, %d in a row)", d.PausedUntil.Format(time.RFC3339), d.Trips)
		}
		fmt.Fprintf(c.stdout, "destination %s: %s\n", d.Name, state)
	}
	counts := map[upload.State]int{}
	tw := tabwriter.NewWriter(c.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "BUNDLE\tDESTINATION\tSTATE\tATTEMPTS\tBYTES\tNEXT\tDETAIL")
	for _, it := range st.Items {
		counts[it.State]++
		next := "-"
		if !it.NextAttempt.IsZero() {
			next = "in " + it.NextAttempt.Sub(now).Round(time.Second).String()
		}
		detail := it.URL
		if it.Error != "" && it.State != upload.StateUploaded {
			detail = strings.TrimSpace(it.Reason + " " + it.Error)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", it.Bundle, it.Destination, it.State, it.Attempts, it.Bytes, next, detail)
	}
	tw.Flush()
	var parts []string
	for _, s := range []upload.State{upload.StatePending, upload.StateInProgress, upload.StateUploaded, upload.StateFailed, upload.StateLost, upload.StateSkipped} {
		parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
	}
	fmt.Fprintln(c.stdout, strings.Join(parts, ", "))
}

// uploadValidate builds the configuration's destinations and stores a small probe
// object in each (a conditional create: "already there" proves access as well).
func (c *cli) uploadValidate(ctx context.Context, file string) int {
	cfg, ok := c.load(file)
	if !ok {
		return exitFailure
	}
	if !cfg.Upload.Enabled {
		fmt.Fprintln(c.stderr, "aod: upload validate: upload is off (upload.enabled is false)")
		return exitFailure
	}
	dests, err := upload.Destinations(ctx, cfg.Upload)
	if err != nil {
		fmt.Fprintf(c.stderr, "aod: upload validate: %v\n", err)
		return exitFailure
	}
	host, _ := os.Hostname()
	body := []byte(fmt.Sprintf("{\"probe\":\"aod upload validate\",\"host\":%q}\n", host))
	sum := upload.Digest{SHA256: sha256.Sum256(body), MD5: md5.Sum(body)}
	key := strings.Trim(cfg.Upload.Prefix, "/") + "/" + host + "/validate.json"
	code := exitOK
	for _, d := range dests {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := d.Put(pctx, key, strings.NewReader(string(body)), int64(len(body)), sum)
		cancel()
		switch {
		case err == nil || errors.Is(err, upload.ErrExists):
			fmt.Fprintf(c.stdout, "%s: ok (%s)\n", d.Name(), d.URL(key))
		default:
			fmt.Fprintf(c.stdout, "%s: FAILED: %v\n", d.Name(), err)
			code = exitFailure
		}
	}
	return code
}
