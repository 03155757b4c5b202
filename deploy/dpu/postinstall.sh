#!/bin/sh
# kai-dpu package post-install: make systemd see the unit. The service is not
# enabled or started: /etc/kai/dpu.yaml must be edited first.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi

if [ -d /run/systemd/system ] && systemctl is-active --quiet kai-dpu; then
	cat <<'MSG'
kai-dpu: the running service still uses the previous binary. Restart it with
  systemctl restart kai-dpu
(a restart keeps OVS flows and, through BGP graceful restart, the fabric's routes).
MSG
else
	cat <<'MSG'
kai-dpu installed. Next steps:
  1. edit /etc/kai/dpu.yaml (node, bgp, vtep, networks) and check it with
       kai-dpu --dry-run --config /etc/kai/dpu.yaml
  2. systemctl enable --now kai-dpu
DPU prerequisites (switchdev, representors, OVS hw-offload): see the
project's deploy/dpu/bluefield-setup.md.
MSG
fi
exit 0
