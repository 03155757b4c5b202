package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/kai-dpu/kai/cmd/kai-lab/bench"
)

func cmdBench(ctx context.Context, args []string, _ io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("kai-lab bench", flag.ContinueOnError)
	var o bench.Options
	fs.BoolVar(&o.Quick, "quick", false, "10k routes and fewer samples (about 2 minutes)")
	fs.StringVar(&o.OutDir, "out", "bench/results", "where latest.json and latest.md are written")
	scen := fs.String("scenarios", strings.Join(bench.AllScenarios, ","), "comma-separated scenarios to run")
	fs.StringVar(&o.StateDir, "state-dir", "/tmp/kai-bench", "the benchmark's configs, logs and teardown records")
	fs.StringVar(&o.BinDir, "bin-dir", "", "directory with kai-dpu, kai-host, kai-cni and the CNI plugins (default: this binary's)")
	fs.StringVar(&o.Prefix, "prefix", "kbench", "namespace name prefix")
	fs.BoolVar(&o.Inner, "inner", false, "internal: the re-executed measuring process")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	o.Scenarios = strings.Split(*scen, ",")
	if o.BinDir == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		o.BinDir = filepath.Dir(self)
	}
	var err error
	if o.OutDir, err = filepath.Abs(o.OutDir); err != nil {
		return err
	}
	return bench.Run(ctx, o, log)
}
