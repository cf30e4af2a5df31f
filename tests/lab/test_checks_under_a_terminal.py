"""The checks run under a pseudo-terminal when `tomwerk verify` starts them
(ansible-runner runs pytest through pexpect). restic's SFTP start-up hands the
controlling terminal to ssh and takes it back; from inside a container's PID
namespace the way back failed ("bg: no such process") and every backup check
failed under `tomwerk verify`, while plain pytest without a terminal passed.
This runs the same restic call under a fresh pty, as the verify run does."""

from __future__ import annotations

import json
import shlex
import sys

import pexpect
import pytest

from tomwerk import ROOT

# Runs in the child, under the pty: the backend the checks use, one restic call.
CHILD = """
import json, shlex, sys
import tests.conftest  # registers nsenter://
from tests.lab.conftest import lab_host
host = lab_host("web1")
config = json.loads(host.file("/etc/tomwerk/backup/config.json").content_string)
location = config["locations"][0]
sftp = shlex.quote("sftp.command=" + location["sftp_command"])
result = host.run(
    "RESTIC_PASSWORD_FILE=" + shlex.quote(config["password_file"]) + " RESTIC_CACHE_DIR=/var/cache/tomwerk-backup "
    + "restic -r " + shlex.quote(location["repository"]) + " -o " + sftp + " cat config"
)
print("RESULT " + json.dumps({"rc": result.rc, "stderr": result.stderr[-300:]}))
"""


@pytest.mark.tom("TOM-BAK-01")
def test_restic_opens_the_repository_when_the_checks_have_a_terminal(evidence):
    """restic over SFTP opens a backup repository from a check run under a pseudo-terminal, as in tomwerk verify."""
    child = pexpect.spawn(sys.executable, ["-c", CHILD], cwd=str(ROOT), encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    line = next((ln for ln in child.before.splitlines() if ln.startswith("RESULT ")), None)
    assert line, f"the child printed no result (exit {child.exitstatus}): {child.before[-500:]}"
    result = json.loads(line.removeprefix("RESULT "))
    evidence("restic cat config under a pty", result)
    assert result["rc"] == 0, f"restic failed under a terminal: {shlex.quote(result['stderr'])}"
