#!/bin/sh
# The in-place upgrade path (issue 16): every Debian 12 host of the running lab
# goes to Debian 13 the way the release notes tell an admin to: sources to
# trixie, a minimal upgrade, then the full upgrade keeping the local (tomwerk's)
# configuration files, then a reboot. `make upgrade-test` then converges the lab
# again and runs every check. HOSTS="a b" limits it; by default it takes every
# lab host that reports VERSION_ID 12.
set -eu

NETWORK=tomwerk-lab
LOGDIR="${TOMWERK_LAB_DIR:-.lab}/upgrade"
mkdir -p "$LOGDIR"

hosts="${HOSTS:-$(podman ps --filter "network=$NETWORK" --format '{{.Names}}' | sort)}"
[ -n "$hosts" ] || { echo "upgrade-to-trixie: no lab host is running (make lab-up first)" >&2; exit 2; }

# Run inside the host. Keep the local configuration files: they are tomwerk's
# (the converge afterwards brings them to the new release); ucf asks the same.
UPGRADE='
export DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1
APT="apt-get -y -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold"
# Not while unattended-upgrades holds the lock or runs mid-upgrade.
systemctl stop apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service || true
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  if [ -f "$f" ]; then sed -i "s/\bbookworm\b/trixie/g" "$f"; fi
done
apt-get -o DPkg::Lock::Timeout=600 update
$APT upgrade --without-new-pkgs
$APT full-upgrade
'

release() { podman exec "$1" sh -c '. /etc/os-release; echo "$VERSION_ID"'; }

# One host: upgrade, reboot, settle. Prints its result line.
upgrade_one() {
  host=$1 start=$(date +%s)
  if ! podman exec "$host" sh -euc "$UPGRADE" >"$LOGDIR/$host.log" 2>&1 </dev/null; then
    echo "upgrade-to-trixie: $host: the upgrade failed; the end of $LOGDIR/$host.log:"
    tail -n 30 "$LOGDIR/$host.log"
    return 1
  fi
  podman restart --time 30 "$host" >/dev/null
  # Degraded is the converge's to fix; a host that never settles is an error.
  # Right after the restart podman exec may not reach the container yet: retry.
  state=""
  for _ in $(seq 60); do
    state=$(podman exec "$host" timeout 300 systemctl is-system-running --wait 2>/dev/null) || true
    [ -z "$state" ] || break
    sleep 2
  done
  case "$state" in
    running|degraded) ;;
    *) echo "upgrade-to-trixie: $host: did not come up after the reboot (systemd: '${state:-no answer}')"; return 1 ;;
  esac
  if [ "$(release "$host")" != 13 ]; then
    echo "upgrade-to-trixie: $host: still not Debian 13 after the upgrade (see $LOGDIR/$host.log)"
    return 1
  fi
  echo "upgrade-to-trixie: $host: now Debian $(podman exec "$host" cat /etc/debian_version) ($state), $(($(date +%s) - start)) s"
}

# In parallel: most of the time is downloading, and each host has its own cache.
pids="" names=""
for host in $hosts; do
  now=$(release "$host") || { echo "upgrade-to-trixie: $host: cannot read its release" >&2; exit 1; }
  [ "$now" = 12 ] || continue
  echo "upgrade-to-trixie: $host: Debian 12 -> 13 (log: $LOGDIR/$host.log)"
  upgrade_one "$host" &
  pids="$pids $!" names="$names $host"
done
# Nothing to upgrade is a failed test: the checks after it would prove nothing.
[ -n "$names" ] || { echo "upgrade-to-trixie: no Debian 12 host among: $(echo $hosts)" >&2; exit 1; }
failed=0
for pid in $pids; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || exit 1

# Lab only: pebble, the stand-in for Let's Encrypt, keeps its CA and accounts in
# memory, so its host's reboot left every lab certificate and ACME account void
# (Let's Encrypt keeps both across an upgrade). The clients forget theirs, and
# the converge orders new ones, as on a first install.
restarted=0
for host in $names; do
  if podman exec "$host" systemctl -q is-enabled pebble.service 2>/dev/null; then restarted=1; fi
done
if [ "$restarted" = 1 ]; then
  for host in $hosts; do
    podman exec "$host" sh -euc '
      for conf in /etc/letsencrypt/renewal/*.conf; do
        [ -e "$conf" ] || continue
        certbot delete --non-interactive --cert-name "$(basename "$conf" .conf)" >/dev/null
        echo "upgrade-to-trixie: $(hostname): forgot the lab ACME certificate $(basename "$conf" .conf) (pebble restarted)"
      done
      rm -rf /etc/letsencrypt/accounts
      # the deploy hook linked them here; dangling, the web role puts its placeholder back
      find /etc/tomwerk -xtype l -delete'
  done
fi
