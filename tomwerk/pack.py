"""A reproducible tarball of what the admin host needs to run the checks.

Same input, same bytes: sorted names, fixed times and owners, no caches. So
Ansible's copy sees "unchanged" on every converge until the sources change.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tomwerk import ROOT

# What `tomwerk verify` and `tomwerk report` need, relative to the project root.
INCLUDE = [
    "tomwerk",
    "tests/__init__.py",
    "tests/conftest.py",
    "tests/compliance",
    "playbooks",
    "plugins",
    "toms.yml",
    "ansible.cfg",
    "pyproject.toml",  # pytest's settings: the tom marker
    "tomwerk_host",  # checks share the host package's parsers (retention)
    "docs/seeds.yml",
    "roles/*/defaults/main.yml",
    "roles/*/vars/main.yml",
    "roles/*/tasks/main.yml",  # marks a directory as a role for the checks
    "roles/*/files/alerts",
    "roles/*/files/grafana",  # the dashboard whose queries a check asks Prometheus
]
SKIP = {"__pycache__", ".pytest_cache"}
COLLECTION_LINK = ".collections/ansible_collections/tomwerk/toms"


def files(root: Path = ROOT) -> list[Path]:
    found: set[Path] = set()
    for pattern in INCLUDE:
        for path in root.glob(pattern):
            candidates = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            found |= {p for p in candidates if not SKIP & set(p.relative_to(root).parts) and p.suffix != ".pyc"}
    return sorted(found)


def _root_entry(name: str) -> tarfile.TarInfo:
    """A tar entry owned by root with a fixed time: the same tree packs to the same bytes."""
    info = tarfile.TarInfo(name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "root", "root"
    return info


def pack(out: str | Path, root: Path = ROOT) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in files(root):
            info = _root_entry(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size, info.mode = len(data), 0o755 if path.stat().st_mode & 0o111 else 0o644
            tar.addfile(info, io.BytesIO(data))
        # The checks template role variables with the collection's filters (tomwerk.toms.*):
        # ansible.cfg finds the collection through this link to the tree, kept as a link.
        link = root / COLLECTION_LINK
        if link.is_symlink():
            info = _root_entry(COLLECTION_LINK)
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, str(link.readlink()), 0o777
            tar.addfile(info)
    return _write_if_changed(out, buf.getvalue())


# -I: no environment variables, user site or current directory steer the host tools (run as root).
INTERPRETER = b"#!/usr/bin/python3 -I\n"


def pack_zipapp(package: Path, out: str | Path, entry: str) -> Path:
    """A reproducible, executable zipapp of one package: running it (or a link to it) runs
    `entry` (module:function)."""
    import zipfile

    module, _, function = entry.partition(":")
    members = {"__main__.py": f"import sys\nfrom {module} import {function}\nsys.exit({function}())\n".encode()}
    for path in sorted(package.rglob("*.py")):
        if not SKIP & set(path.parts):
            members[(Path(package.name) / path.relative_to(package)).as_posix()] = path.read_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, members[name])
    return _write_if_changed(out, INTERPRETER + buf.getvalue())


def _write_if_changed(out: str | Path, data: bytes) -> Path:
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists() or target.read_bytes() != data:
        target.write_bytes(data)
    return target
