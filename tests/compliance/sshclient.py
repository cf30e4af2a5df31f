"""Log in over SSH from the controller (the admin's seat), as an admin would."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

BASE_OPTIONS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "ConnectTimeout=10",
    "-o", "IdentitiesOnly=yes",
    "-o", "IdentityAgent=none",
    "-o", "LogLevel=ERROR",
]  # fmt: skip


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def run(args: list[str], env: dict | None = None, timeout: int = 30) -> Result:
    proc = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout.strip(), proc.stderr.strip())


def login_with_key(address: str, port: int, user: str, key: Path, command: str = "id -un", tty: bool = False) -> Result:
    """tty=True asks for a terminal (-tt), as an interactive admin has: only such a
    session is recorded in the login records (wtmp, lastlog, wtmpdb)."""
    return run([
        "ssh", *BASE_OPTIONS, "-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey",
        *(["-tt"] if tty else []), "-i", str(key), "-p", str(port), f"{user}@{address}", command,
    ])  # fmt: skip


def login_with_password(address: str, port: int, user: str, password: str) -> Result:
    """Offer a password (and keyboard-interactive) only, answered by SSH_ASKPASS."""
    with tempfile.TemporaryDirectory() as tmp:
        askpass = Path(tmp) / "askpass"
        askpass.write_text(f"#!/bin/sh\necho '{password}'\n")
        askpass.chmod(stat.S_IRWXU)
        return run(
            [
                "ssh", *BASE_OPTIONS, "-o", "PubkeyAuthentication=no",
                "-o", "PreferredAuthentications=password,keyboard-interactive",
                "-o", "NumberOfPasswordPrompts=1", "-p", str(port), f"{user}@{address}", "id -un",
            ],
            env={"SSH_ASKPASS": str(askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": "none"},
        )  # fmt: skip


def new_key_pair(directory: Path, name: str) -> Path:
    key = directory / name
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{name}@tomwerk-test", "-f", str(key)])
    return key
