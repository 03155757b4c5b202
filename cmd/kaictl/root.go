package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the request failed
	exitUsage = 2 // the command line is wrong
)

const defaultTimeout = 10 * time.Second

// rootOptions holds the flags shared by every command.
type rootOptions struct {
	dpu     string
	timeout time.Duration
}

// newRootCommand builds the kaictl command tree. Output goes to stdout,
// diagnostics to stderr.
func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	o := &rootOptions{}
	cmd := &cobra.Command{
		Use:   "kaictl --dpu ADDR <command>",
		Short: "Inspect a Kai DPU",
		Long: `kaictl is the operator's read-only view of a Kai DPU.

It calls the Attachments and Inspect gRPC services of kai-dpu at the address
given with --dpu: either "host:port" or a unix socket as "unix:/path" or
"unix:///path". The connection is plain text.`,
		Example: `  # Attachments of one node
  kaictl --dpu 192.0.2.10:7443 get attachments --node worker-1

  # EVPN routes of one network, over the local socket, as JSON
  kaictl --dpu unix:///run/kai/dpu.sock get routes --network blue -o json`,
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2,
		SilenceErrors:              true,
		SilenceUsage:               true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return cmd.Help()
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%w", err)
	})
	cmd.CompletionOptions.DisableDefaultCmd = true
	// kaictl and kaictl get run only to report a missing or unknown
	// subcommand, so their usage line is their Use, not also
	// "<path> [command]".
	cmd.SetUsageTemplate(strings.Replace(cmd.UsageTemplate(),
		"{{if .HasAvailableSubCommands}}\n  {{.CommandPath}} [command]{{end}}", "", 1))

	f := cmd.PersistentFlags()
	f.StringVar(&o.dpu, "dpu", "", `kai-dpu gRPC address: "host:port", "unix:/path" or "unix:///path" (required)`)
	f.DurationVar(&o.timeout, "timeout", defaultTimeout, "deadline of each request")

	cmd.AddCommand(newGetCommand(o))
	return cmd
}

// execute runs cmd with args and returns the process exit code. Errors are
// printed to the command's stderr as "kaictl: <message>"; a usage error adds
// a hint to the relevant --help.
func execute(ctx context.Context, cmd *cobra.Command, args []string) int {
	cmd.SetArgs(args)
	failed, err := cmd.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	stderr := cmd.ErrOrStderr()
	fmt.Fprintf(stderr, "kaictl: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) {
		if failed == nil {
			failed = cmd
		}
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", failed.CommandPath())
		return exitUsage
	}
	return exitError
}

// usageError is a mistake on the command line. It exits with exitUsage.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// unknownCommand is the usage error for an unknown positional argument of a
// command that only has subcommands.
func unknownCommand(cmd *cobra.Command, arg string) error {
	msg := fmt.Sprintf("unknown command %q for %q", arg, cmd.CommandPath())
	if s := cmd.SuggestionsFor(arg); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
	}
	return usageErrorf("%s", msg)
}

// validate checks the shared flags.
func (o *rootOptions) validate() error {
	if o.dpu == "" {
		return usageErrorf("--dpu is required")
	}
	if o.timeout <= 0 {
		return usageErrorf("--timeout must be positive, got %v", o.timeout)
	}
	return nil
}

// transportCredentials returns the transport security of the connection to
// kai-dpu. Plain text for now; TLS (--ca/--cert/--key) belongs here.
func (o *rootOptions) transportCredentials() (credentials.TransportCredentials, error) {
	return insecure.NewCredentials(), nil
}

// connect validates the shared flags and creates a client connection to
// kai-dpu. The connection is established lazily by the first request.
func (o *rootOptions) connect() (*grpc.ClientConn, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	creds, err := o.transportCredentials()
	if err != nil {
		return nil, fmt.Errorf("transport credentials: %w", err)
	}
	conn, err := grpc.NewClient(o.dpu,
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("kaictl"),
	)
	if err != nil {
		return nil, usageErrorf("--dpu %q: %w", o.dpu, err)
	}
	return conn, nil
}

// rpcError is a failed gRPC call. Its message leads with the status code name
// (e.g. "Unavailable: list attachments: connection refused").
type rpcError struct {
	op  string
	err error
}

func (e *rpcError) Error() string {
	st := status.Convert(e.err)
	return fmt.Sprintf("%s: %s: %s", st.Code(), e.op, st.Message())
}

func (e *rpcError) Unwrap() error { return e.err }
