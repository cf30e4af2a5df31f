"""tomwerk: TOMs as code. Catalogue, inventory helpers and the command line."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
