"""Fixtures several unit test modules share."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def berlin(monkeypatch):
    """The local time zone is Europe/Berlin, as on the recorded hosts."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
