package ovs

import "testing"

// FuzzParseDumps: the ovs-ofctl output parsers never panic, and whatever
// they accept renders back to a group whose buckets normalize stably.
func FuzzParseDumps(f *testing.F) {
	f.Add(" cookie=0x4b00277400000001, priority=100,arp,in_port=10 actions=drop\n")
	f.Add("OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n group_id=10100,type=all,bucket=bucket_id:0,actions=set_field:0x2774->tun_id,output:1\n")
	f.Add(" group_id=,bucket=")
	f.Fuzz(func(t *testing.T, out string) {
		_, _ = parseFlows(out)
		gs, err := parseGroups(out)
		if err != nil {
			return
		}
		for _, g := range gs {
			for _, b := range g.Buckets {
				if n := normalizeActions(b); normalizeActions(n) != n {
					t.Fatalf("normalizeActions is not idempotent on %q", b)
				}
			}
		}
	})
}
