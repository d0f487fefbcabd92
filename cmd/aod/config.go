package main

import (
	"errors"
	"fmt"

	"github.com/linuxdiag/aod/configs"
	"github.com/linuxdiag/aod/internal/config"
)

// config runs `aod config validate|show|migrate`.
func (c *cli) config(args []string) int {
	if len(args) == 0 {
		return c.usageError("config needs a subcommand: validate, show or migrate")
	}
	sub, args := args[0], args[1:]
	fs := c.newFlags("config " + sub)
	if code, done := c.parse(fs, args); done {
		return code
	}
	files := fs.Args()
	switch sub {
	case "validate", "migrate":
		if len(files) != 1 {
			return c.usageError("config %s needs exactly one FILE, got %d", sub, len(files))
		}
	case "show":
		if len(files) > 1 {
			return c.usageError("config show takes at most one FILE, got %d", len(files))
		}
	default:
		return c.usageError("unknown config subcommand %q; allowed: validate, show, migrate", sub)
	}

	switch sub {
	case "validate":
		if _, ok := c.load(files[0]); !ok {
			return exitFailure
		}
		fmt.Fprintf(c.stdout, "%s: valid\n", files[0])
		return exitOK
	case "show":
		file := ""
		if len(files) == 1 {
			file = files[0]
		}
		cfg, ok := c.load(file)
		if !ok {
			return exitFailure
		}
		out, err := cfg.YAML()
		if err != nil {
			fmt.Fprintf(c.stderr, "aod: %v\n", err)
			return exitFailure
		}
		c.stdout.Write(out)
		return exitOK
	}
	return c.migrate(files[0])
}

// loadConfig reads a configuration file; "" is the embedded default.
func loadConfig(file string) (*config.Config, []config.Issue, error) {
	if file == "" {
		return config.Parse(configs.DefaultName, configs.Default)
	}
	return config.Load(file)
}

// load is loadConfig for the config commands: warnings and problems go to stderr as
// plain lines, one per issue, the way compilers print them.
func (c *cli) load(file string) (*config.Config, bool) {
	cfg, warnings, err := loadConfig(file)
	for _, w := range warnings {
		fmt.Fprintf(c.stderr, "warning: %s\n", w)
	}
	if err != nil {
		c.printError(err)
		return nil, false
	}
	return cfg, true
}

func (c *cli) printError(err error) {
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		fmt.Fprintf(c.stderr, "aod: %v\n", err)
		return
	}
	for _, is := range cerr.Issues {
		fmt.Fprintln(c.stderr, is)
	}
	if more := cerr.MoreLine(); more != "" {
		fmt.Fprintln(c.stderr, more)
	}
	if n := cerr.Total(); n > 1 {
		fmt.Fprintf(c.stderr, "%d problems\n", n)
	}
}

func (c *cli) migrate(file string) int {
	data, err := config.ReadFile(file)
	if err != nil {
		c.printError(err)
		return exitFailure
	}
	out, migrated, err := config.Migrate(file, data)
	if err != nil {
		c.printError(err)
		return exitFailure
	}
	if !migrated {
		fmt.Fprintf(c.stderr, "%s is already in the 2026 form; printing it unchanged\n", file)
	}
	c.stdout.Write(out)
	return exitOK
}
