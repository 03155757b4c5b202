package bench

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Results is bench/results/latest.json. Every figure has its anchor,
// measured in the same run, and the ratio figure/anchor.
type Results struct {
	Mode        string  `json:"mode"`
	Started     string  `json:"started"`
	CPUs        int     `json:"cpus"`
	WallSeconds float64 `json:"wall_s"`
	// FRRVersion is what the FRR anchor ran (bgpd --version).
	FRRVersion string `json:"frr_version"`

	Convergence10k  *Convergence `json:"convergence_10k,omitempty"`
	Convergence100k *Convergence `json:"convergence_100k,omitempty"`
	AttachMS        *Latency     `json:"attach_ms,omitempty"`
	// AttachConcurrentMS is the same path with attaches in parallel.
	AttachConcurrentMS *Latency `json:"attach_concurrent_ms,omitempty"`
	RouteToFlowMS      *Latency `json:"route_to_flow_ms,omitempty"`
	RSS                []RSS    `json:"rss,omitempty"`
	// RSSBytesPerRoute is (RSS at the largest route count - RSS at 0) / routes.
	RSSBytesPerRoute float64 `json:"rss_bytes_per_route,omitempty"`
	// RSSAnchorBytesPerRoute is what a bare GoBGP speaker (the injector)
	// holds per route: the floor any GoBGP-based VTEP pays.
	RSSAnchorBytesPerRoute float64  `json:"rss_anchor_bytes_per_route,omitempty"`
	Churn                  *Churn   `json:"churn,omitempty"`
	Restart                *Restart `json:"restart,omitempty"`
	Notes                  []string `json:"notes,omitempty"`
}

// Convergence of N type-2 routes (and K type-3) after the session comes up.
type Convergence struct {
	Routes     int     `json:"routes"`
	RemoteVTEP int     `json:"remote_vteps"`
	KaiS       float64 `json:"kai_s"`
	FRRS       float64 `json:"frr_s"`
	// FRRTimedOut: FRR had not installed all MACs when the bench gave up;
	// frr_s is then a lower bound.
	FRRTimedOut bool `json:"frr_timed_out,omitempty"`
	// KaiBGPReceivedS is when kai-dpu's GoBGP had received every route:
	// the share of kai_s the injector and BGP itself take.
	KaiBGPReceivedS float64 `json:"kai_bgp_received_s"`
	OVSFloorS       float64 `json:"ovs_floor_s"`
	KaiPerFRR       float64 `json:"kai_per_frr"`
	KaiPerFloor     float64 `json:"kai_per_floor"`
}

// Latency percentiles in milliseconds, with the anchor.
type Latency struct {
	Samples  int     `json:"samples"`
	P50      float64 `json:"p50"`
	P99      float64 `json:"p99"`
	Max      float64 `json:"max"`
	AnchorMS float64 `json:"anchor_ms"`
	Anchor   string  `json:"anchor"`
	P99Ratio float64 `json:"p99_per_anchor"`
	// Extra phase of the same samples (attach: when CNI ADD returned).
	ReturnedP50 float64 `json:"cni_returned_p50,omitempty"`
	ReturnedP99 float64 `json:"cni_returned_p99,omitempty"`
}

// RSS of kai-dpu holding Routes remote routes.
type RSS struct {
	Routes int   `json:"routes"`
	Bytes  int64 `json:"bytes"`
}

// Churn is route updates at a fixed rate.
type Churn struct {
	RatePerS   int     `json:"rate_per_s"`
	Seconds    float64 `json:"seconds"`
	Routes     int     `json:"routes_held"`
	Updates    int     `json:"updates"`
	Observed   int     `json:"observed"`
	LagP50MS   float64 `json:"lag_p50_ms"`
	LagP99MS   float64 `json:"lag_p99_ms"`
	CPUPercent float64 `json:"kai_dpu_cpu_percent"`
	// AnchorCPUPercent is the injector's (a bare GoBGP sending the updates).
	AnchorCPUPercent float64 `json:"anchor_cpu_percent"`
}

// Restart of kai-dpu holding Routes routes.
type Restart struct {
	Routes     int     `json:"routes"`
	ReconcileS float64 `json:"reconcile_s"`
	// EstablishedS is when the BGP session was back up (from the stop).
	EstablishedS float64 `json:"bgp_established_s"`
	LostPackets  int     `json:"lost_packets"`
	// LostAtS is when each lost request was sent, from the SIGTERM.
	LostAtS     []float64 `json:"lost_at_s,omitempty"`
	SentPackets int       `json:"sent_packets"`
	// AnchorS is a cold start with the same routes (convergence kai_s).
	AnchorS float64 `json:"anchor_s"`
}

// percentile of ds (nearest rank), in milliseconds.
func percentile(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	i = min(max(i, 0), len(s)-1)
	return ms(s[i])
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round(a/b, 2)
}

func newLatency(samples []time.Duration, anchor time.Duration, what string) *Latency {
	l := &Latency{Samples: len(samples), P50: percentile(samples, 50), P99: percentile(samples, 99),
		Max: percentile(samples, 100), AnchorMS: ms(anchor), Anchor: what}
	l.P99Ratio = ratio(l.P99, l.AnchorMS)
	return l
}

func cpus() int { return runtime.NumCPU() }

// Write writes latest.json and latest.md into dir.
func (r *Results) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "latest.json"), r); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "latest.md"), []byte(r.Markdown()), 0o644)
}

// Markdown renders the results as a table: figure, anchor, ratio, target.
func (r *Results) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# kai-lab bench (%s) — %s, %d CPUs, %.0f s\n\n", r.Mode, r.Started, r.CPUs, r.WallSeconds)
	b.WriteString("| figure | value | anchor (same run) | ratio | target |\n|---|---|---|---|---|\n")
	row := func(fig, val, anchor, rat, target string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", fig, val, anchor, rat, target)
	}
	for _, c := range []*Convergence{r.Convergence10k, r.Convergence100k} {
		if c == nil {
			continue
		}
		frr := fmt.Sprintf("FRR %s %.2f s", r.FRRVersion, c.FRRS)
		if c.FRRTimedOut {
			frr = fmt.Sprintf("FRR %s > %.0f s (gave up)", r.FRRVersion, c.FRRS)
		}
		name := fmt.Sprintf("convergence %d type-2 + %d type-3", c.Routes, c.RemoteVTEP)
		row(name, fmt.Sprintf("%.2f s", c.KaiS), frr, fmt.Sprintf("%.2f× FRR", c.KaiPerFRR), "≤ 0.5× FRR")
		row(name, fmt.Sprintf("%.2f s", c.KaiS), fmt.Sprintf("OVS floor (one bundle) %.2f s", c.OVSFloorS),
			fmt.Sprintf("%.2f× floor", c.KaiPerFloor), "≤ 3× floor")
		row(name+": kai-dpu's GoBGP has received every route", fmt.Sprintf("%.2f s", c.KaiBGPReceivedS), "", "", "")
	}
	lat := func(name string, l *Latency, target string) {
		if l == nil {
			return
		}
		row(name+" p50", fmt.Sprintf("%.2f ms", l.P50), fmt.Sprintf("%s %.2f ms", l.Anchor, l.AnchorMS), fmt.Sprintf("%.2f×", ratio(l.P50, l.AnchorMS)), "")
		row(name+" p99", fmt.Sprintf("%.2f ms", l.P99), fmt.Sprintf("%s %.2f ms", l.Anchor, l.AnchorMS), fmt.Sprintf("%.2f×", l.P99Ratio), target)
	}
	lat(fmt.Sprintf("attach, sequential (%d)", sampleCount(r.AttachMS)), r.AttachMS, "≤ 20 ms")
	lat(fmt.Sprintf("attach, concurrent (%d)", sampleCount(r.AttachConcurrentMS)), r.AttachConcurrentMS, "")
	lat(fmt.Sprintf("route → flow (%d)", sampleCount(r.RouteToFlowMS)), r.RouteToFlowMS, "≤ 5 ms")
	for _, m := range r.RSS {
		row(fmt.Sprintf("kai-dpu RSS at %d routes", m.Routes), fmt.Sprintf("%.1f MiB", float64(m.Bytes)/(1<<20)), "", "", "")
	}
	if r.RSSBytesPerRoute > 0 {
		row("RSS per remote route", fmt.Sprintf("%.0f B", r.RSSBytesPerRoute),
			fmt.Sprintf("bare GoBGP heap %.0f B/route", r.RSSAnchorBytesPerRoute),
			fmt.Sprintf("%.2f×", ratio(r.RSSBytesPerRoute, r.RSSAnchorBytesPerRoute)), "≤ 2048 B")
	}
	if c := r.Churn; c != nil {
		row(fmt.Sprintf("churn %d updates/s for %.0f s over %d routes: flow lag p99", c.RatePerS, c.Seconds, c.Routes),
			fmt.Sprintf("%.2f ms (p50 %.2f, %d/%d seen)", c.LagP99MS, c.LagP50MS, c.Observed, c.Updates), "", "", "")
		row("churn: kai-dpu CPU", fmt.Sprintf("%.0f %% of a core", c.CPUPercent),
			fmt.Sprintf("injector (GoBGP) %.0f %%", c.AnchorCPUPercent), fmt.Sprintf("%.2f×", ratio(c.CPUPercent, c.AnchorCPUPercent)), "")
	}
	if rs := r.Restart; rs != nil {
		row(fmt.Sprintf("restart holding %d routes: fully reconciled", rs.Routes), fmt.Sprintf("%.2f s (BGP up again at %.2f s)", rs.ReconcileS, rs.EstablishedS),
			fmt.Sprintf("cold convergence %.2f s", rs.AnchorS), fmt.Sprintf("%.2f×", ratio(rs.ReconcileS, rs.AnchorS)), "")
		lost := fmt.Sprintf("%d of %d", rs.LostPackets, rs.SentPackets)
		if len(rs.LostAtS) > 0 {
			lost += fmt.Sprintf(" (sent at %v s after the SIGTERM)", rs.LostAtS)
		}
		row("restart: packets lost on a running flow", lost, "", "", "0")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\n- %s", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	return b.String()
}

func sampleCount(l *Latency) int {
	if l == nil {
		return 0
	}
	return l.Samples
}
