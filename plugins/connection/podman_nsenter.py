"""Connection plugin for the lab: run commands in a podman container through nsenter.

containers.podman.podman starts `podman exec` for every command, which costs
about a third of a CPU second each (podman, conmon, runc); on the lab's two
cores that dominates a converge. This plugin looks up the container's PID
once (`podman inspect`) and enters its namespaces with nsenter, a plain
fork and exec, and it pipelines modules over stdin. Rootful podman only; the
host must be the machine the containers run on.

    ansible_connection: podman_nsenter
    ansible_host: <container name>          (default: the inventory name)
"""

from __future__ import annotations

import os
import subprocess
import tempfile

from ansible.errors import AnsibleConnectionFailure
from ansible_collections.community.docker.plugins.connection.nsenter import Connection as NsenterConnection

DOCUMENTATION = r"""
name: podman_nsenter
short_description: run in a local rootful podman container via nsenter (lab)
description:
  - Enters the namespaces of a running podman container on this machine with nsenter; pipelining supported.
options:
  remote_addr:
    description: Container name or id.
    default: inventory_hostname
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_host
  nsenter_pid:
    description: Set by the plugin from podman inspect; not to be set by hand.
    type: int
    default: 0
"""


class Connection(NsenterConnection):
    transport = "podman_nsenter"
    # Modules go to the container's python over stdin: one command per module.
    has_pipelining = True
    proc_root = "/proc"

    # Ansible forks a worker per task and host, so a cache in this process
    # would be lost after each task and every task would pay for a
    # `podman inspect` (a third of a CPU second). The PID is cached in a file
    # with the container's id; it is trusted only while that process still sits
    # in the container's cgroup, so a restarted or recreated container is
    # looked up again.
    def _connect(self):
        container = self.get_option("remote_addr")
        pid = self._cached_pid(container)
        if pid is None:
            proc = subprocess.run(
                ["podman", "inspect", "--format", "{{.State.Pid}} {{.Id}}", container],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            fields = proc.stdout.split()
            if proc.returncode != 0 or len(fields) != 2 or not fields[0].isdigit() or fields[0] == "0":
                raise AnsibleConnectionFailure(f"container {container} is not running: {proc.stderr.strip()}")
            pid = int(fields[0])
            self._store_pid(container, pid, fields[1])
        self.set_option("nsenter_pid", pid)
        super()._connect()
        self._connected = True
        return self

    @staticmethod
    def _cache_file(container: str) -> str:
        return os.path.join(tempfile.gettempdir(), f"tomwerk-nsenter-{os.getuid()}", container.replace("/", "_"))

    @classmethod
    def _cached_pid(cls, container: str) -> int | None:
        try:
            with open(cls._cache_file(container), encoding="ascii") as cached:
                pid_text, container_id = cached.read().split()
            with open(f"{cls.proc_root}/{int(pid_text)}/cgroup", encoding="ascii") as cgroup:
                if f"libpod-{container_id}" in cgroup.read():
                    return int(pid_text)
        except (OSError, ValueError):
            pass
        return None

    @classmethod
    def _store_pid(cls, container: str, pid: int, container_id: str) -> None:
        path = cls._cache_file(container)
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(f"{pid} {container_id}\n")
            os.replace(tmp, path)
        except OSError:
            pass  # no cache: the next task asks podman again
