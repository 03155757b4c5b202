package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]float64{50: 50, 99: 99, 100: 100, 1: 1} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%v = %v ms, want %v", p, got, want)
		}
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of nothing = %v", got)
	}
}

func TestFlowTarget(t *testing.T) {
	for line, want := range map[string][2]string{
		" cookie=0x4b00277400000001, table=20, n_packets=0, priority=100,reg0=0,reg1=0x2774,dl_dst=02:b0:00:00:00:07 actions=set_field:0x2774->tun_id,set_field:198.18.1.8->tun_dst,output:1": {"02:b0:00:00:00:07", "198.18.1.8"},
		" event=ADDED table=20 cookie=0x4b reg0=0,reg1=0x2774,dl_dst=02:b0:00:00:00:07 actions=load:0x2774->NXM_NX_TUN_ID[],load:0xc6120108->NXM_NX_TUN_IPV4_DST[],output:1":                  {"02:b0:00:00:00:07", "198.18.1.8"},
		" event=ADDED table=20 reg0=0,reg1=0x2774,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=group:10100":                                                                             {"", ""},
	} {
		if mac, vtep := flowTarget(line); mac != want[0] || vtep != want[1] {
			t.Errorf("flowTarget(%q) = %q, %q; want %q", line, mac, vtep, want)
		}
	}
}

func TestMarkdownHasEveryFigureWithItsAnchor(t *testing.T) {
	r := &Results{Mode: "quick", FRRVersion: "8.4", Convergence10k: &Convergence{Routes: 10000, RemoteVTEP: 10, KaiS: 1, FRRS: 2, OVSFloorS: 0.5, KaiPerFRR: 0.5, KaiPerFloor: 2},
		RouteToFlowMS: newLatency([]time.Duration{time.Millisecond, 3 * time.Millisecond}, 2*time.Millisecond, "one-flow bundle"),
		Restart:       &Restart{Routes: 10000, ReconcileS: 1.5, LostPackets: 0, SentPackets: 300, AnchorS: 1}}
	md := r.Markdown()
	for _, want := range []string{"FRR 8.4 2.00 s", "0.50× FRR", "OVS floor (one bundle) 0.50 s", "2.00× floor",
		"route → flow (2) p99 | 3.00 ms | one-flow bundle 2.00 ms | 1.50×", "0 of 300"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
