package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
)

// getOptions holds the flags of "kaictl get" and its resources.
type getOptions struct {
	root    *rootOptions
	output  string
	node    string
	network string
}

// resource is one "kaictl get" subcommand.
type resource struct {
	name    string
	aliases []string
	short   string
	long    string
	example string
	// flags adds the resource's own flags.
	flags func(cmd *cobra.Command, o *getOptions)
	// run performs the request on conn and writes the response to w.
	run func(ctx context.Context, conn *grpc.ClientConn, o *getOptions, w io.Writer) error
}

func resources() []resource {
	return []resource{
		{
			name:    "attachments",
			aliases: []string{"attachment", "att"},
			short:   "List VF attachments (Attachments.List)",
			long: `List the VF attachments kai-dpu knows about: which pod and network each
VF belongs to, its MAC and IPs, the representor it resolved to on the DPU and
whether the dataplane is programmed (PHASE, REASON).`,
			example: `  kaictl --dpu 192.0.2.10:7443 get attachments
  kaictl --dpu 192.0.2.10:7443 get attachments --node worker-1 -o json`,
			flags: func(cmd *cobra.Command, o *getOptions) {
				cmd.Flags().StringVar(&o.node, "node", "", "only attachments of this node")
			},
			run: getAttachments,
		},
		{
			name:    "networks",
			aliases: []string{"network", "net"},
			short:   "List EVPN networks (Inspect.ListNetworks)",
			long: `List the networks configured on the DPU with their VNI, route distinguisher,
route targets, number of local attachments and remote MACs, and the VTEPs
that BUM traffic is flooded to.`,
			example: `  kaictl --dpu 192.0.2.10:7443 get networks`,
			run:     getNetworks,
		},
		{
			name:    "routes",
			aliases: []string{"route"},
			short:   "List EVPN routes (Inspect.ListRoutes)",
			long: `List the EVPN routes in the DPU's RIB: MAC/IP advertisement (type-2) and
inclusive multicast (type-3) routes, local and learned. WINNER marks the
route the dataplane follows for a MAC (RFC 7432 section 15).`,
			example: `  kaictl --dpu 192.0.2.10:7443 get routes
  kaictl --dpu 192.0.2.10:7443 get routes --network blue`,
			flags: func(cmd *cobra.Command, o *getOptions) {
				cmd.Flags().StringVar(&o.network, "network", "", "only routes of this network")
			},
			run: getRoutes,
		},
		{
			name:    "flows",
			aliases: []string{"flow"},
			short:   "List OpenFlow flows and groups (Inspect.ListFlows)",
			long: `List the OpenFlow flows and groups kai-dpu programmed into OVS, with the
owner that installed each flow and its packet counter.`,
			example: `  kaictl --dpu 192.0.2.10:7443 get flows --network blue`,
			flags: func(cmd *cobra.Command, o *getOptions) {
				cmd.Flags().StringVar(&o.network, "network", "", "only flows and groups of this network")
			},
			run: getFlows,
		},
		{
			name:  "info",
			short: "Show the DPU's identity and BGP peers (Inspect.GetInfo)",
			long: `Show the node, boot id, BGP router id and ASN, VTEP address and version of
kai-dpu, and the state of its BGP peers. A changed BOOT-ID means kai-dpu
restarted.`,
			example: `  kaictl --dpu unix:///run/kai/dpu.sock get info`,
			run:     getInfo,
		},
	}
}

func resourceNames() []string {
	var names []string
	for _, r := range resources() {
		names = append(names, r.name)
	}
	return names
}

// newGetCommand builds "kaictl get" with one subcommand per resource.
func newGetCommand(root *rootOptions) *cobra.Command {
	o := &getOptions{root: root}
	names := strings.Join(resourceNames(), ", ")
	cmd := &cobra.Command{
		Use:   "get <resource>",
		Short: "Display DPU resources",
		Long: `Display one kind of DPU resource as a table or as JSON.

Resources: ` + names + `.

With -o json the response message is printed as protobuf JSON, suitable for
jq; with -o table (the default) as aligned columns. Rows are sorted.`,
		Example: `  kaictl --dpu 192.0.2.10:7443 get attachments --node worker-1
  kaictl --dpu 192.0.2.10:7443 get routes --network blue -o json
  kaictl --dpu unix:///run/kai/dpu.sock get info`,
		Args:                       cobra.ArbitraryArgs,
		SuggestionsMinimumDistance: 2,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("missing resource: one of %s", names)
			}
			msg := fmt.Sprintf("unknown resource %q: one of %s", args[0], names)
			if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
				msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, ", "))
			}
			return usageErrorf("%s", msg)
		},
	}
	cmd.PersistentFlags().StringVarP(&o.output, "output", "o", outputTable, "output format: table or json")

	for _, r := range resources() {
		cmd.AddCommand(newResourceCommand(o, r))
	}
	return cmd
}

func newResourceCommand(o *getOptions, r resource) *cobra.Command {
	cmd := &cobra.Command{
		Use:     r.name,
		Aliases: r.aliases,
		Short:   r.short,
		Long:    r.long,
		Example: r.example,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("%q takes no arguments, got %q", cmd.CommandPath(), args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateOutput(o.output); err != nil {
				return err
			}
			conn, err := o.root.connect()
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			ctx, cancel := context.WithTimeout(cmd.Context(), o.root.timeout)
			defer cancel()
			return r.run(ctx, conn, o, cmd.OutOrStdout())
		},
	}
	if r.flags != nil {
		r.flags(cmd, o)
	}
	return cmd
}

func getAttachments(ctx context.Context, conn *grpc.ClientConn, o *getOptions, w io.Writer) error {
	resp, err := kaiv1.NewAttachmentsClient(conn).List(ctx, &kaiv1.ListRequest{Node: o.node})
	if err != nil {
		return &rpcError{op: "list attachments", err: err}
	}
	sortAttachments(resp.GetAttachments())
	return printResponse(w, o.output, resp, printAttachments)
}

func getNetworks(ctx context.Context, conn *grpc.ClientConn, o *getOptions, w io.Writer) error {
	resp, err := kaiv1.NewInspectClient(conn).ListNetworks(ctx, &kaiv1.ListNetworksRequest{})
	if err != nil {
		return &rpcError{op: "list networks", err: err}
	}
	sortNetworks(resp.GetNetworks())
	return printResponse(w, o.output, resp, printNetworks)
}

func getRoutes(ctx context.Context, conn *grpc.ClientConn, o *getOptions, w io.Writer) error {
	resp, err := kaiv1.NewInspectClient(conn).ListRoutes(ctx, &kaiv1.ListRoutesRequest{Network: o.network})
	if err != nil {
		return &rpcError{op: "list routes", err: err}
	}
	sortRoutes(resp.GetRoutes())
	return printResponse(w, o.output, resp, printRoutes)
}

func getFlows(ctx context.Context, conn *grpc.ClientConn, o *getOptions, w io.Writer) error {
	resp, err := kaiv1.NewInspectClient(conn).ListFlows(ctx, &kaiv1.ListFlowsRequest{Network: o.network})
	if err != nil {
		return &rpcError{op: "list flows", err: err}
	}
	sortFlows(resp.GetFlows())
	sortGroups(resp.GetGroups())
	return printResponse(w, o.output, resp, printFlows)
}

func getInfo(ctx context.Context, conn *grpc.ClientConn, o *getOptions, w io.Writer) error {
	resp, err := kaiv1.NewInspectClient(conn).GetInfo(ctx, &kaiv1.GetInfoRequest{})
	if err != nil {
		return &rpcError{op: "get info", err: err}
	}
	sortPeers(resp.GetPeers())
	return printResponse(w, o.output, resp, printInfo)
}
