"""TOM-OS-02: no process leaves a core dump, against what core_dumps applied.

- limits: pam_limits gives every login a hard core limit of 0 (a `* hard core 0`
  line in /etc/security/limits.conf or limits.d, and no line that raises it);
- service-limits: systemd starts every service with a hard core limit of 0
  (the manager's DefaultLimitCORE, as `systemctl show` reports it live);
- systemd-coredump: should it be installed, it stores nothing
  (Storage=none, ProcessSizeMax=0, after all drop-ins).

fs.suid_dumpable=0, the kernel-wide part, is TOM-OS-04's (sysctl_hardening).
"""

from __future__ import annotations

import os

from ..core import CheckError, Collector, Host, Report, State
from .baseline import count_exceptions, exceptions

TOM = "TOM-OS-02"
LIMITS = "/etc/security/limits.conf"
LIMITS_DIR = "/etc/security/limits.d"
COREDUMP = "/etc/systemd/coredump.conf"
# Drop-in directories in rising precedence; a file in a later one shadows one of the same name.
COREDUMP_DIRS = ("/usr/lib/systemd/coredump.conf.d", "/run/systemd/coredump.conf.d", "/etc/systemd/coredump.conf.d")
SYSTEMCTL_SHOW = ("/usr/bin/systemctl", "show", "--property=DefaultLimitCORE")


def core_limits(texts: list[str]) -> tuple[bool, list[str]]:
    """(a `* hard core 0` line exists, hard core values other than 0) over limits files in pam_limits' order."""
    wildcard_zero, raising = False, []
    for text in texts:
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if len(words) != 4 or words[2] != "core" or words[1] not in ("hard", "-"):
                continue
            domain, value = words[0], words[3]
            if value == "0":
                wildcard_zero = wildcard_zero or domain == "*"
            else:
                raising.append(f"{domain} {words[1]} core {value}")
    return wildcard_zero, raising


def coredump_settings(main: str | None, dropins: list[str]) -> dict[str, str]:
    """[Coredump] settings after the main file and the drop-ins, in order (the last one wins)."""
    found: dict[str, str] = {}
    for text in [main or "", *dropins]:
        section = ""
        for line in text.splitlines():
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
            elif section == "Coredump" and "=" in line:
                key, value = line.split("=", 1)
                found[key.strip()] = value.strip()
    return found


class CoredumpCollector(Collector):
    name = "coredump"
    role = "core_dumps"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        excused = exceptions(state, TOM)
        report = Report()
        count_exceptions(report, TOM, excused)
        if "limits" not in excused:
            names = [n for n in host.list_optional(LIMITS_DIR) or [] if n.endswith(".conf") and not n.startswith(".")]
            texts = [host.read_optional(LIMITS) or ""] + [host.read(os.path.join(LIMITS_DIR, n)) for n in names]
            zero, raising = core_limits(texts)
            report.require(TOM, zero, "no `* hard core 0` line in the limits files")
            report.require(TOM, not raising, f"limits files raise the core limit: {', '.join(raising)}")
        if "service-limits" not in excused:
            out = host.output(SYSTEMCTL_SHOW).strip()
            if not out.startswith("DefaultLimitCORE="):
                raise CheckError(f"{' '.join(SYSTEMCTL_SHOW)} printed no DefaultLimitCORE")
            live = out.split("=", 1)[1]
            report.require(TOM, live == "0", f"systemd starts services with a hard core limit of {live}, not 0")
        if "systemd-coredump" not in excused:
            chosen: dict[str, str] = {}
            for directory in COREDUMP_DIRS:
                for name in host.list_optional(directory) or []:
                    if name.endswith(".conf"):
                        chosen[name] = os.path.join(directory, name)
            dropins = [host.read(chosen[name]) for name in sorted(chosen)]
            settings = coredump_settings(host.read_optional(COREDUMP), dropins)
            storage, size = settings.get("Storage", "external"), settings.get("ProcessSizeMax", "default")
            report.require(TOM, storage == "none", f"systemd-coredump Storage is {storage}, not none")
            report.require(TOM, size == "0", f"systemd-coredump ProcessSizeMax is {size}, not 0")
        report.require(TOM, True, "")
        return report
