"""TOM-OS-05: the kernel modules kernel_modules blocks cannot load, and none of them is loaded.

For each module, `modprobe -n -v <module>` (a dry run) must show the install
command that refuses it (install <module> /bin/false), and /proc/modules must
not list it. Both are the kernel's: inside a container, module loading and the
loaded-module list are the machine's, so the TOM reports "needs a real kernel"
there, never a verdict taken from /etc/modprobe.d.
"""

from __future__ import annotations

import re
import subprocess

from ..core import COMMAND_TIMEOUT, CheckError, Collector, Host, Report, State, container, needs_real_kernel
from .baseline import count_exceptions, exceptions

TOM = "TOM-OS-05"
MODPROBE = "/usr/sbin/modprobe"
LOADED = "/proc/modules"
# What a blocked module's dry run prints: its install command runs a program that only fails or does nothing.
REFUSING = re.compile(r"^install\s+(/usr)?/bin/(false|true)\b", re.MULTILINE)
MODULE_NAME = re.compile(r"^[a-z0-9_-]+$")


def dry_run(host: Host, module: str) -> str:
    """What modprobe would do to load module (stdout and stderr; a module it cannot find is no error here)."""
    try:
        _rc, out, err = host.execute((MODPROBE, "-n", "-v", module))
    except FileNotFoundError:
        raise CheckError(f"{MODPROBE} not found (package kmod)") from None
    except subprocess.TimeoutExpired:
        raise CheckError(f"{MODPROBE} did not finish within {COMMAND_TIMEOUT:g} s") from None
    except OSError as exc:
        raise CheckError(f"cannot run {MODPROBE}: {exc.strerror or exc}") from None
    return out + err


def loaded_modules(text: str) -> set[str]:
    """Module names in /proc/modules (the kernel spells them with _)."""
    return {line.split()[0] for line in text.splitlines() if line.strip()}


class ModulesCollector(Collector):
    name = "modules"
    role = "kernel_modules"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        modules = state.texts("kernel_modules_blocked")
        bad = [m for m in modules if not MODULE_NAME.match(m)]
        if bad:
            raise CheckError(f"kernel_modules.json: vars.kernel_modules_blocked holds a bad name {bad[0]!r}")
        excused = exceptions(state, TOM)
        report = Report()
        count_exceptions(report, TOM, excused)
        kind = container(host)
        if kind is not None:
            report.unprovable(TOM, needs_real_kernel(kind))
            return report
        loaded = loaded_modules(host.read(LOADED))
        loadable, present = 0, 0
        for module in modules:
            if module in excused:
                continue
            if not REFUSING.search(dry_run(host, module)):
                loadable += 1
                report.require(TOM, False, f"{module}: modprobe would load it (no install ... /bin/false)")
            if module.replace("-", "_") in loaded:
                present += 1
                report.require(TOM, False, f"{module} is loaded now (unload it with modprobe -r, or reboot)")
        report.gauge(
            "tomwerk_modules_loadable",
            "Blocked kernel modules modprobe would still load (TOM-OS-05); excused ones not counted.",
            loadable,
        )
        report.gauge(
            "tomwerk_modules_loaded",
            "Blocked kernel modules loaded now, by /proc/modules (TOM-OS-05); excused ones not counted.",
            present,
        )
        report.require(TOM, True, "")
        return report
