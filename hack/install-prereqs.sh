#!/usr/bin/env bash
# Installs what building and testing Kai needs on Debian/Ubuntu. Idempotent:
# it only installs what is missing. It never starts the system's OVS
# service; tests and the lab run their own OVS instances.
set -euo pipefail

pkgs=(openvswitch-switch frr protobuf-compiler iproute2 iputils-ping ethtool tcpdump)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d keeps dpkg from starting the openvswitch and frr services.
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d.kai && chmod +x /usr/sbin/policy-rc.d.kai
  if [ ! -e /usr/sbin/policy-rc.d ]; then cp /usr/sbin/policy-rc.d.kai /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi
  rm -f /usr/sbin/policy-rc.d.kai
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "Go 1.24+ is required (https://go.dev/dl)"; exit 1; }
