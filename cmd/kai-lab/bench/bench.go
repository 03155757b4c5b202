// Package bench is `kai-lab bench`: it measures kai-dpu against real OVS,
// FRR and GoBGP in network namespaces and writes each figure next to an
// anchor measured in the same run (see docs/benchmarks.md).
//
// The driver re-executes itself inside a namespace of its own (PREFIX-fab)
// because its route injector is an in-process GoBGP speaker, and a Go
// process cannot move all its threads into another namespace. The outer
// process only creates that namespace, forwards SIGINT and, whatever
// happens to the inner one, tears down everything recorded.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

// Scenarios, in the order they run.
const (
	ScenarioConvergence = "convergence"
	ScenarioRoute       = "route"
	ScenarioChurn       = "churn"
	ScenarioRestart     = "restart"
	ScenarioAttach      = "attach"
)

// AllScenarios is the default selection. Memory (RSS) is sampled during
// the convergence runs.
var AllScenarios = []string{ScenarioConvergence, ScenarioRoute, ScenarioChurn, ScenarioRestart, ScenarioAttach}

// Options for Run.
type Options struct {
	Quick     bool
	OutDir    string
	Scenarios []string
	StateDir  string
	BinDir    string
	Prefix    string
	// Inner is set in the re-executed process inside the namespace.
	Inner bool
}

func (o Options) has(s string) bool { return slices.Contains(o.Scenarios, s) }

// args are the flags that re-create o in the inner process.
func (o Options) args() []string {
	a := []string{"bench", "--inner", "--out", o.OutDir, "--state-dir", o.StateDir, "--bin-dir", o.BinDir,
		"--prefix", o.Prefix, "--scenarios", strings.Join(o.Scenarios, ",")}
	if o.Quick {
		a = append(a, "--quick")
	}
	return a
}

const (
	outerRecord = "outer.json"
	innerRecord = "inner.json"
	labDir      = "lab"
)

// Run runs the benchmark (outer process) or its measurements (inner).
func Run(ctx context.Context, o Options, log *slog.Logger) error {
	for _, s := range o.Scenarios {
		if !slices.Contains(AllScenarios, s) {
			return fmt.Errorf("unknown scenario %q (want some of %s)", s, strings.Join(AllScenarios, ","))
		}
	}
	if o.Inner {
		return runInner(ctx, o, log)
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces, OVS, FRR)")
	}
	for _, bin := range []string{"kai-dpu", "kai-lab", "kai-host", "kai-cni", "host-device", "static"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, bin)); err != nil {
			return fmt.Errorf("%s missing in %s (run `make build`): %w", bin, o.BinDir, err)
		}
	}
	// A run killed before its teardown left a record: finish that first.
	if err := cleanup(o.StateDir); err != nil {
		return err
	}
	// Databases, logs and sockets of an earlier run would be reused.
	if err := os.RemoveAll(o.StateDir); err != nil {
		return err
	}
	if err := os.MkdirAll(o.StateDir, 0o755); err != nil {
		return err
	}
	// zebra drops to the frr user, which must traverse the state dir.
	if err := os.Chmod(o.StateDir, 0o755); err != nil {
		return err
	}
	nl, err := netlab.New(o.Prefix, o.StateDir)
	if err != nil {
		return err
	}
	nl.OnChange = func(r netlab.Record) { _ = writeJSON(filepath.Join(o.StateDir, outerRecord), r) }
	defer func() {
		if err := cleanup(o.StateDir); err != nil {
			log.Error("bench teardown", "error", err)
		}
	}()
	fab, err := nl.AddNS("fab")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", fab, self}, o.args()...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	// Own process group: SIGINT is forwarded once, so the inner process
	// tears down in order instead of racing the outer one.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start inner benchmark: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("benchmark: %w", err)
		}
		return nil
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		return ctx.Err()
	}
}

// cleanup tears down what earlier runs recorded: the inner run's
// processes and namespaces, the attach lab, then the outer namespace.
func cleanup(dir string) error {
	var errs []error
	for _, name := range []string{innerRecord, outerRecord} {
		var r netlab.Record
		data, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err == nil {
			err = netlab.Teardown(r)
		}
		if err == nil {
			err = os.Remove(filepath.Join(dir, name))
		}
		errs = append(errs, err)
	}
	if err := lab.Down(filepath.Join(dir, labDir)); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// runInner runs the selected scenarios inside the outer namespace and
// writes the results.
func runInner(ctx context.Context, o Options, log *slog.Logger) error {
	start := time.Now()
	res := &Results{Mode: "full", Started: start.UTC().Format(time.RFC3339), CPUs: cpus(), FRRVersion: frrVersion()}
	if o.Quick {
		res.Mode = "quick"
	}
	nl, err := netlab.New(o.Prefix, o.StateDir)
	if err != nil {
		return err
	}
	nl.OnChange = func(r netlab.Record) { _ = writeJSON(filepath.Join(o.StateDir, innerRecord), r) }
	defer func() {
		if err := nl.Close(); err != nil {
			log.Error("bench teardown", "error", err)
		}
	}()
	var runErr error
	if o.has(ScenarioConvergence) || o.has(ScenarioRoute) || o.has(ScenarioChurn) || o.has(ScenarioRestart) {
		runErr = runBGPScenarios(ctx, nl, o, res, log)
	}
	if runErr == nil && o.has(ScenarioAttach) && ctx.Err() == nil {
		runErr = runAttach(ctx, o, res, log)
	}
	if runErr != nil {
		res.Notes = append(res.Notes, "run failed: "+runErr.Error())
	}
	res.WallSeconds = round(time.Since(start).Seconds(), 1)
	if err := res.Write(o.OutDir); err != nil {
		return errors.Join(runErr, err)
	}
	log.Info("benchmark done", "wall", time.Since(start).Round(time.Second), "out", o.OutDir)
	return runErr
}
