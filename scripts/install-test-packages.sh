#!/usr/bin/env bash
# Installs the Debian packages the real-server test tiers need (promtool/prometheus/alertmanager, Ceph RGW).
# Idempotent and quiet when everything is present. Needs root (CI runs as root).
set -euo pipefail
need=()
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v radosgw >/dev/null || need+=(radosgw)
command -v ceph-mon >/dev/null || need+=(ceph-mon)
command -v ceph-osd >/dev/null || need+=(ceph-osd)
command -v ceph >/dev/null || need+=(ceph-common)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-packages: need root to install: ${need[*]} (tests needing them will be skipped)" >&2
    exit 0
fi
echo "install-test-packages: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
