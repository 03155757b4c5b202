package evpn

import "net/netip"

// Candidate is one VTEP's claim on a MAC within a MAC-VRF.
type Candidate struct {
	VTEP   netip.Addr
	Seq    uint32
	Sticky bool
	Local  bool
}

// Better reports whether a beats b under RFC 7432 section 15: a sticky
// (static) MAC beats a movable one, a higher sequence wins (compared with
// serial-number arithmetic so the sequence may wrap), and on a tie the
// lowest VTEP address wins.
func Better(a, b Candidate) bool {
	if a.Sticky != b.Sticky {
		return a.Sticky
	}
	if a.Seq != b.Seq {
		return seqAfter(a.Seq, b.Seq)
	}
	return a.VTEP.Less(b.VTEP)
}

// Winner returns the index of the winning candidate, or -1 for none.
func Winner(cands []Candidate) int {
	best := -1
	for i, c := range cands {
		if best < 0 || Better(c, cands[best]) {
			best = i
		}
	}
	return best
}

// NextSeq is the sequence to originate for a MAC learned locally while
// others advertise it: one above the highest seen (RFC 7432 section 15.1).
// A MAC nobody else advertises starts at 0 (no MAC mobility community).
func NextSeq(others []Candidate) uint32 {
	if len(others) == 0 {
		return 0
	}
	hi := others[0].Seq
	for _, c := range others[1:] {
		if seqAfter(c.Seq, hi) {
			hi = c.Seq
		}
	}
	return hi + 1
}

// seqAfter compares sequence numbers with RFC 1982 serial arithmetic so a
// MAC that moved 2^32 times still converges.
func seqAfter(a, b uint32) bool {
	return a != b && int32(a-b) > 0
}
