// Package daemoncli is the command line shared by Kai's daemons (kai-dpu,
// kai-host): --config, --dry-run, --log-level, --version, signal handling
// and logging the one final error.
package daemoncli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Daemon describes one daemon's command line.
type Daemon struct {
	Name          string
	Summary       string
	DefaultConfig string
	Version       string
	// Validate loads and checks a config file (for --dry-run).
	Validate func(path string) error
	// Run runs until ctx ends.
	Run func(ctx context.Context, path string, log *slog.Logger) error
	// Flags adds the daemon's own flags.
	Flags func(fs *flag.FlagSet)
}

// Main parses args, runs the daemon and returns the exit code.
func (d Daemon) Main(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(d.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", d.DefaultConfig, "path to the "+d.Name+" YAML config")
	dryRun := fs.Bool("dry-run", false, "validate the config file and exit")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if d.Flags != nil {
		d.Flags(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: %s [flags]\n\n%s\n\nFlags:\n", d.Name, d.Summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, d.Version)
		return 0
	}
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "%s: --log-level: %v\n", d.Name, err)
		return 2
	}
	if *dryRun {
		if err := d.Validate(*cfgPath); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", d.Name, err)
			return 1
		}
		fmt.Fprintf(stdout, "%s: ok\n", *cfgPath)
		return 0
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lv}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx, *cfgPath, log); err != nil {
		log.Error(d.Name+" failed", "error", err)
		return 1
	}
	return 0
}

// Stdio runs Main with the process's arguments and streams.
func (d Daemon) Stdio() int { return d.Main(os.Args[1:], os.Stdout, os.Stderr) }
