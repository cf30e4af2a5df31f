"""Every role is built the same safe way: argument_specs as the single source
of truth for its input, and its checks before any change."""

from __future__ import annotations

import re
import shutil

import pytest

from tomwerk import ROOT, catalogue, roledoc
from tomwerk.check_inventory import imported_roles
from tomwerk.inventory import plays, role_names, short_role
from tomwerk.roledoc import read_yaml

TOMS = catalogue.load()

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())


def specs(role: str) -> dict:
    return read_yaml(ROOT / "roles" / role / "meta" / "argument_specs.yml")["argument_specs"]


@pytest.mark.parametrize("role", ROLES)
def test_role_has_argument_specs(role):
    entry = specs(role)["main"]
    assert entry.get("short_description")
    assert entry.get("options"), "every role documents its input"


@pytest.mark.parametrize("role", ROLES)
def test_validate_entry_point_takes_the_same_options(role):
    all_specs = specs(role)
    assert "validate" in all_specs, "every role offers a validate entry point (checks only)"
    assert all_specs["validate"]["options"] == all_specs["main"]["options"]
    assert (ROOT / "roles" / role / "tasks" / "validate.yml").exists()


@pytest.mark.parametrize("role", ROLES)
def test_main_validates_first(role):
    """The first task of main.yml imports validate.yml: nothing changes before the checks."""
    first = read_yaml(ROOT / "roles" / role / "tasks" / "main.yml")[0]
    assert first.get("ansible.builtin.import_tasks") == "validate.yml", first


@pytest.mark.parametrize("role", ROLES)
def test_no_meta_dependencies(role):
    """include_role runs a role's meta dependencies before any entry point, also before
    `tasks_from: validate`: a dependency would change the host before the checks (or the
    controller, in test_bad_input). Roles import what they need after validating."""
    assert read_yaml(ROOT / "roles" / role / "meta" / "main.yml").get("dependencies", []) == [], role


@pytest.mark.parametrize("role", ROLES)
def test_validate_changes_nothing(role):
    """validate.yml (and any other validate_* entry point) only asserts, includes more checks, or sets
    facts; or runs a read-only program (READ_ONLY) that reports no change, also in check mode."""
    allowed = {"ansible.builtin.assert", "ansible.builtin.include_tasks", "ansible.builtin.set_fact"}
    for path in (ROOT / "roles" / role / "tasks").glob("validate*.yml"):
        for task in read_yaml(path):
            modules = {k for k in task if k.startswith("ansible.")}
            if modules == {"ansible.builtin.command"}:
                program = str(task["ansible.builtin.command"]).split()[0]
                assert program in READ_ONLY, f"{path.name}: {task.get('name')}: {program} may change the host"
                assert task.get("changed_when") is False and task.get("check_mode") is False, task.get("name")
                continue
            assert modules <= allowed, f"{path.name}: {task.get('name')}: {modules - allowed}"


# Programs a validate entry point may run: they only read (firewall asks the login session for SSH_CLIENT).
READ_ONLY = {"printenv"}


@pytest.mark.parametrize("role", ROLES)
def test_other_entry_points_validate_first(role):
    """An entry point X with a check-only twin validate_X imports it as its first task,
    so the twin the bad-input tests run is the check X really makes."""
    for entry in specs(role):
        if entry.startswith("validate_"):
            first = read_yaml(ROOT / "roles" / role / "tasks" / f"{entry.removeprefix('validate_')}.yml")[0]
            assert first.get("ansible.builtin.import_tasks") == f"{entry}.yml", first
            assert specs(role)[entry]["options"] == specs(role)[entry.removeprefix("validate_")]["options"]


@pytest.mark.parametrize("role", ROLES)
def test_defaults_are_documented_and_agree(role):
    """Every default is an option of argument_specs, and a default given in both places is the same."""
    defaults = read_yaml(ROOT / "roles" / role / "defaults" / "main.yml") or {}
    options = specs(role)["main"]["options"]
    undocumented = set(defaults) - set(options)
    assert not undocumented, f"defaults without argument_specs entry: {sorted(undocumented)}"
    for name, spec in options.items():
        if "default" in spec and name in defaults:
            assert spec["default"] == defaults[name], name


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_are_prefixed(role):
    """Role variables carry the role name, so one name means one thing everywhere."""
    defaults = read_yaml(ROOT / "roles" / role / "defaults" / "main.yml") or {}
    assert all(name.startswith(role + "_") for name in defaults)


def test_site_uses_only_existing_roles():
    for play in plays():
        for role in role_names(play):
            assert role in ROLES, role


@pytest.mark.parametrize("role", ROLES)
def test_no_setting_is_built_in_set_order(role):
    # union/intersect/symmetric_difference go through a Python set: the order
    # of the result changes with each run's string hashing, so a value written
    # to the host from it differs between two converges (idempotence).
    # difference in an assert (a length check) is harmless and stays allowed.
    for path in sorted((ROOT / "roles" / role).rglob("*")):
        if path.suffix in {".yml", ".j2"}:
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for word in ("union(", "intersect(", "symmetric_difference("):
                    where = f"{path.relative_to(ROOT)}:{number}"
                    assert word not in line, f"{where} uses {word[:-1]}: use an order-keeping filter"


def test_exporter_unit_names_every_allowed_client_and_keeps_its_lines():
    """The TOM exporter's unit, rendered as Ansible does (trim_blocks): every allowed client is its own
    option, and the lines after ExecStart stay lines (a swallowed newline once glued Restart= onto a name)."""
    import re

    import jinja2

    # A systemd unit, not HTML: nothing to escape.
    env = jinja2.Environment(trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)  # noqa: S701
    env.filters["regex_replace"] = lambda value, pattern, repl: re.sub(pattern, repl, value)
    template = (ROOT / "roles" / "tom_exporter" / "templates" / "tomwerk-exporter.service.j2").read_text()
    unit = env.from_string(template).render(
        ansible_managed="test",
        tomwerk_host_artifact="/usr/local/lib/tomwerk/tomwerk-host.pyz",
        tom_exporter_listen_address="10.0.0.5",
        tom_exporter_port=9840,
        tom_exporter_min_interval_seconds=30,
        tom_exporter_tls_cert_file="/etc/tomwerk/pki/host.crt",
        tom_exporter_tls_key_file="/etc/tomwerk/pki/host.key",
        tom_exporter_tls_ca_file="/etc/tomwerk/pki/ca.crt",
        tom_exporter_tls_clients=["monitor1", "web1"],
    )
    joined = unit.replace("\\\n", " ")  # systemd's line continuation
    command = re.search(r"^ExecStart=(.*)$", joined, re.MULTILINE).group(1).split()
    assert [command[i + 1] for i, arg in enumerate(command) if arg == "--tls-allowed-client"] == ["monitor1", "web1"]
    assert re.search(r"^Restart=on-failure$", unit, re.MULTILINE)


GROUP_LIST = re.compile(r"groups\[['\"][\w-]+['\"]\](?:\s*\|\s*default\(\[\]\))?(?P<next>\s*\|\s*\w+)?")


@pytest.mark.parametrize("role", ROLES)
def test_host_lists_from_groups_are_sorted(role):
    """A host list taken from groups[...] is sorted before it becomes config.

    Group order depends on how an inventory is written (Molecule's generated
    one lists hosts differently from inventories/lab); unsorted, the audit of
    the lab reported changed Prometheus, unbound and firewall files that only
    differed in order."""
    for path in (ROOT / "roles" / role).glob("*/*.yml"):
        if path.parent.name == "meta":
            continue
        for found in GROUP_LIST.finditer(path.read_text()):
            nxt = (found.group("next") or "").replace("|", "").strip()
            if " in groups[" in path.read_text()[max(0, found.start() - 12) : found.start() + 8]:
                continue  # a membership test, not a list
            assert nxt == "sort", f"{path.relative_to(ROOT)}: {found.group(0)!r} is not sorted"


def test_site_tags_each_role_with_its_name_and_toms():
    """`--tags tom-ssh-01` (or the role's name) selects exactly the roles that serve that TOM in toms.yml."""
    from tomwerk import audit, catalogue

    serves = audit.toms_by_role(catalogue.load())
    seen = set()
    for play in plays():
        for entry in play.get("roles", []):
            assert isinstance(entry, dict), f"{play['name']}: {entry} has no tags"
            role = short_role(entry["role"])
            seen.add(role)
            assert entry.get("tags") == [role, *(t.lower() for t in serves.get(role, []))], role
    # A support role runs inside the roles that import it, under their tags.
    assert seen.union(*map(imported_roles, seen)) == set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_role_readme_is_generated_from_its_argument_specs(role):
    """roles/<role>/README.md is what argument_specs, meta and the catalogue make of it."""
    path = ROOT / "roles" / role / "README.md"
    assert path.exists(), f"{path} is missing: run `make readme`"
    assert path.read_text(encoding="utf-8") == roledoc.role_readme(role, TOMS), f"{path} is stale: run `make readme`"


def test_role_readme_follows_a_changed_spec(tmp_path):
    """The staleness check can fail: a changed option description changes the README."""
    role_dir = tmp_path / "roles" / "ssh_access"
    shutil.copytree(ROOT / "roles" / "ssh_access", role_dir)
    spec_file = role_dir / "meta" / "argument_specs.yml"
    spec_file.write_text(spec_file.read_text().replace("TCP port sshd listens on.", "The port."))
    before = roledoc.role_readme("ssh_access", TOMS)
    after = roledoc.role_readme("ssh_access", TOMS, root=tmp_path)
    assert "| TCP port sshd listens on. |" in before
    assert "| The port. |" in after and before.replace("TCP port sshd listens on.", "The port.") == after


def test_generated_markdown_has_no_bare_angle_bracket():
    """GitHub drops <placeholder> outside code spans as an HTML tag; the generators escape it."""
    from tomwerk import runbooks

    files = [ROOT / "roles" / role / "README.md" for role in ROLES] + [runbooks.MARKDOWN]
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.startswith("<!--"):
                continue
            prose = "".join(part for i, part in enumerate(line.split("`")) if i % 2 == 0)
            assert "<" not in prose, f"{path}:{number}: {line}"
