"""Safety nets on real hosts: bad input changes nothing, and Ansible survives an
sshd and firewall reload over its own SSH connection."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.lab.conftest import ansible_playbook, lab_host, recap

WATCHED = ["/etc/ssh/sshd_config", "/etc/nftables.conf", "/etc/pam.d/common-password", "/etc/passwd", "/etc/shadow"]


def checksums(host) -> dict[str, str]:
    return {path: host.file(path).sha256sum for path in WATCHED}


@pytest.mark.parametrize(
    ("bad_vars", "variable"),
    [
        ({"ssh_access_admins": []}, "ssh_access_admins"),
        ({"firewall_allow": [{"port": "http"}]}, "firewall_allow"),
        ({"password_policy_allowed_hashes": ["md5"]}, "password_policy_allowed_hashes"),
        # web1's last role in site.yml: refused before the first role's first change.
        ({"dnssec_algorithm": "rsamd5"}, "dnssec_algorithm"),
    ],
    ids=["no-admins", "port-not-a-number", "weak-hash-allowed", "last-role"],
)
def test_bad_input_changes_nothing_on_the_host(bad_vars, variable):
    """site.yml with bad input fails on web1, names the variable, and leaves every watched file as it was.

    No task but the input checks ran (playbooks/validate.yml, imported first): on a fresh host too,
    nothing would have changed, whichever role's input is bad."""
    web1 = lab_host("web1")
    before = checksums(web1)
    result = ansible_playbook("playbooks/site.yml", "--limit", "web1", "-e", json.dumps(bad_vars))
    assert result.returncode != 0
    assert variable in result.stdout
    counters = recap(result.stdout, "web1")
    assert counters["failed"] == 1
    assert counters["changed"] == 0
    assert checksums(web1) == before
    ran = re.findall(r"^TASK \[(?:[\w.]+ : )?([^\]]+)\]", result.stdout, re.MULTILINE)
    others = {t for t in ran if not t.startswith(("Validate", "Each role's input checks", "Gathering Facts",
                                                 "Validating arguments against arg spec"))}  # fmt: skip
    assert others == set(), f"tasks ran before the refusal: {sorted(others)}"


def test_ansible_survives_sshd_and_firewall_reloads_over_ssh(lab, tmp_path):
    """Ansible connected over SSH as a named admin re-applies ssh_access and firewall,
    with sshd and nftables reloaded under it, and keeps talking to the host."""
    web1 = lab_host("web1")
    address = web1.check_output("hostname -I").split()[0]
    key = Path(lab.var("web1", "tomwerk_lab_dir")) / "keys" / "alice"
    inventory = tmp_path / "ssh.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "hosts": {"web1": {"ansible_host": address}},
                    "vars": {
                        "ansible_connection": "ssh",
                        "ansible_user": "alice",
                        "ansible_become": True,
                        "ansible_ssh_private_key_file": str(key),
                        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                    },
                }
            }
        )
    )
    playbook = tmp_path / "reapply.yml"
    playbook.write_text(
        "- hosts: web1\n  roles: [tomwerk.toms.ssh_access, tomwerk.toms.firewall]\n"
        "  post_tasks:\n    - ansible.builtin.command: id -un\n      register: who\n      changed_when: false\n"
        "    - ansible.builtin.assert:\n        that: who.stdout == 'root'\n"
    )
    lab_vars = ["-i", str(inventory), "-e", "@" + str(Path("inventories/lab/group_vars/all/access.yml").resolve()),
                "-e", "@" + str(Path("inventories/lab/group_vars/all/lab.yml").resolve())]  # fmt: skip
    # First run drops one MAC (sshd reloads), second run restores the defaults (reloads again).
    changed = ansible_playbook(*lab_vars, "-e", '{"ssh_access_macs": ["hmac-sha2-512-etm@openssh.com"]}', str(playbook))
    assert changed.returncode == 0, changed.stdout[-3000:]
    assert "RUNNING HANDLER [tomwerk.toms.ssh_access : Reload the sshd service]" in changed.stdout
    restored = ansible_playbook(*lab_vars, str(playbook))
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert recap(restored.stdout, "web1")["unreachable"] == 0
    assert "hmac-sha2-256-etm@openssh.com" in web1.check_output("sshd -T | grep ^macs")
