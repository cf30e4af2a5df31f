"""The host package as the servers run it: the zipapp that role tomwerk_host installs."""

from __future__ import annotations

import functools
import sys
import tempfile
from pathlib import Path

from tomwerk import ROOT, pack


@functools.cache
def zipapp() -> Path:
    out = Path(tempfile.mkdtemp(prefix="tomwerk-host-")) / "tomwerk-host.pyz"
    return pack.pack_zipapp(ROOT / "tomwerk_host", out, "tomwerk_host.__main__:main")


def command(tool: str, python: str = sys.executable) -> list[str]:
    """argv that runs one tool from the zipapp (-I as the zipapp's own #! line does)."""
    return [python, "-I", str(zipapp()), tool]
