// Package devicepool tells kai-host whether a VF belongs to Kai's SR-IOV
// network device-plugin resource.
//
// Kubelet hands a pod a VF only through a device-plugin resource. A VF that
// reaches kai-cni from outside Kai's resource (a NetworkAttachmentDefinition
// without the resourceName annotation, a pod that did not request it, a
// mistyped deviceID) belongs to someone else: attaching it would steal
// another workload's VF. kai-host checks the VF against the resource's
// selectors, read from the device plugin's own config.json, and refuses
// with an error that says what to fix.
//
// The config is parsed with a small struct of our own (see dpu-anchors.md
// §4: the plugin's pkg/types drags in ghw, govdpa and the kubelet API).
// Matching mirrors the plugin's selectors; selectors that would restrict
// the pool in ways we cannot evaluate are rejected at Parse instead of
// being silently ignored.
package devicepool

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ErrNotInPool is returned (wrapped) by Check when the VF does not match the
// resource's selectors.
var ErrNotInPool = errors.New("VF is not in Kai's device-plugin pool")

// DefaultSysfsRoot is where sysfs is mounted.
const DefaultSysfsRoot = "/sys"

// Pool is one device-plugin resource's selectors plus the sysfs to read
// device attributes from. It is immutable, so safe for concurrent use.
type Pool struct {
	// resource is the resource's display name, "prefix/name" when known.
	resource  string
	selectors []selector
	sysfsRoot string
}

// fileConfig is the part of the device plugin's config.json we read.
type fileConfig struct {
	ResourceList []resourceConfig `json:"resourceList"`
}

type resourceConfig struct {
	ResourceName   string `json:"resourceName"`
	ResourcePrefix string `json:"resourcePrefix"`
	DeviceType     string `json:"deviceType"`
	// Selectors is an object, or (newer plugins) a list of objects any of
	// which may match; decoded by parseSelectors.
	Selectors json.RawMessage `json:"selectors"`
}

// displayName is how an operator writes the resource in a pod spec. An entry
// without resourcePrefix gets the plugin's --resource-prefix flag, which is
// not in the file, so only the name is shown.
func (r resourceConfig) displayName() string {
	if r.ResourcePrefix == "" {
		return r.ResourceName
	}
	return r.ResourcePrefix + "/" + r.ResourceName
}

// Load reads the device plugin config at path; see Parse.
func Load(path, resourceName, sysfsRoot string) (*Pool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("devicepool: read device-plugin config: %w", err)
	}
	p, err := Parse(data, resourceName, sysfsRoot)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Parse finds resourceName in a device-plugin config.json and compiles its
// selectors. resourceName is "prefix/name" (kai.dev/evpn_vf), which also
// matches an entry without resourcePrefix (the plugin's flag supplies it),
// or a bare name, which matches that name under any prefix. sysfsRoot ""
// means DefaultSysfsRoot.
func Parse(data []byte, resourceName, sysfsRoot string) (*Pool, error) {
	var f fileConfig
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("devicepool: decode device-plugin config: %w", err)
	}
	r, err := findResource(f.ResourceList, resourceName)
	if err != nil {
		return nil, err
	}
	field := fmt.Sprintf("devicepool: resource %s", r.displayName())
	if r.DeviceType != "" && r.DeviceType != "netDevice" {
		return nil, fmt.Errorf("%s: deviceType %q not supported: Kai needs SR-IOV VFs (netDevice)", field, r.DeviceType)
	}
	sels, err := parseSelectors(r.Selectors)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	if sysfsRoot == "" {
		sysfsRoot = DefaultSysfsRoot
	}
	name := r.displayName()
	if r.ResourcePrefix == "" {
		name = resourceName // the operator's spelling carries the prefix
	}
	return &Pool{resource: name, selectors: sels, sysfsRoot: sysfsRoot}, nil
}

// findResource picks the entry for want. An exact prefix match beats an
// entry without prefix; a bare name must be unambiguous.
func findResource(list []resourceConfig, want string) (resourceConfig, error) {
	if want == "" {
		return resourceConfig{}, errors.New("devicepool: resource name required")
	}
	prefix, name, qualified := strings.Cut(want, "/")
	if !qualified {
		prefix, name = "", want
	}
	var exact, loose []resourceConfig
	for _, r := range list {
		if r.ResourceName != name {
			continue
		}
		switch {
		case qualified && r.ResourcePrefix == prefix:
			exact = append(exact, r)
		case !qualified || r.ResourcePrefix == "":
			loose = append(loose, r)
		}
	}
	candidates := exact
	if len(candidates) == 0 {
		candidates = loose
	}
	switch len(candidates) {
	case 1:
		return candidates[0], nil
	case 0:
		found := make([]string, 0, len(list))
		for _, r := range list {
			found = append(found, r.displayName())
		}
		sort.Strings(found)
		return resourceConfig{}, fmt.Errorf("devicepool: resource %s not found in device-plugin config (resources: %s)", want, listOrNone(found))
	default:
		names := make([]string, 0, len(candidates))
		for _, r := range candidates {
			names = append(names, r.displayName())
		}
		return resourceConfig{}, fmt.Errorf("devicepool: resource %s is ambiguous (%s); use prefix/name", want, strings.Join(names, ", "))
	}
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
