#!/usr/bin/env bash
# Build a lab base image: Debian with systemd as PID 1, made locally with
# debootstrap because no container registry is reachable. One recipe for
# every release: `build-image.sh bookworm` (Debian 12), `build-image.sh trixie`
# (Debian 13). The image carries a label with the hash of this recipe and the
# release; a rerun with an unchanged recipe reuses the image and does nothing.
set -euo pipefail

RELEASE="${1:-bookworm}"
case "$RELEASE" in
  bookworm|trixie) ;;
  *) echo "build-image.sh: unknown release '$RELEASE' (use bookworm or trixie)" >&2; exit 2 ;;
esac
IMAGE="${TOMWERK_LAB_IMAGE:-localhost/tomwerk-debian-systemd:$RELEASE}"
HERE="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"

mirror() {
  # The Debian mirror this machine already uses; deb.debian.org otherwise.
  local m
  m=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
      | grep -oE 'https?://[^ ]+' | head -n1 || true)
  echo "${m:-http://deb.debian.org/debian}"
}
MIRROR="${TOMWERK_DEBIAN_MIRROR:-$(mirror)}"
MIRROR="${MIRROR%/}"
PACKAGES="systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,procps,ca-certificates,sudo"
RECIPE_HASH=$( { cat "$0"; echo "$MIRROR $RELEASE"; } | sha256sum | cut -c1-16)

current=$(podman image inspect --format '{{ index .Labels "tomwerk.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [[ "$current" == "$RECIPE_HASH" ]]; then
  echo "lab image $IMAGE is up to date (recipe $RECIPE_HASH)"
  exit 0
fi

WORK=$(mktemp -d /var/tmp/tomwerk-rootfs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
ROOTFS="$WORK/rootfs"
echo "building lab image $IMAGE from $MIRROR (recipe $RECIPE_HASH)"
debootstrap --variant=minbase --include="$PACKAGES" "$RELEASE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
  || { tail -n 30 "$WORK/debootstrap.log"; exit 1; }

SEC_MIRROR="${MIRROR%/debian}/debian-security"
cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $RELEASE main
deb $MIRROR $RELEASE-updates main
deb $SEC_MIRROR $RELEASE-security main
SOURCES
# Bring the image up to the current point release and security updates, so a
# new lab host starts where a freshly installed server would.
mount -t proc proc "$ROOTFS/proc"
# errexit holds inside the trap too: an already unmounted proc must not turn a
# finished build into a failed one.
trap 'umount "$ROOTFS/proc" 2>/dev/null || true; rm -rf "$WORK"' EXIT
chroot "$ROOTFS" apt-get update -qq >"$WORK/upgrade.log" 2>&1 \
  && DEBIAN_FRONTEND=noninteractive chroot "$ROOTFS" apt-get -y -qq dist-upgrade >>"$WORK/upgrade.log" 2>&1 \
  || { tail -n 30 "$WORK/upgrade.log"; exit 1; }
umount "$ROOTFS/proc"
# Throwaway containers: dpkg need not fsync every file, and nothing reads the
# documentation, so it is not unpacked (Debian's own container images do the
# same). A first converge installs a few hundred packages on eight hosts that
# share two cores; the roles still install every package themselves.
cat >"$ROOTFS/etc/dpkg/dpkg.cfg.d/tomwerk-lab" <<'DPKG'
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
DPKG
echo 'Acquire::Languages "none";' >"$ROOTFS/etc/apt/apt.conf.d/tomwerk-lab-no-translations"
# minbase has no /etc/hosts; podman injects one, but keep a sane default.
printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$ROOTFS/etc/hosts"
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/*
: >"$ROOTFS/etc/machine-id"
# An empty list dir with a fresh mtime makes apt's cache_valid_time think the
# cache is current, and every package install then fails: make it ancient.
touch -d @0 "$ROOTFS/var/lib/apt/lists"

tar -C "$ROOTFS" --numeric-owner -cf "$WORK/rootfs.tar" .
podman import \
  --change 'CMD ["/sbin/init"]' \
  --change 'ENV container=podman' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL tomwerk.recipe=$RECIPE_HASH" \
  "$WORK/rootfs.tar" "$IMAGE" >/dev/null
echo "lab image $IMAGE built"
