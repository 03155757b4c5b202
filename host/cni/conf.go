package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

const (
	// DefaultSocket is where kai-host serves the Host API; it matches
	// kai-host's own default so a bare netconf works.
	DefaultSocket = "/run/kai/host.sock"
	// DefaultTimeoutSeconds bounds how long ADD waits for the DPU to report
	// the attachment Ready. It stays well below kubelet's CNI timeout so
	// the user sees our message, not a generic runtime timeout.
	DefaultTimeoutSeconds = 30
	// maxTimeoutSeconds rejects values that would hang pod creation for
	// longer than any runtime waits anyway.
	maxTimeoutSeconds = 600
)

// pciAddress is the full domain:bus:device.function form the SR-IOV device
// plugin and Multus use. Requiring it catches a netconf that passes a
// netdev name or a resource name where the VF's address belongs.
var pciAddress = regexp.MustCompile(`^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// NetConf is kai-cni's network configuration.
type NetConf struct {
	types.PluginConf

	// Network is the Kai network (as configured on the DPU) the VF joins.
	Network string `json:"network,omitempty"`
	// Socket is kai-host's Host API unix socket.
	Socket string `json:"socket,omitempty"`
	// TimeoutSeconds bounds how long ADD waits for Ready.
	TimeoutSeconds int `json:"timeoutSeconds,omitempty"`
	// DeviceID is the VF's PCI address, injected by Multus.
	DeviceID string `json:"deviceID,omitempty"`
	// DelToleratesUnavailable makes DEL succeed when kai-host cannot be
	// reached; nil means true (see Plugin.Del for why).
	DelToleratesUnavailable *bool `json:"delToleratesUnavailable,omitempty"`

	RuntimeConfig RuntimeConfig `json:"runtimeConfig,omitempty"`
}

// RuntimeConfig holds the capability arguments kai-cni understands.
type RuntimeConfig struct {
	// DeviceID is set when the netconf declares the "deviceID" capability.
	DeviceID string `json:"deviceID,omitempty"`
	// CNIDeviceInfoFile is set when the netconf declares the
	// "CNIDeviceInfoFile" capability; Multus names the device-info file.
	CNIDeviceInfoFile string `json:"CNIDeviceInfoFile,omitempty"`
}

// podArgs are the CNI_ARGS kubelet passes. The field names are the keys,
// which is why they do not follow Go naming.
type podArgs struct {
	types.CommonArgs
	K8S_POD_NAMESPACE types.UnmarshallableString
	K8S_POD_NAME      types.UnmarshallableString
	K8S_POD_UID       types.UnmarshallableString
}

// parseConf decodes and validates stdin, applies defaults and parses
// prevResult. Errors are CNI errors naming the offending field, because
// the only reader is an operator looking at kubelet events.
func parseConf(data []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return nil, types.NewError(types.ErrDecodingFailure,
				fmt.Sprintf("kai-cni netconf: field %q: expected %s, got JSON %s", typeErr.Field, typeErr.Type, typeErr.Value), "")
		}
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("kai-cni netconf is not valid JSON: %v", err), "")
	}
	if err := version.ParsePrevResult(&conf.PluginConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, fmt.Sprintf("kai-cni netconf: field \"prevResult\": %v", err), "")
	}
	if conf.Network == "" {
		conf.Network = conf.Name
	}
	if conf.Network == "" {
		return nil, types.NewError(types.ErrInvalidNetworkConfig, `kai-cni netconf: field "network" (or "name") must name the Kai network`, "")
	}
	if conf.Socket == "" {
		conf.Socket = DefaultSocket
	}
	if !filepath.IsAbs(conf.Socket) {
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("kai-cni netconf: field \"socket\" must be an absolute path, got %q", conf.Socket), "")
	}
	switch {
	case conf.TimeoutSeconds == 0:
		conf.TimeoutSeconds = DefaultTimeoutSeconds
	case conf.TimeoutSeconds < 0 || conf.TimeoutSeconds > maxTimeoutSeconds:
		return nil, types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("kai-cni netconf: field \"timeoutSeconds\" must be between 1 and %d, got %d", maxTimeoutSeconds, conf.TimeoutSeconds), "")
	}
	return conf, nil
}

// tolerateUnavailableDel reports the effective delToleratesUnavailable.
func (c *NetConf) tolerateUnavailableDel() bool {
	return c.DelToleratesUnavailable == nil || *c.DelToleratesUnavailable
}

// parsePodArgs reads the pod identity from CNI_ARGS. Keys other runtimes or
// plugins add are ignored rather than rejected.
func parsePodArgs(args string) (*podArgs, error) {
	pa := &podArgs{}
	pa.IgnoreUnknown = true
	if err := types.LoadArgs(args, pa); err != nil {
		return nil, types.NewError(types.ErrInvalidEnvironmentVariables, fmt.Sprintf("kai-cni: cannot parse CNI_ARGS: %v", err), "")
	}
	return pa, nil
}

// cniDeviceInfoDir is where Multus copies the SR-IOV device plugin's
// device-info file for each delegate (NPWG device-info spec).
const cniDeviceInfoDir = "/var/run/k8s.cni.cncf.io/devinfo/cni"

// deviceInfo is the part of an NPWG device-info file kai-cni reads. It is
// declared here rather than imported from network-attachment-definition-
// client because that package links client-go: 45 MB instead of 3 MB for a
// binary the runtime executes for every pod, to read one JSON field.
type deviceInfo struct {
	Type string `json:"type"`
	Pci  *struct {
		PciAddress string `json:"pci-address"`
	} `json:"pci"`
}

// deviceInfoPath returns where Multus writes the device-info file for a
// delegate: its name, the container id and the interface name, with "/"
// replaced as Multus (GetCNIDeviceInfoPath) does.
func deviceInfoPath(netName, containerID, ifName string) string {
	name := fmt.Sprintf("%s-%s_%s", netName, containerID, ifName)
	return filepath.Join(cniDeviceInfoDir, strings.ReplaceAll(name, "/", "-"))
}

// resolveDeviceID finds the VF's PCI address. The explicit netconf field
// wins, then the runtime capability, then the device-info file, mirroring
// how sriov-cni finds the same VF so both plugins agree.
func (p *Plugin) resolveDeviceID(conf *NetConf, containerID, ifName string) (string, error) {
	for _, c := range []struct{ field, value string }{
		{"deviceID", conf.DeviceID},
		{"runtimeConfig.deviceID", conf.RuntimeConfig.DeviceID},
	} {
		if c.value == "" {
			continue
		}
		if !pciAddress.MatchString(c.value) {
			return "", types.NewError(types.ErrInvalidNetworkConfig,
				fmt.Sprintf("kai-cni netconf: field %q must be a VF PCI address like 0000:03:00.2, got %q", c.field, c.value), "")
		}
		return c.value, nil
	}

	path := conf.RuntimeConfig.CNIDeviceInfoFile
	if path == "" {
		pathFor := p.DeviceInfoPath
		if pathFor == nil {
			pathFor = deviceInfoPath
		}
		path = pathFor(conf.Name, containerID, ifName)
	}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", types.NewError(types.ErrInvalidNetworkConfig,
			"kai-cni cannot tell which VF this pod got: set \"deviceID\" in the netconf, or request the VF through "+
				"the SR-IOV network device plugin (a NetworkAttachmentDefinition with a k8s.v1.cni.cncf.io/resourceName "+
				"annotation) so Multus passes it; no device-info file at "+path, "")
	case err != nil:
		return "", types.NewError(types.ErrIOFailure, fmt.Sprintf("kai-cni: reading device-info file: %v", err), "")
	}
	var info deviceInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return "", types.NewError(types.ErrDecodingFailure, fmt.Sprintf("kai-cni: device-info file %s is malformed: %v", path, err), "")
	}
	if info.Pci == nil || info.Pci.PciAddress == "" {
		return "", types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("kai-cni: device-info file %s has no pci-address (type %q): kai-cni needs an SR-IOV VF", path, info.Type), "")
	}
	if !pciAddress.MatchString(info.Pci.PciAddress) {
		return "", types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("kai-cni: device-info file %s: pci-address %q is not a PCI address", path, info.Pci.PciAddress), "")
	}
	return info.Pci.PciAddress, nil
}
