"""TOM-LOG-03: the log server keeps the servers' logs per host for a set time only, and
the raw attack lines in a separate store for 7 days at most."""

from __future__ import annotations

import datetime as dt

import pytest

ROLE = "log_server"


@pytest.mark.tom("TOM-LOG-03")
def test_stores_are_separate_and_closed(host, role_vars, evidence):
    for key in ("log_server_store", "log_server_attack_store"):
        store = host.file(role_vars[key])
        evidence(key, f"{store.user}:{store.group} {oct(store.mode)}")
        assert store.is_directory and store.user == "root" and store.mode & 0o007 == 0
    assert host.socket(f"tcp://0.0.0.0:{role_vars['log_server_port']}").is_listening


@pytest.mark.tom("TOM-LOG-03")
@pytest.mark.parametrize(
    ("store", "days"),
    [
        ("log_server_store", "log_server_retention_days"),
        ("log_server_attack_store", "log_server_attack_retention_days"),
    ],
)
def test_day_files_past_the_retention_are_deleted(host, role_vars, store, days, evidence):
    limit = int(role_vars[days])
    now = dt.datetime.now(dt.UTC)
    folder = f"{role_vars[store]}/retention-test"
    old = f"{folder}/{(now - dt.timedelta(days=limit + 1)):%Y-%m-%d}.log"
    young = f"{folder}/{now:%Y-%m-%d}.log"
    host.check_output(f"mkdir -p {folder} && echo aged > {old} && echo fresh > {young}")
    try:
        host.check_output("systemctl start tomwerk-log-server-retention.service")
        evidence(f"{store}: aged day file deleted", not host.file(old).exists)
        assert not host.file(old).exists
        assert host.file(young).exists
        if days == "log_server_attack_retention_days":
            assert limit <= 7
    finally:
        host.run(f"rm -rf {folder}")
