#!/usr/bin/env bash
# Print a Python >= 3.12 interpreter (3.12 preferred, the tested one): on PATH,
# or from pyenv (the ansible
# PyPI package needs 3.12; Debian 12 ships 3.11).
set -euo pipefail
ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; }
candidates=(python3.12 python3.13)
root="${PYENV_ROOT:-$HOME/.pyenv}"
for dir in $(ls -d "$root"/versions/3.1[2-9]* 2>/dev/null | sort -V); do candidates+=("$dir/bin/python"); done
candidates+=(python3)
for c in "${candidates[@]}"; do
  if command -v "$c" >/dev/null 2>&1 && ok "$c"; then command -v "$c"; exit 0; fi
done
echo "no Python >= 3.12 found (tried PATH and $root/versions); install one, e.g. with pyenv" >&2
exit 1
