package devicepool

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// selector is one selector object: a device matches when it satisfies every
// non-empty field.
type selector struct {
	vendors, devices, drivers, pciAddresses []string
	pfNames, rootDevices                    []indexed
}

// indexed is a pfNames or rootDevices entry: "p0" (every VF of p0) or
// "p0#0-3,7" (VFs 0..3 and 7). raw keeps the operator's spelling for
// messages.
type indexed struct {
	raw, name string
	ranges    [][2]uint32 // inclusive; empty means every VF
}

// Selector keys, spelled as the device plugin documents them.
const (
	keyVendors      = "vendors"
	keyDevices      = "devices"
	keyDrivers      = "drivers"
	keyPCIAddresses = "pciAddresses"
	keyPFNames      = "pfNames"
	keyRootDevices  = "rootDevices"
)

var supportedKeys = []string{keyVendors, keyDevices, keyDrivers, keyPCIAddresses, keyPFNames, keyRootDevices}

// nonFiltering keys change what the plugin mounts into the pod, not which
// devices are in the pool.
var nonFiltering = []string{"needVhostNet"}

// parseSelectors accepts a selector object or a list of them. A missing or
// null selectors field, like an empty object, matches every device, as in
// the plugin.
func parseSelectors(raw json.RawMessage) ([]selector, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return []selector{{}}, nil
	}
	var objs []map[string]json.RawMessage
	if raw[0] == '[' {
		if err := json.Unmarshal(raw, &objs); err != nil {
			return nil, fmt.Errorf("selectors: %w", err)
		}
	} else {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			return nil, fmt.Errorf("selectors: %w", err)
		}
		objs = append(objs, obj)
	}
	if len(objs) == 0 {
		return []selector{{}}, nil
	}
	sels := make([]selector, 0, len(objs))
	var errs []error
	for i, obj := range objs {
		field := "selectors"
		if raw[0] == '[' {
			field = fmt.Sprintf("selectors[%d]", i)
		}
		s, err := parseSelector(field, obj)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sels = append(sels, s)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sels, nil
}

// parseSelector compiles one object. Keys match case-insensitively, as Go's
// encoding/json in the plugin does. A key we cannot evaluate is an error
// unless its value is empty (false, null, "", [], {}): it would shrink the
// pool, and ignoring it would call VFs "in the pool" that are not.
func parseSelector(field string, obj map[string]json.RawMessage) (selector, error) {
	var s selector
	var errs []error
	var unsupported []string
	for key, val := range obj {
		canon := canonicalKey(key)
		if canon == "" {
			if !isEmptyJSON(val) && !containsFold(nonFiltering, key) {
				unsupported = append(unsupported, key)
			}
			continue
		}
		var list []string
		if err := json.Unmarshal(val, &list); err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: want a list of strings: %w", field, canon, err))
			continue
		}
		var err error
		switch canon {
		case keyVendors:
			s.vendors = list
		case keyDevices:
			s.devices = list
		case keyDrivers:
			s.drivers = list
		case keyPCIAddresses:
			s.pciAddresses = list
		case keyPFNames:
			s.pfNames, err = parseIndexed(list)
		case keyRootDevices:
			s.rootDevices, err = parseIndexed(list)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.%s: %w", field, canon, err))
		}
	}
	if len(unsupported) > 0 {
		sort.Strings(unsupported)
		errs = append(errs, fmt.Errorf("%s: unsupported selector(s) %s: kai-host cannot evaluate them, so it cannot tell which VFs are in the pool (supported: %s)",
			field, strings.Join(unsupported, ", "), strings.Join(supportedKeys, ", ")))
	}
	return s, errors.Join(errs...)
}

func canonicalKey(key string) string {
	for _, k := range supportedKeys {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return ""
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

func isEmptyJSON(v json.RawMessage) bool {
	switch string(bytes.TrimSpace(v)) {
	case "false", "null", `""`, "[]", "{}", "0":
		return true
	}
	return false
}

// parseIndexed parses "name" or "name#a-b,c" entries. The plugin silently
// drops a malformed range; here it is an error.
func parseIndexed(list []string) ([]indexed, error) {
	out := make([]indexed, 0, len(list))
	for _, raw := range list {
		name, spec, hasRange := strings.Cut(raw, "#")
		if name == "" {
			return nil, fmt.Errorf("%q: empty name", raw)
		}
		e := indexed{raw: raw, name: name}
		if hasRange {
			if spec == "" {
				return nil, fmt.Errorf("%q: empty VF range after '#'", raw)
			}
			for _, part := range strings.Split(spec, ",") {
				r, err := parseRange(part)
				if err != nil {
					return nil, fmt.Errorf("%q: %w", raw, err)
				}
				e.ranges = append(e.ranges, r)
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func parseRange(s string) ([2]uint32, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 32)
	if err != nil {
		return [2]uint32{}, fmt.Errorf("bad VF index %q", lo)
	}
	if !isRange {
		return [2]uint32{uint32(a), uint32(a)}, nil
	}
	b, err := strconv.ParseUint(hi, 10, 32)
	if err != nil {
		return [2]uint32{}, fmt.Errorf("bad VF index %q", hi)
	}
	if b < a {
		return [2]uint32{}, fmt.Errorf("VF range %s is backwards", s)
	}
	return [2]uint32{uint32(a), uint32(b)}, nil
}

// String renders the selector for error messages, in the config's terms:
// "vendors [15b3], pfNames [p0#0-7]".
func (s selector) String() string {
	var parts []string
	add := func(key string, vals []string) {
		if len(vals) > 0 {
			parts = append(parts, fmt.Sprintf("%s [%s]", key, strings.Join(vals, " ")))
		}
	}
	add(keyVendors, s.vendors)
	add(keyDevices, s.devices)
	add(keyDrivers, s.drivers)
	add(keyPCIAddresses, s.pciAddresses)
	add(keyPFNames, raws(s.pfNames))
	add(keyRootDevices, raws(s.rootDevices))
	if len(parts) == 0 {
		return "any device"
	}
	return strings.Join(parts, ", ")
}

func raws(es []indexed) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.raw)
	}
	return out
}
