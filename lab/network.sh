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
else
  podman network create --subnet "$SUBNET" "$NAME" >/dev/null
  echo "created lab network $NAME ($SUBNET)"
fi
