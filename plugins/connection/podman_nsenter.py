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
from typing import ClassVar

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

    # One `podman inspect` per container and process; a restarted container
    # (its old PID gone from /proc) is looked up again.
    _pids: ClassVar[dict[str, int]] = {}

    def _connect(self):
        container = self.get_option("remote_addr")
        cached = self._pids.get(container)
        if cached is None or not os.path.exists(f"/proc/{cached}"):
            proc = subprocess.run(
                ["podman", "inspect", "--format", "{{.State.Pid}}", container],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            pid = proc.stdout.strip()
            if proc.returncode != 0 or not pid.isdigit() or pid == "0":
                raise AnsibleConnectionFailure(f"container {container} is not running: {proc.stderr.strip()}")
            self._pids[container] = int(pid)
        self.set_option("nsenter_pid", self._pids[container])
        super()._connect()
        self._connected = True
        return self
