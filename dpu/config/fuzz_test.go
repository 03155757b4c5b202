package config

import "testing"

// FuzzParse: any input either fails with an error or yields a config that
// validates again (Parse never panics, and its output is self-consistent).
func FuzzParse(f *testing.F) {
	f.Add([]byte(`node: a
api: {listen: "unix:/x"}
bgp: {asn: 65000, routerID: 198.18.0.11}
vtep: {address: 198.18.0.11}
networks: [{name: blue, vni: 10100}]
`))
	f.Add([]byte(`networks: [{name: a, vni: 1, rd: "198.18.0.11:01"}]`))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
	})
}
