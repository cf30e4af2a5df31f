#!/usr/bin/env bash
# The collection as an admin's repository uses it: built from this tree,
# installed into a directory outside it, and driven by a playbook that names
# only FQCNs (tests/collection). `check`: build, install, syntax-check.
# `converge HOST`: also converge that lab host with it; it must change nothing,
# since the lab's converge (from the tree) already applied the same roles.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=${1:-check}
work=$(mktemp -d /tmp/tomwerk-collection.XXXXXX)
trap 'rm -rf "$work"' EXIT

ansible-galaxy collection build --force --output-path "$work/dist" "$root" >/dev/null
artifact=$(ls "$work"/dist/tomwerk-toms-*.tar.gz)
ansible-galaxy collection install --force --offline -p "$work/collections" "$artifact" >/dev/null
echo "collection: built $(basename "$artifact") ($(du -k "$artifact" | cut -f1) KiB), installed into $work/collections"
cp "$root"/tests/collection/playbook.yml "$root"/tests/collection/ansible.cfg "$work/"
cd "$work"
# Not the repository's configuration, collections or roles: only the installed copy.
export ANSIBLE_CONFIG=$work/ansible.cfg
unset ANSIBLE_COLLECTIONS_PATH ANSIBLE_ROLES_PATH ANSIBLE_FILTER_PLUGINS
ansible-playbook --syntax-check -i "$root/inventories/lab" playbook.yml >/dev/null
echo "collection: playbook.yml (FQCN only) passes the syntax check"
[ "$mode" = converge ] || exit 0

host=${2:?usage: lab/collection.sh converge HOST}
# The lab reaches its containers with its own connection plugin (lab plumbing).
export ANSIBLE_CONNECTION_PLUGINS=$root/lab/plugins/connection
ansible-playbook -i "$root/inventories/lab" playbook.yml --limit "$host" | tee "$work/converge.log" | tail -n 4
recap=$(grep -E "^$host +:" "$work/converge.log")
if ! grep -qE "changed=0 .*failed=0" <<<"$recap"; then
  echo "collection: converging $host from the installed collection changed or failed something: $recap"
  exit 1
fi
echo "collection: $host converged from the installed collection, nothing changed"
