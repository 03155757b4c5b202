package cni

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	kaiv1 "github.com/kai-dpu/kai/api/kai/v1"
)

const (
	// shortTimeout bounds calls that never wait for the DPU (DEL, STATUS):
	// kai-host answers them from its own state, and a hung kai-host must not
	// hold up pod teardown or the runtime's readiness loop.
	shortTimeout = 5 * time.Second
	// checkTimeout bounds CHECK, which asks the DPU for its current view.
	checkTimeout = 10 * time.Second
	// rpcSlack is added to timeoutSeconds for the client deadline so that
	// kai-host's own timeout fires first and its more precise message
	// (which attachment, which reason) reaches the user.
	rpcSlack = 5 * time.Second
)

// Plugin implements the CNI commands. Its fields are what differs between
// the binary and tests; New fills them for the binary, and a nil field
// falls back to the same default so a zero Plugin cannot panic.
type Plugin struct {
	// Dial returns a Host API client for kai-host's socket.
	Dial func(socket string) (kaiv1.HostClient, io.Closer, error)
	// DeviceInfoPath returns where Multus put the device-info file for a
	// network name, container id and interface name.
	DeviceInfoPath func(netName, containerID, ifName string) string
	// Log receives diagnostics that are not the CNI result: stdout belongs
	// to the result JSON.
	Log io.Writer
}

// New returns the Plugin the kai-cni binary runs.
func New() *Plugin {
	return &Plugin{Dial: DialHost, DeviceInfoPath: deviceInfoPath, Log: os.Stderr}
}

// DialHost connects to kai-host over its unix socket. The socket is
// node-local and guarded by file permissions, so it carries no TLS; mTLS
// protects the host-to-DPU hop instead.
func DialHost(socket string) (kaiv1.HostClient, io.Closer, error) {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial kai-host at %s: %w", socket, err)
	}
	return kaiv1.NewHostClient(conn), conn, nil
}

// logf writes a diagnostic line to p.Log, or stderr when it is nil.
func (p *Plugin) logf(format string, args ...any) {
	w := p.Log
	if w == nil {
		w = os.Stderr
	}
	_, _ = fmt.Fprintf(w, "kai-cni: "+format+"\n", args...)
}

// attachmentID is how CNI identifies an attachment; it is stable across
// ADD, CHECK, DEL and GC of the same interface.
func attachmentID(containerID, ifName string) string {
	return containerID + "/" + ifName
}

// withHost dials kai-host and runs fn under a deadline. A dial failure is
// returned as Unavailable so callers handle it like a dead socket.
func (p *Plugin) withHost(socket string, timeout time.Duration, fn func(context.Context, kaiv1.HostClient) error) error {
	dial := p.Dial
	if dial == nil {
		dial = DialHost
	}
	client, closer, err := dial(socket)
	if err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	defer func() { _ = closer.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return fn(ctx, client)
}

// phaseName renders a Phase for users ("READY", not "PHASE_READY").
func phaseName(p kaiv1.Phase) string {
	return strings.TrimPrefix(p.String(), "PHASE_")
}

// Add reports the VF the previous plugin moved into the pod to kai-host and
// waits until the DPU has it Ready, then passes prevResult through.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	if conf.PrevResult == nil {
		return types.NewError(types.ErrInvalidNetworkConfig,
			"kai-cni must be chained after the plugin that moves the VF into the pod (sriov-cni or host-device): no prevResult", "")
	}
	pci, err := p.resolveDeviceID(conf, args.ContainerID, args.IfName)
	if err != nil {
		return err
	}
	pod, err := parsePodArgs(args.Args)
	if err != nil {
		return err
	}
	prev, err := current.NewResultFromResult(conf.PrevResult)
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, fmt.Sprintf("kai-cni: converting prevResult: %v", err), "")
	}
	mac, ips, err := addressing(prev, args.Netns, args.IfName)
	if err != nil {
		return err
	}

	req := &kaiv1.HostAddRequest{
		Id: attachmentID(args.ContainerID, args.IfName),
		Pod: &kaiv1.Pod{
			Namespace: string(pod.K8S_POD_NAMESPACE),
			Name:      string(pod.K8S_POD_NAME),
			Uid:       string(pod.K8S_POD_UID),
		},
		Network:        conf.Network,
		PciAddress:     pci,
		Mac:            mac,
		Ips:            ips,
		ContainerId:    args.ContainerID,
		Ifname:         args.IfName,
		Netns:          args.Netns,
		TimeoutSeconds: uint32(conf.TimeoutSeconds), // parseConf bounds it to 1..maxTimeoutSeconds
	}
	timeout := time.Duration(conf.TimeoutSeconds)*time.Second + rpcSlack
	var resp *kaiv1.HostAddResponse
	err = p.withHost(conf.Socket, timeout, func(ctx context.Context, c kaiv1.HostClient) error {
		var err error
		resp, err = c.Add(ctx, req)
		return err
	})
	if err != nil {
		return rpcError("Add", conf.Socket,
			fmt.Sprintf("timed out waiting for the DPU to report the attachment Ready (%ds)", conf.TimeoutSeconds), err)
	}
	att := resp.GetAttachment()
	if att == nil {
		return types.NewError(types.ErrInternal, "kai-host answered Add without an attachment", "")
	}
	if ph := att.GetStatus().GetPhase(); ph != kaiv1.Phase_PHASE_READY {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("the DPU did not make attachment %s Ready (phase %s): %s", req.Id, phaseName(ph), att.GetStatus().GetReason()), "")
	}
	if err := types.PrintResult(conf.PrevResult, conf.CNIVersion); err != nil {
		return fmt.Errorf("kai-cni: printing result: %w", err)
	}
	return nil
}

// Del tells kai-host the attachment is gone. It succeeds for attachments
// kai-host does not know, whatever the state of the netns, because the
// runtime retries a failing DEL forever and the pod never finishes
// terminating.
func (p *Plugin) Del(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	id := attachmentID(args.ContainerID, args.IfName)
	err = p.withHost(conf.Socket, shortTimeout, func(ctx context.Context, c kaiv1.HostClient) error {
		_, err := c.Del(ctx, &kaiv1.HostDelRequest{Id: id})
		return err
	})
	switch status.Code(err) {
	case codes.OK, codes.NotFound:
		return nil
	case codes.Unavailable, codes.DeadlineExceeded:
		// With kai-host down nobody can tell the DPU now, and failing would
		// only keep the pod Terminating: the VF plugin's DEL (which runs
		// after ours) returns the VF to the host either way. kai-host only
		// forgets an attachment when a DEL reaches it, so the stale one stays
		// in its checkpoint (and on the DPU) until the runtime's next CNI GC,
		// whose valid set makes kai-host drop it and detach it on the DPU; until
		// then kai-host must let a new Add for the same VF replace it.
		// Operators who would rather block teardown set
		// delToleratesUnavailable=false.
		if conf.tolerateUnavailableDel() {
			p.logf("DEL %s: kai-host not reachable at %s (%v); succeeding anyway, CNI GC will remove the attachment later",
				id, conf.Socket, err)
			return nil
		}
	}
	return rpcError("Del", conf.Socket, "timed out waiting for kai-host to remove the attachment", err)
}

// Check verifies that the DPU still has the attachment Ready and that the
// pod's interface still carries the MAC the DPU filters on.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	id := attachmentID(args.ContainerID, args.IfName)
	var resp *kaiv1.HostCheckResponse
	err = p.withHost(conf.Socket, checkTimeout, func(ctx context.Context, c kaiv1.HostClient) error {
		var err error
		resp, err = c.Check(ctx, &kaiv1.HostCheckRequest{Id: id})
		return err
	})
	if err != nil {
		return rpcError("Check", conf.Socket, "timed out waiting for kai-host to report the attachment", err)
	}
	att := resp.GetAttachment()
	if att == nil {
		return types.NewError(types.ErrInternal, "kai-host answered Check without an attachment", "")
	}
	if ph := att.GetStatus().GetPhase(); ph != kaiv1.Phase_PHASE_READY {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("attachment %s is %s on the DPU: %s", id, phaseName(ph), att.GetStatus().GetReason()), "")
	}
	mac, err := linkMAC(args.Netns, args.IfName)
	if err != nil {
		return err
	}
	if !sameMAC(mac, att.GetMac()) {
		return types.NewError(types.ErrInvalidNetworkConfig,
			fmt.Sprintf("interface %s in the pod has MAC %s but the DPU admits %s for attachment %s", args.IfName, mac, att.GetMac(), id), "")
	}
	return nil
}

// Status reports whether ADD can succeed now, so the runtime does not
// schedule pods onto a node whose DPU cannot attach them.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	var resp *kaiv1.HostStatusResponse
	err = p.withHost(conf.Socket, shortTimeout, func(ctx context.Context, c kaiv1.HostClient) error {
		var err error
		resp, err = c.Status(ctx, &kaiv1.HostStatusRequest{})
		return err
	})
	if err != nil {
		// Whatever went wrong, the answer to STATUS is "not available"; the
		// message says whether kai-host or the DPU is the reason.
		e := rpcError("Status", conf.Socket, "timed out waiting for kai-host to report its status", err)
		return types.NewError(errPluginNotAvailable, e.Msg, e.Details)
	}
	if !resp.GetReady() {
		return types.NewError(errPluginNotAvailable, "kai-host is not ready: "+resp.GetReason(), "")
	}
	return nil
}

// GC hands kai-host the attachments the runtime still knows, so kai-host
// drops everything else, including attachments whose DEL never reached it.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	conf, err := parseConf(args.StdinData)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(conf.ValidAttachments))
	for _, a := range conf.ValidAttachments {
		ids = append(ids, attachmentID(a.ContainerID, a.IfName))
	}
	var resp *kaiv1.HostGCResponse
	timeout := time.Duration(conf.TimeoutSeconds)*time.Second + rpcSlack
	err = p.withHost(conf.Socket, timeout, func(ctx context.Context, c kaiv1.HostClient) error {
		var err error
		resp, err = c.GC(ctx, &kaiv1.HostGCRequest{ValidIds: ids})
		return err
	})
	if err != nil {
		return rpcError("GC", conf.Socket, "timed out waiting for kai-host to garbage-collect attachments", err)
	}
	if removed := resp.GetRemoved(); len(removed) > 0 {
		p.logf("GC removed %d stale attachment(s): %s", len(removed), strings.Join(removed, ", "))
	}
	return nil
}
