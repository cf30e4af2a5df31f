"""tomwerk: TOMs as code. Catalogue, inventory helpers and the command line."""

import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def _project_root() -> Path:
    """The tomwerk project (toms.yml, roles, playbooks, checks) the commands work on.

    TOMWERK_PROJECT (`tomwerk --project DIR` sets it), else the source tree this
    package lives in, else the nearest directory above the working directory that
    holds toms.yml. An installed wheel has no project of its own."""
    given = os.environ.get("TOMWERK_PROJECT")
    if given:
        return Path(given).resolve()
    source = Path(__file__).resolve().parent.parent
    if (source / "toms.yml").is_file():
        return source
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "toms.yml").is_file() and (folder / "roles").is_dir():
            return folder
    return source


ROOT = _project_root()
# The Ansible collection the roles and filters ship in (galaxy.yml): roles are named tomwerk.toms.<role>.
COLLECTION = "tomwerk.toms"


def collections_path() -> str:
    """ANSIBLE_COLLECTIONS_PATH for the playbooks tomwerk runs: the project's own collection
    first (.collections links the tree as tomwerk.toms), then whatever the user set."""
    given = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    return os.pathsep.join([str(ROOT / ".collections"), *([given] if given else [])])


try:  # pyproject.toml is the one place the version is written
    __version__ = version("tomwerk")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
