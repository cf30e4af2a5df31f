"""Values as Ansible writes them into the hosts' state and config files."""

from __future__ import annotations


def to_int(value: object) -> int | None:
    """An int from an int or an all-digit string (how Ansible may write a port); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
