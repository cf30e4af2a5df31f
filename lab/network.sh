#!/usr/bin/env bash
# The lab network with a fixed subnet: inventories/lab names it as the admin
# network. Molecule's podman driver cannot set a subnet, so this runs first
# (molecule's dependency step). Idempotent.
set -euo pipefail
NAME="${TOMWERK_LAB_NETWORK:-tomwerk-lab}"
SUBNET="${TOMWERK_LAB_SUBNET:-10.231.0.0/24}"
if podman network exists "$NAME"; then
  have=$(podman network inspect "$NAME" --format '{{range .Subnets}}{{.Subnet}} {{end}}')
  if [[ " $have " != *" $SUBNET "* ]]; then
    echo "network $NAME exists with subnet '$have', expected $SUBNET: remove it (podman network rm $NAME)" >&2
    exit 1
  fi
  # Made before the DNS plugin was installed: the hosts would not find each other by name.
  if [[ $(podman network inspect "$NAME" --format '{{.DNSEnabled}}') != true ]]; then
    if [[ -n $(podman ps -aq --filter "network=$NAME") ]]; then
      echo "network $NAME has no DNS and hosts on it: make lab-down, then again" >&2
      exit 1
    fi
    podman network rm "$NAME" >/dev/null
    podman network create --subnet "$SUBNET" "$NAME" >/dev/null
    echo "recreated lab network $NAME ($SUBNET) with DNS"
  fi
else
  podman network create --subnet "$SUBNET" "$NAME" >/dev/null
  echo "created lab network $NAME ($SUBNET)"
fi
if [[ $(podman network inspect "$NAME" --format '{{.DNSEnabled}}') != true ]]; then
  echo "network $NAME has no DNS: install lab/host-packages.txt (make bootstrap)" >&2
  exit 1
fi
