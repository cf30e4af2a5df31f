"""Backups proven by their outcome in the lab (TOM-BAK-01..03): a run leaves a
fresh encrypted snapshot in all three cities, the restore drill gives back
byte-identical data, one target down does not stop the others (metric and
alert show it, the next run catches up), and a deleted file ages out."""

from __future__ import annotations

import json
import shlex
import time

import pytest
import testinfra

from tests.compliance.promql import query
from tests.lab.conftest import (
    LAB_INVENTORY,
    PROMETHEUS,
    ansible_playbook,
    has_alert,
    lab_host,
    notification_count,
    recap,
    wait_for,
)

CLIENT = "web1"
CONFIG = "/etc/tomwerk/backup/config.json"
STATUS = "/var/lib/tomwerk/backup/status.json"
KEYS = "/etc/tomwerk/backup/id_ed25519"


@pytest.fixture(scope="module")
def web1():
    return lab_host(CLIENT)


def status(host) -> dict:
    return json.loads(host.file(STATUS).content_string)["locations"]


def run_backup(host, config: str = CONFIG):
    return host.run(f"/usr/local/sbin/tomwerk-backup --config {config} run")


def restic(host, location: dict, args: str):
    cfg = json.loads(host.file(CONFIG).content_string)
    sftp = shlex.quote(f"sftp.command={location['sftp_command']}")
    return host.run(
        f"RESTIC_PASSWORD_FILE={cfg['password_file']} RESTIC_CACHE_DIR=/var/cache/tomwerk-backup "
        f"restic -r {shlex.quote(location['repository'])} -o {sftp} {args}"
    )


def locations(host) -> list[dict]:
    return json.loads(host.file(CONFIG).content_string)["locations"]


@pytest.mark.tom("TOM-BAK-01")
def test_a_run_leaves_a_fresh_snapshot_in_all_three_cities(web1):
    started = time.time()
    result = run_backup(web1)
    assert result.rc == 0, result.stdout[-2000:]
    now = status(web1)
    assert len({v["city"] for v in now.values()}) >= 3
    for name, value in now.items():
        assert value["last_success"] >= started - 1, name
        snapshots = json.loads(restic(web1, next(loc for loc in locations(web1) if loc["location"] == name),
                                      "snapshots --json --latest 1").stdout)  # fmt: skip
        assert snapshots and snapshots[-1]["short_id"] in (value["snapshot_id"] or "") + snapshots[-1]["short_id"]


@pytest.mark.tom("TOM-BAK-01")
def test_restore_drill_gives_back_identical_data(web1):
    result = ansible_playbook("playbooks/restore-drill.yml", "--limit", CLIENT)
    assert result.returncode == 0, result.stdout[-3000:]
    drill = json.loads(web1.file("/var/lib/tomwerk/backup/drill.json").content_string)["locations"]
    assert len(drill) >= 3
    for name, value in drill.items():
        assert value["success"], (name, value)
        assert value["files_compared"] > 0 and value["mismatches"] == [], name
    scratch = json.loads(web1.file(CONFIG).content_string)["drill_dir"]
    assert not web1.file(scratch).exists or not web1.check_output(f"ls -A {scratch}"), "drill left data behind"


@pytest.mark.tom("TOM-BAK-01")
def test_one_target_down_fails_alone_is_alerted_and_caught_up(web1):
    down = "backup-berlin"
    berlin = next(loc for loc in locations(web1) if loc["city"] == "Berlin")
    before = status(web1)[berlin["location"]]["last_success"]
    monitor = lab_host("monitor1")
    sink_start = notification_count(monitor)
    testinfra.get_host("local://").check_output(f"podman stop --time 5 {down}")
    try:
        result = run_backup(web1)
        assert result.rc == 1, result.stdout[-2000:]
        after = status(web1)
        assert after[berlin["location"]]["error"] and after[berlin["location"]]["last_success"] == before
        others = [v for k, v in after.items() if k != berlin["location"]]
        assert all(v["error"] == "" and v["last_success"] > before for v in others)
        # The exporter shows it, and the alert reaches the receiver.
        expr = f'tomwerk_backup_last_run_success{{instance="{CLIENT}",location="{berlin["location"]}"}}'
        wait_for(
            "the failure metric", lambda: [r for r in query(monitor, PROMETHEUS, expr) if r["value"][1] == "0"], 90
        )
        labels = {"instance": CLIENT, "location": berlin["location"]}
        wait_for(
            "BackupRunFailed at the receiver",
            lambda: has_alert(monitor, sink_start, "firing", "BackupRunFailed", **labels),
            180,
        )
    finally:
        testinfra.get_host("local://").check_output(f"podman start {down}")
        target = lab_host(down)
        wait_for("the target to boot", lambda: target.run("systemctl is-active tomwerk-backup-sshd").rc == 0, 120)
    caught_up = run_backup(web1)
    assert caught_up.rc == 0, caught_up.stdout[-2000:]
    assert status(web1)[berlin["location"]]["last_success"] > before


@pytest.mark.tom("TOM-BAK-03")
def test_a_deleted_file_ages_out_of_every_location(web1):
    canary = "/srv/tw-deletion-canary.txt"
    web1.check_output(f"head -c 64 /dev/urandom | base64 > {canary}")
    assert run_backup(web1).rc == 0
    for loc in locations(web1):
        assert canary in restic(web1, loc, f"ls latest {canary}").stdout, loc["location"]
    web1.check_output(f"rm {canary}")
    # A short retention window: keep only the newest snapshot.
    short = "/etc/tomwerk/backup/config-short-retention.json"
    cfg = json.loads(web1.file(CONFIG).content_string)
    cfg["retention"] = {"keep_last": 1}
    web1.check_output(f"umask 077; echo {shlex.quote(json.dumps(cfg))} > {short}")
    try:
        assert run_backup(web1, short).rc == 0
    finally:
        web1.run(f"rm -f {short}")
    for loc in locations(web1):
        found = restic(web1, loc, f"find --json {canary}")
        assert found.rc == 0 and json.loads(found.stdout or "[]") in ([], None), (loc["location"], found.stdout)


@pytest.mark.tom("TOM-BAK-02")
def test_a_run_limited_to_the_targets_installs_every_servers_key(lab):
    """site.yml limited to a backup target (no backup client in the run, as in --limit backup_targets)
    succeeds: the target reads the servers' keys from the servers, and every account holds exactly its
    server's key. One target, to keep the run short; the role does the same on each."""
    target = lab.hosts("backup_targets")[-1]
    result = ansible_playbook("playbooks/site.yml", "--limit", target, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:]
    assert recap(result.stdout, target)["failed"] == 0
    host = lab_host(target)
    for client in lab.hosts("backup_clients"):
        expected = lab_host(client).file(f"{KEYS}.pub").content_string.split()[:2]
        installed = host.file(f"/etc/ssh/tomwerk_backup_keys/bk-{client}").content_string.split()[:2]
        assert installed == expected, f"{target} holds another key for {client}"


# Only the role under test: the refusal happens inside it, before its first change.
TARGET_ONLY = """
- name: Backup target only
  hosts: {target}
  gather_subset: [min]
  roles: [tomwerk.toms.backup_target]
"""


@pytest.mark.tom("TOM-BAK-02")
def test_a_target_run_refuses_while_a_server_has_no_key(lab, web1, tmp_path):
    """A server without its backup key is named with the fix, before the target changes anything."""
    target = lab.hosts("backup_targets")[0]
    host = lab_host(target)
    before = host.file(f"/etc/ssh/tomwerk_backup_keys/bk-{CLIENT}").sha256sum
    playbook = tmp_path / "target.yml"
    playbook.write_text(TARGET_ONLY.format(target=target))
    web1.run_test(f"mv {KEYS}.pub {KEYS}.pub.aside")
    try:
        result = ansible_playbook(str(playbook), "-i", str(LAB_INVENTORY), timeout=600)
    finally:
        web1.run_test(f"mv {KEYS}.pub.aside {KEYS}.pub")
    assert result.returncode != 0
    said = " ".join(result.stdout.split())  # the message may be wrapped in the output
    assert f"{CLIENT} in backup_target_clients has no backup key" in said, result.stdout[-3000:]
    assert f"--limit {CLIENT},backup_targets" in said
    assert recap(result.stdout, target)["failed"] == 1
    assert recap(result.stdout, target)["changed"] == 0
    assert host.file(f"/etc/ssh/tomwerk_backup_keys/bk-{CLIENT}").sha256sum == before
