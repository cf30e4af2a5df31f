"""tomwerk: TOMs as code. Catalogue, inventory helpers and the command line."""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

try:  # pyproject.toml is the one place the version is written
    __version__ = version("tomwerk")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
