"""Shared pytest plumbing: the TOM marker, the inventory, and evidence records.

Every check is marked with the TOM it verifies (`@pytest.mark.tom("TOM-SSH-01")`)
and records what it observed through the `evidence` fixture; both end up in
the JUnit XML that `tomwerk verify` turns into the evidence report.
"""

from __future__ import annotations

import json

import pytest

from tomwerk import ROOT
from tomwerk.verify import item_host

try:  # the lab's containers: `nsenter://NAME` (lab/nsenter.py; not in the suite the admin host runs)
    from lab.nsenter import register_testinfra_backend
except ImportError:
    pass
else:
    register_testinfra_backend()


def pytest_addoption(parser):
    parser.addoption(
        "--inventory",
        default=str(ROOT / "inventories" / "lab"),
        help="Ansible inventory the compliance checks read and run against (default: the lab)",
    )


def pytest_collection_modifyitems(items):
    # The TOM id, what the check verifies (its docstring) and the host travel
    # with every result into JUnit XML: `tomwerk verify` reads them from there.
    for item in items:
        for mark in item.iter_markers("tom"):
            item.user_properties.append(("tom", mark.args[0]))
        doc = (getattr(item, "function", None) and item.function.__doc__) or ""
        if doc.strip():
            item.user_properties.append(("check", " ".join(doc.strip().split("\n\n")[0].split())))
        host = item_host(item)  # None for a group without hosts in the inventory (pytest skips it)
        if host:
            item.user_properties.append(("host", host))


@pytest.fixture
def evidence(record_property):
    """Record an observed value: evidence("PasswordAuthentication", "no")."""

    def record(what: str, value) -> None:
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        record_property(f"observed:{what}", text)

    return record
