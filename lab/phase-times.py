#!/usr/bin/env python3
"""Pass Molecule's output through and end it with what each step cost.

CI shows only the tail of the log and stops a run that takes too long; this
puts the time of every Molecule step (converge, idempotence, verify, ...) and
the costliest roles of each Ansible run (from the profile_roles callback,
enabled in molecule/lab/molecule.yml) at the very end, also when the run was
cut off by `timeout`.
"""

from __future__ import annotations

import re
import signal
import sys
import time

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEP = re.compile(r"➜ (\w+): (Executing|Executed)")
BOX = re.compile(r"^\s*[│└┌]\s?")
ROLE_LINE = re.compile(r"^(\S+) -{3,}\s*$")
SECONDS = re.compile(r"^\s*([\d.]+)s\s*$")
TOP_ROLES = 8


def fmt(seconds: float) -> str:
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class Tally:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.steps: list[tuple[str, float, float | None]] = []  # name, start, end
        self.roles: dict[str, dict[str, float]] = {}
        self._in_recap = False
        self._role: str | None = None

    def feed(self, raw: str) -> None:
        line = ANSI.sub("", raw).rstrip("\n")
        found = STEP.search(line)
        if found:
            name, what = found.groups()
            now = time.monotonic()
            if what == "Executing":
                self.steps.append((name, now, None))
            elif self.steps and self.steps[-1][0] == name and self.steps[-1][2] is None:
                self.steps[-1] = (name, self.steps[-1][1], now)
            return
        body = BOX.sub("", line).strip()
        if body.startswith("ROLES RECAP"):
            self._in_recap = True
            return
        if not self._in_recap:
            return
        if body.startswith("total ") or body.startswith("Return code"):
            self._in_recap = False
            return
        role = ROLE_LINE.match(body)
        if role:
            self._role = role.group(1)
            return
        secs = SECONDS.match(body)
        if secs and self._role and self.steps:
            step = self.steps[-1][0]
            self.roles.setdefault(step, {})[self._role] = float(secs.group(1))
            self._role = None

    def summary(self) -> str:
        now = time.monotonic()
        out = [f"Lab steps (lab/phase-times.py), {fmt(now - self.start)} in all:"]
        for name, begin, end in self.steps:
            state = "" if end is not None else "   <- still running when the output ended"
            out.append(f"  {name:12} {fmt((end or now) - begin)}{state}")
        for step in ("converge", "idempotence"):
            roles = self.roles.get(step)
            if roles:
                top = sorted(roles.items(), key=lambda kv: -kv[1])[:TOP_ROLES]
                out.append(f"  costliest roles in {step}: " + ", ".join(f"{r} {fmt(s)}" for r, s in top))
        return "\n".join(out)


def main() -> int:
    tally = Tally()
    # A stop signal to the whole job must not cut off the summary: read on until Molecule is gone.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for raw in sys.stdin:
        sys.stdout.write(raw)
        sys.stdout.flush()
        tally.feed(raw)
    sys.stdout.flush()
    print(tally.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
