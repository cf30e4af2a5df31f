#!/usr/bin/env bash
# Molecule remembers "created" in ~/.ansible/tmp, not in podman. After a reboot,
# or on a machine restored from a snapshot, the containers are gone or stopped
# while Molecule still skips create, and the converge fails at its first task.
# So: if any lab host is not running, destroy what is left (containers and
# Molecule's state); the next create starts clean. A running lab is untouched.
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO="${1:-lab}"
mapfile -t hosts < <(python3 -c '
import sys, yaml
for p in yaml.safe_load(open(sys.argv[1]))["platforms"]:
    print(p["name"])' "molecule/$SCENARIO/molecule.yml")
lost=()
for h in "${hosts[@]}"; do
  [[ $(podman inspect --format '{{.State.Running}}' "$h" 2>/dev/null) == true ]] || lost+=("$h")
done
if ((${#lost[@]} == 0)); then
  exit 0
fi
if ((${#lost[@]} < ${#hosts[@]})); then
  echo "lab hosts not running: ${lost[*]}; starting the lab afresh"
fi
molecule destroy -s "$SCENARIO" >/dev/null
