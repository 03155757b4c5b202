package lab

import (
	"context"
	"fmt"
	"time"
)

// ResetSession hard-resets a DPU's BGP session with one route reflector:
// the kernel aborts the TCP connection (ss -K sends a RST), as a crashed
// line card or a stateful firewall would, with no NOTIFICATION. The other
// reflector's session stays up.
func (l *Lab) ResetSession(server, rr string) error {
	srv := l.Server(server)
	if srv == nil {
		return fmt.Errorf("no server %q", server)
	}
	_, err := l.nl.In(srv.NS, "ss", "-K", "dst", rr)
	return err
}

// FlapUplink takes a server's underlay link down for gap and brings it back
// (on the fabric side, so the DPU sees its carrier go).
func (l *Lab) FlapUplink(server string, gap time.Duration) error {
	if l.Server(server) == nil && l.legacy(server) == nil {
		return fmt.Errorf("no server %q", server)
	}
	fab := l.nl.NS("fabric")
	if _, err := l.nl.In(fab, "ip", "link", "set", "up-"+server, "down"); err != nil {
		return err
	}
	time.Sleep(gap)
	_, err := l.nl.In(fab, "ip", "link", "set", "up-"+server, "up")
	return err
}

// Reattach detaches a pod through its CNI chain and attaches it again.
func (l *Lab) Reattach(pod string) error {
	p, ok := l.Pod(pod)
	if !ok || p.Legacy {
		return fmt.Errorf("no pod %q behind a Kai DPU", pod)
	}
	for _, op := range []string{"del", "add"} {
		if out, err := l.cniFor(context.Background(), p, op, nil); err != nil {
			return fmt.Errorf("CNI %s %s: %w: %s", op, pod, err, out)
		}
	}
	return nil
}
