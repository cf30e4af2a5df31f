"""The lab's nsenter PID cache (lab/nsenter.py): it must outlive Ansible's
per-task workers, and it must never send a command into the wrong process."""

from __future__ import annotations

import tempfile

import pytest

from lab import nsenter

CONTAINER_ID = "9f60b226bb8492c323e285b77acac2a5d086e110264497fa2a9c0a30189fcd12"


@pytest.fixture
def fake_proc(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    proc = tmp_path / "proc"
    monkeypatch.setattr(nsenter, "PROC_ROOT", str(proc))

    def process(pid: int, cgroup: str) -> None:
        (proc / str(pid)).mkdir(parents=True)
        (proc / str(pid) / "cgroup").write_text(cgroup)

    return process


def test_a_stored_pid_is_found_again_while_it_runs_in_the_container(fake_proc):
    fake_proc(514, f"8:pids:/libpod_parent/libpod-{CONTAINER_ID}\n")
    nsenter.store_pid("web1", 514, CONTAINER_ID)
    assert nsenter.cached_pid("web1") == 514


def test_a_pid_now_used_outside_the_container_is_not_trusted(fake_proc):
    fake_proc(514, "0::/init.scope\n")
    nsenter.store_pid("web1", 514, CONTAINER_ID)
    assert nsenter.cached_pid("web1") is None


def test_a_gone_process_or_no_cache_means_asking_podman(fake_proc):
    assert nsenter.cached_pid("web1") is None
    nsenter.store_pid("web1", 514, CONTAINER_ID)
    assert nsenter.cached_pid("web1") is None  # no /proc/514


def test_each_container_has_its_own_entry(fake_proc):
    fake_proc(514, f"8:pids:/libpod_parent/libpod-{CONTAINER_ID}\n")
    nsenter.store_pid("web1", 514, CONTAINER_ID)
    assert nsenter.cached_pid("mail1") is None
