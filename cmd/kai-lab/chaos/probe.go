package chaos

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
)

// pinger sends 50 pings a second from one pod to another while an event
// runs; lost counts the sequence numbers that never got a reply.
type pinger struct {
	from, to string
	p        *lab.Pinger
}

func startPinger(from, to lab.Pod) (*pinger, error) {
	p, err := lab.StartPinger(from.NS, to.IP, 20*time.Millisecond)
	if err != nil {
		return nil, err
	}
	return &pinger{from: from.Name, to: to.Name, p: p}, nil
}

// stop ends the pings and returns how many were judged and lost. Pings
// still in flight at the end are not judged.
func (p *pinger) stop() (sent, lost int, err error) {
	time.Sleep(300 * time.Millisecond)
	sent, missing, err := p.p.Stop()
	if err != nil {
		return 0, 0, fmt.Errorf("ping %s -> %s: %w", p.from, p.to, err)
	}
	return sent, len(missing), nil
}

// flowWatch samples every DPU's Kai flows while an event runs and records
// any flow present before the event that went missing in a sample.
type flowWatch struct {
	stopc chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	deleted map[string]bool // "server cookie=0x..."
}

var cookieRe = regexp.MustCompile(`cookie=(0x4b[0-9a-f]+)`)

func cookies(srv lab.Server) (map[string]bool, error) {
	out, err := srv.Ofctl("dump-flows")
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, m := range cookieRe.FindAllStringSubmatch(strings.ToLower(out), -1) {
		set[m[1]] = true
	}
	return set, nil
}

func watchFlows(servers []lab.Server) (*flowWatch, error) {
	before := map[string]map[string]bool{}
	for _, srv := range servers {
		c, err := cookies(srv)
		if err != nil {
			return nil, err
		}
		before[srv.Name] = c
	}
	w := &flowWatch{stopc: make(chan struct{}), done: make(chan struct{}), deleted: map[string]bool{}}
	go func() {
		defer close(w.done)
		for {
			for _, srv := range servers {
				now, err := cookies(srv)
				if err != nil {
					continue // ovs-vswitchd busy: the next sample judges
				}
				for c := range before[srv.Name] {
					if !now[c] {
						w.mu.Lock()
						w.deleted[srv.Name+" cookie="+c] = true
						w.mu.Unlock()
					}
				}
			}
			select {
			case <-w.stopc:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w, nil
}

// stop ends sampling and returns the flows that went missing during the
// event although they are programmed again after it: their route survived
// (the #10298/#12391 symptom). A flow whose route really went away, by a
// withdraw elsewhere in the fabric, is not counted.
func (w *flowWatch) stop(servers []lab.Server) []string {
	close(w.stopc)
	<-w.done
	after := map[string]bool{}
	for _, srv := range servers {
		c, err := cookies(srv)
		if err != nil {
			continue
		}
		for k := range c {
			after[srv.Name+" cookie="+k] = true
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for k := range w.deleted {
		if after[k] {
			out = append(out, k)
		}
	}
	return out
}
