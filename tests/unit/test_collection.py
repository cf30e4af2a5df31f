"""The repository is the Ansible collection tomwerk.toms (issue 18): every role and filter is
reached by FQCN, no role reaches outside its own folder, and the built collection installs
and runs from outside the tree (lab/collection.sh; in the lab it also converges a host)."""

from __future__ import annotations

import re
import subprocess
import tarfile
import tomllib

import pytest

from tests.unit.loaders import filter_plugin
from tomwerk import COLLECTION, ROOT
from tomwerk.roledoc import read_yaml

GALAXY = read_yaml(ROOT / "galaxy.yml")
ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
FILTERS = sorted(filter_plugin().FilterModule().filters())
ROLE_FILES = sorted(p for p in (ROOT / "roles").rglob("*") if p.is_file() and p.suffix in {".yml", ".j2"})
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yml"))


def test_the_collection_is_named_and_versioned_like_the_package():
    assert f"{GALAXY['namespace']}.{GALAXY['name']}" == COLLECTION
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert GALAXY["version"] == version, "galaxy.yml and pyproject.toml must carry the same version"


def test_the_tree_is_linked_as_the_collection():
    link = ROOT / ".collections" / "ansible_collections" / "tomwerk" / "toms"
    assert link.is_symlink() and link.resolve() == ROOT.resolve()


def role_references(path) -> list[str]:
    """Role names a task file or playbook names: include/import_role and roles: entries."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key.endswith(("import_role", "include_role")) and isinstance(value, dict):
                    found.append(value["name"])
                elif key == "roles" and isinstance(value, list):
                    found.extend(e if isinstance(e, str) else e.get("role") or e["name"] for e in value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(read_yaml(path))
    return found


@pytest.mark.parametrize("path", [*PLAYBOOKS, *(p for p in ROLE_FILES if "tasks" in p.parts)], ids=str)
def test_roles_are_named_by_fqcn(path):
    for name in role_references(path):
        if "{{" not in name:  # validate.yml loops over FQCN names (test_site_validation)
            assert name.startswith(COLLECTION + ".") and name.split(".")[-1] in ROLES, f"{path}: {name}"


@pytest.mark.parametrize("path", [*PLAYBOOKS, *ROLE_FILES], ids=str)
def test_filters_are_named_by_fqcn(path):
    short = re.compile(r"(?:\|\s*|['\"])(" + "|".join(FILTERS) + r")\b")
    text = path.read_text(encoding="utf-8")
    assert not [m.group(0) for m in short.finditer(text) if not text[: m.start(1)].endswith(COLLECTION + ".")], path


@pytest.mark.parametrize("path", ROLE_FILES, ids=str)
def test_no_role_reaches_outside_its_folder(path):
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"role_path[^\n]*?['\"/]\.\.", text), f"{path}: role_path/.. leaves the role"
    assert "playbook_dir" not in text and "inventory_dir" not in text, f"{path}: depends on the caller's tree"


def test_backup_target_reads_each_key_where_backup_writes_it():
    backup = read_yaml(ROOT / "roles" / "backup" / "vars" / "main.yml")["backup_config_dir"]
    target = read_yaml(ROOT / "roles" / "backup_target" / "vars" / "main.yml")["backup_target_client_key_file"]
    assert target == f"{backup}/id_ed25519.pub"


@pytest.mark.heavy
def test_the_built_collection_installs_and_a_fqcn_playbook_outside_the_tree_passes_syntax():
    proc = subprocess.run([ROOT / "lab" / "collection.sh", "check"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "passes the syntax check" in proc.stdout


@pytest.mark.heavy
def test_the_artifact_holds_the_roles_and_plugins_only(tmp_path):
    subprocess.run(
        ["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (artifact,) = tmp_path.glob("tomwerk-toms-*.tar.gz")
    with tarfile.open(artifact) as tar:
        top = {name.split("/")[0] for name in tar.getnames()}
    assert {"roles", "plugins", "playbooks", "meta", "galaxy.yml", "MANIFEST.json", "LICENSE"} <= top | {"galaxy.yml"}
    assert not top & {"tests", "lab", "tomwerk", "tomwerk_host", "inventories", ".collections", ".venv"}, top
