package lab

import "testing"

func TestPingLossIgnoresTheTailInFlight(t *testing.T) {
	out := "64 bytes from 100.64.2.1: icmp_seq=1 ttl=64 time=1 ms\n" +
		"64 bytes from 100.64.2.1: icmp_seq=2 ttl=64 time=1 ms\n" +
		"64 bytes from 100.64.2.1: icmp_seq=4 ttl=64 time=1 ms\n" +
		"--- 100.64.2.1 ping statistics ---\n6 packets transmitted, 3 received, 50% packet loss\n"
	sent, missing, err := PingLoss(out)
	if err != nil || sent != 4 || len(missing) != 1 || missing[0] != 3 {
		t.Fatalf("PingLoss = %d sent, missing %v, %v; want 4 sent, seq 3 missing", sent, missing, err)
	}
	if _, _, err := PingLoss("no replies"); err == nil {
		t.Fatal("PingLoss without replies must fail")
	}
}

// An ICMP error carries the request's sequence number too; it is a loss.
func TestPingLossCountsUnreachableAsLost(t *testing.T) {
	out := "64 bytes from 100.64.2.1: icmp_seq=1 ttl=64 time=1 ms\n" +
		"From 100.64.1.1 icmp_seq=2 Destination Host Unreachable\n" +
		"64 bytes from 100.64.2.1: icmp_seq=3 ttl=64 time=1 ms\n"
	sent, missing, err := PingLoss(out)
	if err != nil || sent != 3 || len(missing) != 1 || missing[0] != 2 {
		t.Fatalf("PingLoss = %d sent, missing %v, %v; want 3 sent, seq 2 missing", sent, missing, err)
	}
}
