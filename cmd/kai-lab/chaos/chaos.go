// Package chaos runs random faults against a lab with two route
// reflectors and checks, after every one, that the lab converges back to
// exactly its desired state: programmed flows equal the state computed from
// each DPU's RIB and attachments, no remote MAC is missing, every attachment
// is Ready, and the ping matrix holds. While only one of a DPU's two
// redundant sessions is reset (the FRR #10298/#12391 case) it also requires
// zero packet loss and zero flow deletions. The same seed gives the same
// event sequence.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kai-dpu/kai/cmd/kai-lab/lab"
)

// Options for Run.
type Options struct {
	Seed   uint64
	Events int
	// Lab is the lab to bring up; Run sets two reflectors, spare VFs and
	// a short duplicate-MAC window.
	Lab lab.Options
	// Settle bounds the wait for convergence after each event.
	Settle time.Duration
	// Keep leaves the lab up at the end (for inspection).
	Keep bool
	Out  io.Writer
	Log  *slog.Logger
}

// Event kinds, with their weights in the random choice.
var kinds = []struct {
	name   string
	weight int
}{
	{"reset-session", 4}, {"link-flap", 2}, {"flap-during-install", 1}, {"restart-dpu", 1},
	{"restart-host", 1}, {"restart-vswitchd", 1}, {"churn", 2}, {"move", 2},
}

// Summary is what a run found.
type Summary struct {
	Seed        uint64         `json:"seed"`
	Events      int            `json:"events"`
	Kinds       map[string]int `json:"kinds"`
	ConvergeP50 time.Duration  `json:"convergeP50"`
	ConvergeP99 time.Duration  `json:"convergeP99"`
	ConvergeMax time.Duration  `json:"convergeMax"`
	// Mismatches are the events after which the lab did not converge to
	// its desired state, or lost packets or flows where none may go.
	Mismatches []string `json:"mismatches"`
	// Pings sent across single-session resets and how many were lost.
	ResetPings, ResetLost int
	// Pings across kai-dpu restarts (informational: the restart test in
	// make test requires zero).
	RestartPings, RestartLost int
	Took                      time.Duration
}

// Run brings up a lab, runs the events and tears the lab down. Its error
// is about the run itself; what the events found is in the Summary.
func Run(ctx context.Context, o Options) (sum Summary, err error) {
	if o.Events < 1 {
		return sum, errors.New("--events must be at least 1")
	}
	if o.Settle == 0 {
		o.Settle = 30 * time.Second
	}
	o.Lab.Reflectors = 2
	o.Lab.SpareVFs = max(o.Lab.SpareVFs, 2)
	o.Lab.DuplicateSeconds = 1
	start := time.Now()
	l, err := lab.Up(ctx, o.Lab)
	if err != nil {
		return sum, err
	}
	defer func() {
		if !o.Keep {
			err = errors.Join(err, l.Down())
		}
	}()
	c, err := newChecker(ctx, l, o.Log)
	if err != nil {
		return sum, err
	}
	defer c.close()
	r := &runner{o: o, lab: l, check: c, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x4b41492d6c6162))}
	sum = Summary{Seed: o.Seed, Events: o.Events, Kinds: map[string]int{}}
	if _, err := r.converge(ctx); err != nil {
		return sum, fmt.Errorf("the lab did not converge before any event: %w", err)
	}
	var conv []time.Duration
	for i := range o.Events {
		if ctx.Err() != nil {
			return sum, ctx.Err()
		}
		ev := r.next()
		sum.Kinds[ev.kind]++
		fmt.Fprintf(o.Out, "event %d/%d: %s\n", i+1, o.Events, ev)
		res := r.run(ctx, ev)
		conv = append(conv, res.converged)
		switch ev.kind {
		case "reset-session":
			sum.ResetPings += res.sent
			sum.ResetLost += res.lost
		case "restart-dpu":
			sum.RestartPings += res.sent
			sum.RestartLost += res.lost
		}
		for _, p := range res.problems {
			msg := fmt.Sprintf("event %d (%s): %s", i+1, ev, p)
			sum.Mismatches = append(sum.Mismatches, msg)
			fmt.Fprintf(o.Out, "  MISMATCH: %s\n", p)
		}
		fmt.Fprintf(o.Out, "  converged in %s%s\n", res.converged.Round(time.Millisecond), res.note)
	}
	sort.Slice(conv, func(i, j int) bool { return conv[i] < conv[j] })
	sum.ConvergeP50 = conv[len(conv)/2]
	sum.ConvergeP99 = conv[min(len(conv)-1, len(conv)*99/100)]
	sum.ConvergeMax = conv[len(conv)-1]
	sum.Took = time.Since(start)
	return sum, nil
}

// Format renders a summary for people.
func (s Summary) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos summary: seed %d, %d events in %s\n", s.Seed, s.Events, s.Took.Round(time.Second))
	var ks []string
	for k := range s.Kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(&b, "  %-20s %d\n", k, s.Kinds[k])
	}
	fmt.Fprintf(&b, "convergence after an event: p50 %s, p99 %s, max %s\n",
		s.ConvergeP50.Round(time.Millisecond), s.ConvergeP99.Round(time.Millisecond), s.ConvergeMax.Round(time.Millisecond))
	fmt.Fprintf(&b, "single-session resets: %d pings, %d lost\n", s.ResetPings, s.ResetLost)
	fmt.Fprintf(&b, "kai-dpu restarts: %d pings, %d lost\n", s.RestartPings, s.RestartLost)
	fmt.Fprintf(&b, "mismatches: %d\n", len(s.Mismatches))
	for _, m := range s.Mismatches {
		fmt.Fprintf(&b, "  %s\n", m)
	}
	return b.String()
}

type event struct {
	kind   string
	server string
	other  string // flap-during-install: the server whose uplink flaps
	rr     string
	gaps   []time.Duration
	pod    string
	to     string
}

func (e event) String() string {
	switch e.kind {
	case "reset-session":
		return fmt.Sprintf("reset-session %s <-> %s", e.server, e.rr)
	case "link-flap":
		return fmt.Sprintf("link-flap %s (down %s)", e.server, e.gaps[0])
	case "flap-during-install":
		return fmt.Sprintf("flap-during-install: restart ovs-vswitchd on %s, flap %s %dx (%v)", e.server, e.other, len(e.gaps), e.gaps)
	case "churn":
		return fmt.Sprintf("churn: CNI DEL + ADD of %s", e.pod)
	case "move":
		return fmt.Sprintf("move %s -> %s", e.pod, e.to)
	default:
		return e.kind + " " + e.server
	}
}

type runner struct {
	o     Options
	lab   *lab.Lab
	check *checker
	rng   *rand.Rand
}

// next draws the next event. The draws depend only on the seed and the
// lab's record (which only earlier events change), never on timing.
func (r *runner) next() event {
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	n := r.rng.IntN(total)
	kind := kinds[0].name
	for _, k := range kinds {
		if n < k.weight {
			kind = k.name
			break
		}
		n -= k.weight
	}
	servers := r.lab.Servers
	srv := servers[r.rng.IntN(len(servers))].Name
	gap := func() time.Duration { return time.Duration(r.rng.IntN(51)) * time.Millisecond }
	ev := event{kind: kind, server: srv}
	switch kind {
	case "reset-session":
		ev.rr = r.lab.RRs[r.rng.IntN(len(r.lab.RRs))]
	case "link-flap":
		ev.gaps = []time.Duration{gap()}
	case "flap-during-install":
		ev.other = servers[r.rng.IntN(len(servers))].Name
		for range 5 {
			ev.gaps = append(ev.gaps, gap())
		}
	case "churn":
		var kai []string
		for _, p := range r.lab.Pods {
			if !p.Legacy {
				kai = append(kai, p.Name)
			}
		}
		ev.pod = kai[r.rng.IntN(len(kai))]
	case "move":
		p := r.lab.Pods[r.rng.IntN(len(r.lab.Pods))]
		var targets []string
		for _, s := range servers {
			if _, free := r.lab.FreeVF(s.Name); free && s.Name != p.Server {
				targets = append(targets, s.Name)
			}
		}
		for _, lg := range r.lab.Legacy {
			if lg.Name != p.Server {
				targets = append(targets, lg.Name)
			}
		}
		if len(targets) == 0 {
			return event{kind: "restart-vswitchd", server: srv}
		}
		ev.pod, ev.to = p.Name, targets[r.rng.IntN(len(targets))]
	}
	return ev
}

type result struct {
	converged  time.Duration
	sent, lost int
	problems   []string
	note       string
}

func (r *runner) run(ctx context.Context, ev event) result {
	var res result
	var probe *pinger
	var watch *flowWatch
	if ev.kind == "reset-session" || ev.kind == "restart-dpu" {
		from, to, ok := r.probePair(ev.server)
		if ok {
			var err error
			if probe, err = startPinger(from, to); err != nil {
				res.problems = append(res.problems, err.Error())
			}
			res.note = fmt.Sprintf(" (probe %s -> %s)", from.Name, to.Name)
		}
	}
	if ev.kind == "reset-session" {
		var err error
		if watch, err = watchFlows(r.lab.Servers); err != nil {
			res.problems = append(res.problems, err.Error())
		}
		// Let the probe get going before the fault.
		time.Sleep(200 * time.Millisecond)
	}
	if err := r.fault(ctx, ev); err != nil {
		res.problems = append(res.problems, "fault: "+err.Error())
	}
	var err error
	res.converged, err = r.converge(ctx)
	if err != nil {
		res.problems = append(res.problems, err.Error())
	}
	if watch != nil {
		if del := watch.stop(r.lab.Servers); len(del) > 0 {
			slices.Sort(del)
			res.problems = append(res.problems, fmt.Sprintf("%d flows deleted and reinstalled while the other reflector still carried their routes: %s", len(del), strings.Join(del, ", ")))
		}
	}
	if probe != nil {
		var err error
		if res.sent, res.lost, err = probe.stop(); err != nil {
			res.problems = append(res.problems, err.Error())
		}
		res.note += fmt.Sprintf(", %d/%d pings lost", res.lost, res.sent)
		if ev.kind == "reset-session" && res.lost > 0 {
			res.problems = append(res.problems, fmt.Sprintf("%d of %d pings lost while only one of two sessions flapped", res.lost, res.sent))
		}
	}
	return res
}

// probePair picks a Kai pod on server and a same-network pod elsewhere.
func (r *runner) probePair(server string) (lab.Pod, lab.Pod, bool) {
	for _, a := range r.lab.Pods {
		if a.Server != server || a.Legacy {
			continue
		}
		for _, b := range r.lab.Pods {
			if b.Server != server && b.Network == a.Network {
				return a, b, true
			}
		}
	}
	return lab.Pod{}, lab.Pod{}, false
}

func (r *runner) fault(ctx context.Context, ev event) error {
	switch ev.kind {
	case "reset-session":
		return r.lab.ResetSession(ev.server, ev.rr)
	case "link-flap":
		return r.lab.FlapUplink(ev.server, ev.gaps[0])
	case "flap-during-install":
		var wg sync.WaitGroup
		var flapErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, g := range ev.gaps {
				if err := r.lab.FlapUplink(ev.other, g); err != nil {
					flapErr = err
					return
				}
				time.Sleep(g)
			}
		}()
		err := r.lab.RestartVswitchd(ev.server)
		wg.Wait()
		return errors.Join(err, flapErr)
	case "restart-dpu":
		return r.lab.RestartDPU(ctx, ev.server)
	case "restart-host":
		return r.lab.RestartHost(ctx, ev.server, true, true)
	case "restart-vswitchd":
		return r.lab.RestartVswitchd(ev.server)
	case "churn":
		return r.lab.Reattach(ev.pod)
	case "move":
		_, err := r.lab.Move(ctx, ev.pod, ev.to)
		return err
	}
	return fmt.Errorf("unknown event %q", ev.kind)
}

// converge waits until every check passes and returns how long that took;
// past Settle it returns the last problem.
func (r *runner) converge(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	deadline := start.Add(r.o.Settle)
	for {
		err := r.check.control(ctx)
		if err == nil {
			err = pings(ctx, r.lab.State)
		}
		if err == nil {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return time.Since(start), fmt.Errorf("not converged after %s: %w", r.o.Settle, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
