#!/usr/bin/env bash
# Install the controller's Debian packages (lab/host-packages.txt), as root.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
RELEASE=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
# `name@release` lines are for that release only.
mapfile -t packages < <(grep -vE '^\s*(#|$)' "$HERE/host-packages.txt" \
  | awk -v r="$RELEASE" '{ n = split($1, p, "@") } n == 1 || p[2] == r { print p[1] }')
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "controller packages present"
  exit 0
fi
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
echo "installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
