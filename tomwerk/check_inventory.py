"""tomwerk check-inventory: every role's input checks for every host of an inventory, before a converge.

It runs what a converge runs first, each role's `validate` entry point (its
meta/argument_specs.yml plus the asserts in tasks/validate.yml), on the
controller (connection local, no facts): no host is contacted, nothing
changes. So the rules live once, in the roles, and an admin learns of a
missing admin key or a backup target without a city before provisioning.
Vault-encrypted variables are decrypted as Ansible does
(ANSIBLE_VAULT_PASSWORD_FILE, or --vault-password-file).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import yaml

from tomwerk import ROOT
from tomwerk.inventory import Inventory, plays, role_names

# One play per play of site.yml, on the same hosts, with the same roles in the same order;
# public: true, so a role sees the defaults of the roles before it, as in a `roles:` play.
FIRST_PLAY = """
- name: The Debian release the checks assume (release-aware roles read it from the facts)
  hosts: all
  gather_facts: false
  tasks:
    - name: Set the release
      ansible.builtin.set_fact:
        distribution_major_version: "{{ tomwerk_debian_release | default(tomwerk_check_release) | string }}"
        cacheable: true
"""
ROLE_PLAY = """
- name: Input checks of {name}
  hosts: {hosts}
  gather_facts: false
  tasks:
    - name: Each role's input checks (its validate entry point)
      ansible.builtin.include_role:
        name: "{{{{ tomwerk_check_role }}}}"
        tasks_from: validate
        public: true
        apply:
          ignore_errors: true
      loop: {roles}
      loop_control:
        loop_var: tomwerk_check_role
"""


def imported_roles(role: str) -> list[str]:
    """Whole roles a role's tasks/main.yml imports (tomwerk_host): their input is checked with it.
    Imports of another entry point (firewall's `allow`) validate their own input inside."""
    found = []
    for task in yaml.safe_load((ROOT / "roles" / role / "tasks" / "main.yml").read_text(encoding="utf-8")) or []:
        for key in ("ansible.builtin.import_role", "ansible.builtin.include_role", "import_role", "include_role"):
            spec = task.get(key)
            if spec and "tasks_from" not in spec and spec["name"] not in found:
                found.append(spec["name"])
    return found


def playbook(inv: Inventory) -> str:
    text = "---" + FIRST_PLAY
    for play in plays(inv.playbook):
        names = []
        for role in role_names(play):
            names += [r for r in [*imported_roles(role), role] if r not in names]
        if names:
            text += ROLE_PLAY.format(name=json.dumps(play.get("name", "a play"))[1:-1], hosts=json.dumps(play["hosts"]),
                                     roles=json.dumps(names))  # fmt: skip
    return text


class Problem(NamedTuple):
    host: str
    task: str
    message: str


def message(result: dict) -> str:
    """The failure text of a task result: msg, argument errors, failed loop items."""
    parts = [str(result.get("msg", ""))] if result.get("msg") else []
    parts += [str(e) for e in result.get("argument_errors", [])]
    # A failed loop item of ansible.posix.json carries its msg but not always "failed".
    parts += [str(i["msg"]) for i in result.get("results", []) if i.get("msg") and i["msg"] != "All assertions passed"]
    return " ".join(" ".join(parts).split()) or "failed"


def problems(report: dict) -> list[Problem]:
    """Failed tasks per host from the ansible.posix.json callback's report."""
    found = []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task.get("hosts", {}).items():
                problem = Problem(host, task["task"]["name"], message(result))
                # A role imported by several (tomwerk_host) is checked, and refused, once per play.
                if (result.get("failed") or result.get("unreachable")) and problem not in found:
                    found.append(problem)
    return found


def run(inventory: str, release: int = 13, vault_password_file: str | None = None) -> tuple[int, list[Problem]]:
    """(hosts checked, problems). Raises InventoryError for a missing or empty inventory."""
    inv = Inventory(inventory)
    with tempfile.TemporaryDirectory(prefix="tomwerk-check-inventory-") as tmp:
        check = Path(tmp) / "check-inventory.yml"
        check.write_text(playbook(inv), encoding="utf-8")
        extra = Path(tmp) / "roles.json"
        extra.write_text(
            json.dumps({"tomwerk_check_release": release, "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable}),
            encoding="utf-8",
        )  # fmt: skip
        argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "-e", f"@{extra}"]
        if vault_password_file:
            argv += ["--vault-password-file", vault_password_file]
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": os.environ.get("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg")),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_ROLES_PATH": str(ROOT / "roles"),
        }
        proc = subprocess.run([*argv, str(check)], capture_output=True, text=True, env=env, timeout=900)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError("ansible-playbook failed: " + " | ".join(tail)) from None
    return len(inv.hosts()), problems(report)
