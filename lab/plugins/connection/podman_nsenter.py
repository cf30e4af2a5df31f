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

import sys
from pathlib import Path

from ansible.errors import AnsibleConnectionFailure
from ansible_collections.community.docker.plugins.connection.nsenter import Connection as NsenterConnection

# lab/nsenter.py, shared with the checks' nsenter:// backend: lab plumbing, not in the tomwerk package.
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
from lab.nsenter import ContainerNotRunning, container_pid

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

    def _connect(self):
        # The PID lookup is cached across Ansible's per-task workers (lab/nsenter.py).
        try:
            pid = container_pid(self.get_option("remote_addr"))
        except ContainerNotRunning as gone:
            raise AnsibleConnectionFailure(str(gone)) from gone
        self.set_option("nsenter_pid", pid)
        super()._connect()
        self._connected = True
        return self
