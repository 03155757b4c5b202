package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
)

// Output formats of -o.
const (
	outputTable = "table"
	outputJSON  = "json"
)

func validateOutput(format string) error {
	switch format {
	case outputTable, outputJSON:
		return nil
	}
	return usageErrorf("--output %q: must be %s or %s", format, outputTable, outputJSON)
}

// printResponse writes m to w as JSON or, for the table format, with table.
func printResponse[M proto.Message](w io.Writer, format string, m M, table func(*tabwriter.Writer, M)) error {
	if format == outputJSON {
		return printJSON(w, m)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	table(tw, m)
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// printJSON writes m as indented protobuf JSON. protojson deliberately varies
// its whitespace between runs, so its compact form is re-indented with
// encoding/json to make the output byte-stable.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return fmt.Errorf("indent %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	buf.WriteByte('\n')
	if _, err := buf.WriteTo(w); err != nil {
		return fmt.Errorf("write json: %w", err)
	}
	return nil
}

// row writes one tab-separated table row. Empty cells print as "-" and
// tabs or newlines inside a cell are flattened so columns stay aligned.
func row(w io.Writer, cells ...string) {
	for i, c := range cells {
		c = strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return ' '
			}
			return r
		}, c)
		if c == "" {
			c = "-"
		}
		cells[i] = c
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

func list(s []string) string { return strings.Join(s, ",") }

func u32(v uint32) string { return strconv.FormatUint(uint64(v), 10) }

func u64(v uint64) string { return strconv.FormatUint(v, 10) }

// printAttachments prints one row per attachment.
func printAttachments(w *tabwriter.Writer, resp *kaiv1.ListResponse) {
	row(w, "ID", "NODE", "POD", "NETWORK", "VF", "MAC", "IPS", "REPRESENTOR", "PHASE", "REASON")
	for _, a := range resp.GetAttachments() {
		st := a.GetStatus()
		row(w, a.GetId(), a.GetNode(), podName(a.GetPod()), a.GetNetwork(), vfName(a.GetVf()),
			a.GetMac(), list(a.GetIps()), st.GetRepresentor(), phaseName(st.GetPhase()), st.GetReason())
	}
}

func podName(p *kaiv1.Pod) string {
	if p.GetNamespace() == "" {
		return p.GetName()
	}
	return p.GetNamespace() + "/" + p.GetName()
}

// vfName names a VF as pf<N>vf<M>, or <PF PCI address>/vf<M> when the PF is
// identified by its PCI address.
func vfName(vf *kaiv1.VF) string {
	if vf == nil {
		return ""
	}
	if vf.GetPfPciAddress() != "" {
		return fmt.Sprintf("%s/vf%d", vf.GetPfPciAddress(), vf.GetVfIndex())
	}
	return fmt.Sprintf("pf%dvf%d", vf.GetPfIndex(), vf.GetVfIndex())
}

// phaseName turns PHASE_READY into Ready.
func phaseName(p kaiv1.Phase) string {
	s := strings.TrimPrefix(p.String(), "PHASE_")
	if s == "" {
		return s
	}
	return s[:1] + strings.ToLower(s[1:])
}

func printNetworks(w *tabwriter.Writer, resp *kaiv1.ListNetworksResponse) {
	row(w, "NAME", "VNI", "RD", "IMPORT-RT", "EXPORT-RT", "LOCAL", "REMOTE-MACS", "FLOOD-VTEPS")
	for _, n := range resp.GetNetworks() {
		row(w, n.GetName(), u32(n.GetVni()), n.GetRouteDistinguisher(),
			list(n.GetImportRouteTargets()), list(n.GetExportRouteTargets()),
			u32(n.GetLocalAttachments()), u32(n.GetRemoteMacs()), list(n.GetFloodVteps()))
	}
}

func printRoutes(w *tabwriter.Writer, resp *kaiv1.ListRoutesResponse) {
	row(w, "NETWORK", "TYPE", "RD", "MAC", "IP", "VTEP", "VNI", "SEQ", "LOCAL", "WINNER", "SOURCE")
	for _, r := range resp.GetRoutes() {
		row(w, r.GetNetwork(), r.GetType(), r.GetRouteDistinguisher(), r.GetMac(), r.GetIp(),
			r.GetVtep(), u32(r.GetVni()), u32(r.GetSequence()),
			strconv.FormatBool(r.GetLocal()), strconv.FormatBool(r.GetWinner()), r.GetSource())
	}
}

// printFlows prints the flows, a blank line, then the groups.
func printFlows(w *tabwriter.Writer, resp *kaiv1.ListFlowsResponse) {
	row(w, "NETWORK", "TABLE", "PRIORITY", "COOKIE", "OWNER", "MATCH", "ACTIONS", "PACKETS")
	for _, f := range resp.GetFlows() {
		row(w, f.GetNetwork(), u32(f.GetTable()), u32(f.GetPriority()), fmt.Sprintf("%#x", f.GetCookie()),
			f.GetOwner(), f.GetMatch(), f.GetActions(), u64(f.GetPackets()))
	}
	// A line without tabs ends the column block, so the groups align on
	// their own.
	fmt.Fprintln(w)
	row(w, "NETWORK", "GROUP", "TYPE", "BUCKETS")
	for _, g := range resp.GetGroups() {
		row(w, g.GetNetwork(), u32(g.GetId()), g.GetType(), strings.Join(g.GetBuckets(), " | "))
	}
}

// printInfo prints the DPU's identity as key/value lines, then its peers.
func printInfo(w *tabwriter.Writer, info *kaiv1.Info) {
	row(w, "NODE:", info.GetNode())
	row(w, "BOOT-ID:", info.GetBootId())
	row(w, "ROUTER-ID:", info.GetRouterId())
	row(w, "ASN:", u32(info.GetAsn()))
	row(w, "VTEP:", info.GetVtep())
	row(w, "VERSION:", info.GetVersion())
	fmt.Fprintln(w)
	row(w, "PEER", "ASN", "STATE", "RECEIVED", "ACCEPTED")
	for _, p := range info.GetPeers() {
		row(w, p.GetAddress(), u32(p.GetAsn()), p.GetState(), u64(p.GetReceived()), u64(p.GetAccepted()))
	}
}

// The sort functions order rows deterministically: by the natural key first,
// then by every other column so that equal keys cannot shuffle.

func sortAttachments(s []*kaiv1.Attachment) {
	slices.SortStableFunc(s, func(a, b *kaiv1.Attachment) int {
		return cmp.Or(
			cmp.Compare(a.GetNode(), b.GetNode()),
			cmp.Compare(a.GetId(), b.GetId()),
			cmp.Compare(podName(a.GetPod()), podName(b.GetPod())),
			cmp.Compare(a.GetNetwork(), b.GetNetwork()),
		)
	})
}

func sortNetworks(s []*kaiv1.Network) {
	slices.SortStableFunc(s, func(a, b *kaiv1.Network) int {
		return cmp.Or(
			cmp.Compare(a.GetName(), b.GetName()),
			cmp.Compare(a.GetVni(), b.GetVni()),
		)
	})
}

func sortRoutes(s []*kaiv1.Route) {
	slices.SortStableFunc(s, func(a, b *kaiv1.Route) int {
		return cmp.Or(
			cmp.Compare(a.GetNetwork(), b.GetNetwork()),
			cmp.Compare(a.GetType(), b.GetType()),
			cmp.Compare(a.GetMac(), b.GetMac()),
			cmp.Compare(a.GetIp(), b.GetIp()),
			cmp.Compare(a.GetRouteDistinguisher(), b.GetRouteDistinguisher()),
			cmp.Compare(a.GetVtep(), b.GetVtep()),
			cmp.Compare(a.GetVni(), b.GetVni()),
			cmp.Compare(a.GetSequence(), b.GetSequence()),
			cmp.Compare(a.GetSource(), b.GetSource()),
		)
	})
}

// sortFlows orders flows as OVS evaluates them: by table, then by descending
// priority.
func sortFlows(s []*kaiv1.Flow) {
	slices.SortStableFunc(s, func(a, b *kaiv1.Flow) int {
		return cmp.Or(
			cmp.Compare(a.GetNetwork(), b.GetNetwork()),
			cmp.Compare(a.GetTable(), b.GetTable()),
			cmp.Compare(b.GetPriority(), a.GetPriority()),
			cmp.Compare(a.GetMatch(), b.GetMatch()),
			cmp.Compare(a.GetCookie(), b.GetCookie()),
			cmp.Compare(a.GetActions(), b.GetActions()),
		)
	})
}

func sortGroups(s []*kaiv1.Group) {
	slices.SortStableFunc(s, func(a, b *kaiv1.Group) int {
		return cmp.Or(
			cmp.Compare(a.GetNetwork(), b.GetNetwork()),
			cmp.Compare(a.GetId(), b.GetId()),
		)
	})
}

func sortPeers(s []*kaiv1.Peer) {
	slices.SortStableFunc(s, func(a, b *kaiv1.Peer) int {
		return cmp.Or(
			cmp.Compare(a.GetAddress(), b.GetAddress()),
			cmp.Compare(a.GetAsn(), b.GetAsn()),
		)
	})
}
