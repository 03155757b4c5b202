package ovs

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ofctl drives OpenFlow through ovs-ofctl. All changes of one reconcile go
// in a single OpenFlow 1.5 bundle, which OVS commits atomically: a packet
// sees either the old or the new rules, never a half-applied mix. Why not
// a native OpenFlow library: see docs/openflow-client.md.
type ofctl struct {
	bin    string
	bridge string
	// target is the bridge's management socket, so the right ovs-vswitchd
	// is reached whatever OVS_RUNDIR the process has.
	target string
}

func (o ofctl) run(ctx context.Context, stdin string, args ...string) (string, error) {
	args = append([]string{"-O", "OpenFlow15", "--no-names"}, args...)
	cmd := exec.CommandContext(ctx, o.bin, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", o.bin, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

var (
	reCookie   = regexp.MustCompile(`cookie=(0x[0-9a-f]+)`)
	reTable    = regexp.MustCompile(`table=(\d+)`)
	rePackets  = regexp.MustCompile(`n_packets=(\d+)`)
	rePriority = regexp.MustCompile(`priority=(\d+)`)
)

// dumpedFlow is one line of dump-flows.
type dumpedFlow struct {
	Cookie   uint64
	Table    uint8
	Priority uint16
	Match    string
	Actions  string
	Packets  uint64
}

// dumpFlows reads back Kai's flows (selected by the cookie tag).
func (o ofctl) dumpFlows(ctx context.Context) ([]dumpedFlow, error) {
	out, err := o.run(ctx, "", "dump-flows", o.target, fmt.Sprintf("cookie=%#x/%#x", cookieTag, cookieTagMask))
	if err != nil {
		return nil, err
	}
	return parseFlows(out)
}

func parseFlows(out string) ([]dumpedFlow, error) {
	var fs []dumpedFlow
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || !strings.HasPrefix(line, "cookie=") {
			continue
		}
		head, actions, ok := strings.Cut(line, " actions=")
		if !ok {
			return nil, fmt.Errorf("unparsable flow %q", line)
		}
		f := dumpedFlow{Actions: actions}
		m := reCookie.FindStringSubmatch(head)
		if m == nil {
			return nil, fmt.Errorf("flow without cookie %q", line)
		}
		f.Cookie, _ = strconv.ParseUint(m[1], 0, 64)
		if m := reTable.FindStringSubmatch(head); m != nil {
			t, _ := strconv.ParseUint(m[1], 10, 8)
			f.Table = uint8(t)
		}
		if m := rePackets.FindStringSubmatch(head); m != nil {
			f.Packets, _ = strconv.ParseUint(m[1], 10, 64)
		}
		f.Priority = 32768
		if m := rePriority.FindStringSubmatch(head); m != nil {
			p, _ := strconv.ParseUint(m[1], 10, 16)
			f.Priority = uint16(p)
		}
		// The match is what follows the stats fields: the last
		// comma-separated run after "priority=N" (or after the stats).
		if i := strings.Index(head, "priority="); i >= 0 {
			rest := head[i:]
			if _, match, ok := strings.Cut(rest, ","); ok {
				f.Match = match
			}
		}
		fs = append(fs, f)
	}
	return fs, nil
}

// dumpedGroup is one group as read back, with normalized bucket actions.
type dumpedGroup struct {
	ID      uint32
	Type    string
	Buckets []string
}

func (o ofctl) dumpGroups(ctx context.Context) ([]dumpedGroup, error) {
	out, err := o.run(ctx, "", "dump-groups", o.target)
	if err != nil {
		return nil, err
	}
	return parseGroups(out)
}

var reBucketID = regexp.MustCompile(`^bucket_id:\d+,`)

func parseGroups(out string) ([]dumpedGroup, error) {
	var gs []dumpedGroup
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "group_id=") {
			continue
		}
		parts := strings.Split(line, ",bucket=")
		var g dumpedGroup
		for _, kv := range strings.Split(parts[0], ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "group_id":
				id, err := strconv.ParseUint(v, 0, 32)
				if err != nil {
					return nil, fmt.Errorf("unparsable group %q", line)
				}
				g.ID = uint32(id)
			case "type":
				g.Type = v
			}
		}
		for _, b := range parts[1:] {
			b = reBucketID.ReplaceAllString(b, "")
			b = strings.TrimPrefix(b, "actions=")
			g.Buckets = append(g.Buckets, normalizeActions(b))
		}
		gs = append(gs, g)
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].ID < gs[j].ID })
	return gs, nil
}

var reSetField = regexp.MustCompile(`set_field:(0x[0-9a-fA-F]+|\d+)->`)

// normalizeActions makes rendered and dumped actions comparable: OVS
// prints numeric set_field values in hex.
func normalizeActions(s string) string {
	return reSetField.ReplaceAllStringFunc(s, func(m string) string {
		v := reSetField.FindStringSubmatch(m)[1]
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			return m
		}
		return fmt.Sprintf("set_field:%d->", n)
	})
}

// bundle applies lines atomically.
func (o ofctl) bundle(ctx context.Context, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	_, err := o.run(ctx, strings.Join(lines, "\n")+"\n", "bundle", o.target, "-")
	return err
}

var reFlowCount = regexp.MustCompile(`flow_count=(\d+)`)

// countFlows returns how many of Kai's flows are programmed, cheaply: OVS
// aggregates them without printing each one.
func (o ofctl) countFlows(ctx context.Context) (int, error) {
	out, err := o.run(ctx, "", "dump-aggregate", o.target, fmt.Sprintf("cookie=%#x/%#x", cookieTag, cookieTagMask))
	if err != nil {
		return 0, err
	}
	m := reFlowCount.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("unparsable dump-aggregate output %q", strings.TrimSpace(out))
	}
	return strconv.Atoi(m[1])
}
