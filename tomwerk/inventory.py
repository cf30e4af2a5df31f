"""An Ansible inventory seen the way the roles see it.

The checks must read the same variables the roles applied. This module loads
an inventory with Ansible's own API, works out which roles each host carries
from playbooks/site.yml, and templates a role's defaults overlaid with the
inventory exactly as a play would (defaults < inventory < role vars).
"""

from __future__ import annotations

import functools
import os
from functools import cached_property
from pathlib import Path

import yaml

from tomwerk import COLLECTION, ROOT

SITE = ROOT / "playbooks" / "site.yml"
ROLES = ROOT / "roles"
PODMAN_CONNECTIONS = {"podman", "containers.podman.podman"}
LOCAL_CONNECTIONS = {"local", "ansible.builtin.local"}


@functools.cache
def _ensure_ansible() -> None:
    # The project's ansible.cfg (filter plugins, roles) and the lab's key dir,
    # set before Ansible reads its configuration; once per process.
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    os.environ.setdefault("TOMWERK_LAB_DIR", str(ROOT / ".lab"))
    # A source Ansible cannot parse is an error, not a warning and an empty inventory.
    os.environ.setdefault("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "true")
    try:
        from ansible.plugins.loader import init_plugin_loader
    except ImportError:  # ansible-core < 2.15 loads plugins on demand
        return
    init_plugin_loader()


def plays(playbook: Path = SITE, skip: frozenset[str] = frozenset()) -> list[dict]:
    """The plays of a playbook, following import_playbook (except imports named in skip)."""
    result = []
    for play in yaml.safe_load(playbook.read_text(encoding="utf-8")) or []:
        imported = play.get("ansible.builtin.import_playbook") or play.get("import_playbook")
        if imported:
            if imported not in skip:
                result.extend(plays(playbook.parent / imported, skip))
        else:
            result.append(play)
    return result


def short_role(name: str) -> str:
    """A role's name inside the collection: tomwerk.toms.ssh_access -> ssh_access."""
    return name.removeprefix(COLLECTION + ".")


def role_names(play: dict) -> list[str]:
    """The roles of a play by their short names (site.yml names them by FQCN)."""
    names = []
    for entry in play.get("roles", []):
        names.append(short_role(entry if isinstance(entry, str) else entry.get("role") or entry["name"]))
    return names


class InventoryError(Exception):
    """The inventory cannot be used: missing, unparsable or without hosts (one line, for the user)."""


class Inventory:
    def __init__(self, source: str | Path, playbook: Path = SITE):
        _ensure_ansible()
        from ansible.errors import AnsibleError
        from ansible.inventory.manager import InventoryManager
        from ansible.parsing.dataloader import DataLoader
        from ansible.vars.hostvars import HostVars
        from ansible.vars.manager import VariableManager

        self.source = str(Path(source).resolve())
        self.playbook = playbook
        if not Path(self.source).exists():
            raise InventoryError(f"no inventory at {self.source}")
        self._loader = DataLoader()
        try:
            self._inventory = InventoryManager(loader=self._loader, sources=[self.source])
        except AnsibleError as exc:
            raise InventoryError(f"{self.source}: {str(exc).splitlines()[0]}") from exc
        if not self._inventory.hosts:
            # Checking nothing must never look like a pass.
            raise InventoryError(f"{self.source}: the inventory names no hosts")
        self._variables = VariableManager(loader=self._loader, inventory=self._inventory)
        # Registers itself with the variable manager: `hostvars` in templates.
        HostVars(inventory=self._inventory, variable_manager=self._variables, loader=self._loader)

    # Plain str, not Ansible's tagged str: host names travel into pytest's ids,
    # JUnit and JSON, and across processes when verify runs several jobs.
    def groups(self) -> dict[str, list[str]]:
        """Group name -> host names (direct and through child groups)."""
        return {
            str.__str__(name): [str.__str__(h.name) for h in group.get_hosts()]
            for name, group in self._inventory.groups.items()
        }

    def hosts(self, pattern: str = "all") -> list[str]:
        return [str.__str__(h.name) for h in self._inventory.get_hosts(pattern)]

    @cached_property
    def roles_by_host(self) -> dict[str, list[str]]:
        """Roles each host carries, in the order site.yml applies them."""
        mapping: dict[str, list[str]] = {name: [] for name in self.hosts()}
        for play in plays(self.playbook):
            for host in self.hosts(play["hosts"]):
                for role in role_names(play):
                    if role not in mapping[host]:
                        mapping[host].append(role)
        return mapping

    def hosts_with_role(self, role: str) -> list[str]:
        return [h for h, roles in self.roles_by_host.items() if role in roles]

    def raw_vars(self, host: str) -> dict:
        """Inventory variables and magic variables of a host, untemplated."""
        return self._variables.get_vars(host=self._inventory.get_host(host), include_hostvars=True)

    def templated(self, host: str, value, extra: dict | None = None):
        from ansible.template import Templar

        variables = dict(self.raw_vars(host))
        variables.update(extra or {})
        return Templar(loader=self._loader, variables=variables).template(value)

    def _role_context(self, host: str, role: str):
        """A templar with what a role sees on host (its defaults < inventory < its vars/main.yml)."""
        from ansible.template import Templar

        defaults = self._load_role_file(role, "defaults")
        fixed = self._load_role_file(role, "vars")
        inventory = self.raw_vars(host)
        # The magic variables a play would give the role.
        magic = {"role_path": str(ROLES / role), "role_name": role, "playbook_dir": str(self.playbook.parent)}
        variables = {**magic, **defaults, **inventory, **fixed}
        names = set(defaults) | set(fixed) | {k for k in inventory if k.startswith(role + "_")}
        return Templar(loader=self._loader, variables=variables), variables, names

    def role_vars(self, host: str, role: str) -> dict:
        """The variables a role sees on host: its defaults < inventory < its vars/main.yml."""
        from ansible.errors import AnsibleUndefinedVariable

        templar, variables, names = self._role_context(host, role)
        found = {}
        for name in sorted(names):
            try:
                found[name] = templar.template(variables[name])
            except AnsibleUndefinedVariable:
                # Built from what the role reads on the host at run time (retention reads
                # log_privacy's state file): not known from the inventory, so left out.
                continue
        return found

    def state_toms(self, host: str, role: str) -> list[str]:
        """The TOMs the role records for the exporter on host (`toms` of <role>_state)."""
        templar, variables, _ = self._role_context(host, role)
        state = variables.get(f"{role}_state")
        if not isinstance(state, dict):
            return []
        return [str(t) for t in templar.template(state.get("toms") or [])]

    def _load_role_file(self, role: str, kind: str) -> dict:
        # Ansible's loader marks the data as trusted templates, as a play would.
        path = ROLES / role / kind / "main.yml"
        if not path.exists():
            return {}
        try:
            return self._loader.load_from_file(str(path), trusted_as_template=True) or {}
        except TypeError:  # ansible-core < 2.19 (the admin host's) has no template trust
            return self._loader.load_from_file(str(path)) or {}

    def var(self, host: str, name: str):
        """One templated inventory variable (no role defaults)."""
        return self.templated(host, self.raw_vars(host)[name])

    def testinfra_spec(self, host: str) -> str:
        """How the checks reach host: the inventory's tomwerk_testinfra_spec (a testinfra host spec,
        e.g. the lab's nsenter://web1), else what its ansible_connection says, else Ansible itself."""
        hostvars = self.raw_vars(host)
        if "tomwerk_testinfra_spec" in hostvars:
            return str(self.var(host, "tomwerk_testinfra_spec"))
        connection = str(hostvars.get("ansible_connection", "ssh"))
        if connection in PODMAN_CONNECTIONS:
            return "podman://" + str(hostvars.get("ansible_host", host))
        if connection in LOCAL_CONNECTIONS:
            return "local://"
        return f"ansible://{host}?ansible_inventory={self.source}"
