"""Commands in the lab's containers through nsenter instead of `podman exec`.

`podman exec` starts podman, conmon and runc for every command: about a
second of wall time on the lab's two busy cores, where nsenter takes a few
milliseconds. Both Ansible (lab/plugins/connection/podman_nsenter.py) and the
checks (testinfra's `nsenter://NAME` backend, registered here) use it.
Rootful podman on this machine only: the containers' processes must be ours.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from typing import Any

PROC_ROOT = "/proc"
# What `podman exec` gives a command (podman exec web1 env), and nothing of
# the caller's environment (the controller's venv, ANSIBLE_* and LANG).
PODMAN_EXEC_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ContainerNotRunning(RuntimeError):
    pass


def _cache_file(container: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"tomwerk-nsenter-{os.getuid()}", container.replace("/", "_"))


def cached_pid(container: str) -> int | None:
    """The cached PID of the container's init, if that process still sits in the container's cgroup."""
    try:
        with open(_cache_file(container), encoding="ascii") as cached:
            pid_text, container_id = cached.read().split()
        with open(f"{PROC_ROOT}/{int(pid_text)}/cgroup", encoding="ascii") as cgroup:
            if f"libpod-{container_id}" in cgroup.read():
                return int(pid_text)
    except (OSError, ValueError):
        pass
    return None


def store_pid(container: str, pid: int, container_id: str) -> None:
    path = _cache_file(container)
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(f"{pid} {container_id}\n")
        os.replace(tmp, path)
    except OSError:
        pass  # no cache: the next caller asks podman again


def container_pid(container: str) -> int:
    """PID of the container's init on this machine.

    Cached in a file, because Ansible forks a worker per task and host and an
    in-process cache would be lost after each task. A restarted or recreated
    container fails the cgroup test and is looked up again.
    """
    pid = cached_pid(container)
    if pid is not None:
        return pid
    proc = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Pid}} {{.Id}}", container],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    fields = proc.stdout.split()
    if proc.returncode != 0 or len(fields) != 2 or not fields[0].isdigit() or fields[0] == "0":
        raise ContainerNotRunning(f"container {container} is not running: {proc.stderr.strip()}")
    store_pid(container, int(fields[0]), fields[1])
    return int(fields[0])


def register_testinfra_backend() -> None:
    """Make `nsenter://NAME` (and `nsenter://USER@NAME`) a testinfra host spec."""
    import testinfra.backend

    testinfra.backend.BACKENDS.setdefault("nsenter", f"{__name__}.NsenterBackend")


try:
    from testinfra.backend import base as _testinfra_base
except ImportError:  # the admin host's exporter and report need no testinfra
    _testinfra_base = None

if _testinfra_base is not None:

    class NsenterBackend(_testinfra_base.BaseBackend):
        """testinfra's podman backend, entering the container with nsenter."""

        NAME = "nsenter"

        def __init__(self, name: str, *args: Any, **kwargs: Any):
            self.name, self.user = self.parse_containerspec(name)
            super().__init__(self.name, *args, **kwargs)

        def run(self, command: str, *args: str, **kwargs: Any) -> _testinfra_base.CommandResult:
            cmd = self.get_command(command, *args)
            env = ["env", "-i", f"PATH={PODMAN_EXEC_PATH}", "TERM=xterm", "container=podman", f"HOSTNAME={self.name}"]
            if self.user is None:
                inner = [*env, "HOME=/root", "/bin/sh", "-c", cmd]
            else:  # as `podman exec -u USER`: that user's ids and home
                as_user = f"HOME=~{self.user}; export HOME; {cmd}"
                inner = [*env, "runuser", "-u", self.user, "--", "/bin/sh", "-c", as_user]
            argv = [
                "nsenter", f"--target={container_pid(self.name)}",
                "--mount", "--uts", "--ipc", "--net", "--pid", "--wdns=/", "--", *inner,
            ]  # fmt: skip
            # As `podman exec` without -t: no controlling terminal and no stdin. The
            # caller's terminal (tomwerk verify runs pytest under ansible-runner's pty)
            # belongs to a session outside the container's PID namespace; restic's sftp
            # start-up hands that terminal to ssh and back, and the way back fails there
            # ("bg: no such process"), so the repository never opens.
            proc = subprocess.run(
                argv, stdin=subprocess.DEVNULL, capture_output=True, start_new_session=True, check=False
            )
            return self.result(proc.returncode, self.encode(cmd), proc.stdout, proc.stderr)
