package ovs

import (
	"context"

	"github.com/kai-dpu/kai/offload"
)

// Verify compares what is programmed with the program rendered from s and
// returns the bundle lines Apply would send: none when OVS holds exactly s.
// It changes nothing and always reads everything back (never Apply's own
// record), so an independent checker (kai-lab chaos) can diff a running
// DPU's flows against a desired state it computed itself.
func (b *Backend) Verify(ctx context.Context, s offload.State) ([]string, error) {
	prog, err := b.render(ctx, s)
	if err != nil {
		return nil, err
	}
	rb, err := b.dump(ctx)
	if err != nil {
		return nil, err
	}
	return Diff(prog, rb.flows, rb.groups), nil
}
