package ovs

import (
	"context"
	"fmt"

	"github.com/kai-dpu/kai/offload"
)

// Verify compares what is programmed with the program rendered from s and
// returns the bundle lines Apply would send: none when OVS holds exactly s.
// It changes nothing, so an independent checker (kai-lab chaos) can diff
// a running DPU's flows against a desired state it computed itself.
func (b *Backend) Verify(ctx context.Context, s offload.State) ([]string, error) {
	names := []string{vxlanPortName}
	for _, n := range s.Networks {
		for _, p := range n.Ports {
			names = append(names, p.Name)
		}
	}
	ports, err := b.db.ofports(ctx, names)
	if err != nil {
		return nil, err
	}
	prog, err := Render(s, ports, vxlanPortName)
	if err != nil {
		return nil, err
	}
	flows, err := b.of.dumpFlows(ctx)
	if err != nil {
		return nil, fmt.Errorf("read back flows: %w", err)
	}
	groups, err := b.of.dumpGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("read back groups: %w", err)
	}
	return Diff(prog, flows, groups), nil
}
