package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/netlab"
)

// PingResult is one pair of the ping matrix.
type PingResult struct {
	From, To string
	Want     bool // same network
	Got      bool
}

// PingMatrix pings every pod from every pod. Same-network pairs must reach
// each other, different-network pairs must not. Pairs run concurrently,
// at most 32 at a time.
func (s *State) PingMatrix(ctx context.Context) []PingResult {
	var out []PingResult
	for _, a := range s.Pods {
		for _, b := range s.Pods {
			if a.Name != b.Name {
				out = append(out, PingResult{From: a.Name, To: b.Name, Want: a.Network == b.Network})
			}
		}
	}
	byName := map[string]Pod{}
	for _, p := range s.Pods {
		byName[p.Name] = p
	}
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func(r *PingResult) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r.Got = Reach(ctx, byName[r.From], byName[r.To].IP, r.Want)
		}(&out[i])
	}
	wg.Wait()
	return out
}

// Reach pings ip from pod. When reaching is expected it retries (the first
// packet waits for ARP through the fabric); otherwise one probe with a
// short deadline decides: a leak answers within milliseconds.
func Reach(ctx context.Context, from Pod, ip string, expect bool) bool {
	tries, wait := 1, "0.3"
	if expect {
		tries, wait = 5, "1"
	}
	for range tries {
		if ctx.Err() != nil {
			return false
		}
		if _, err := netlab.Sh("ip", "netns", "exec", from.NS, "ping", "-c", "1", "-W", wait, ip); err == nil {
			return true
		}
	}
	return false
}

// FormatMatrix renders results as a table and reports whether all matched.
func FormatMatrix(pods []Pod, rs []PingResult) (string, bool) {
	ok := true
	got := map[[2]string]PingResult{}
	for _, r := range rs {
		got[[2]string{r.From, r.To}] = r
		ok = ok && r.Got == r.Want
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-10s", "from\\to")
	for _, p := range pods {
		fmt.Fprintf(&b, " %-10s", p.Name)
	}
	b.WriteString("\n")
	for _, a := range pods {
		fmt.Fprintf(&b, "%-10s", a.Name)
		for _, c := range pods {
			cell := "-"
			if r, found := got[[2]string{a.Name, c.Name}]; found {
				switch {
				case r.Got && r.Want:
					cell = "ok"
				case !r.Got && !r.Want:
					cell = "blocked"
				case r.Got:
					cell = "LEAK"
				default:
					cell = "FAIL"
				}
			}
			fmt.Fprintf(&b, " %-10s", cell)
		}
		b.WriteString("\n")
	}
	b.WriteString("ok: same network reaches; blocked: other network cannot (both expected)\n")
	return b.String(), ok
}

// icmpSeq matches echo replies only: "From ... icmp_seq=N Destination Host
// Unreachable" also carries a sequence number, and is a loss.
var icmpSeq = regexp.MustCompile(`bytes from .* icmp_seq=(\d+)`)

// PingLoss reads the output of a ping that was stopped and counts the echo
// requests without a reply among those sent before the last one answered:
// requests still in flight when ping stopped are not losses. No reply at
// all is an error.
func PingLoss(out string) (sent int, missing []int, err error) {
	seqs := map[int]bool{}
	last := 0
	for _, m := range icmpSeq.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		seqs[n] = true
		last = max(last, n)
	}
	if last == 0 {
		return 0, nil, fmt.Errorf("no ping replies: %s", out)
	}
	for n := 1; n <= last; n++ {
		if !seqs[n] {
			missing = append(missing, n)
		}
	}
	return last, missing, nil
}

// Pinger pings from a namespace at a fixed interval in the background, to
// count losses across an event (a restart, a session reset).
type Pinger struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// StartPinger starts `ping -i interval` from ns to ip.
func StartPinger(ns, ip string, interval time.Duration) (*Pinger, error) {
	p := &Pinger{}
	p.cmd = exec.Command("ip", "netns", "exec", ns, "ping", "-n", "-i", strconv.FormatFloat(interval.Seconds(), 'f', -1, 64), "-W", "1", ip)
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ping from %s to %s: %w", ns, ip, err)
	}
	return p, nil
}

// Stop ends the pings and reads them with PingLoss.
func (p *Pinger) Stop() (sent int, missing []int, err error) {
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
	return PingLoss(p.out.String())
}
