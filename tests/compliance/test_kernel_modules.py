"""TOM-OS-05: a blocked module really does not load, on a host with a kernel of its own.

The probe (test_probes.py) asks modprobe's dry run and /proc/modules for every
blocked module. This check asks the kernel to load one. In a container module
loading is the machine's: the check says "needs a real kernel" instead.
"""

from __future__ import annotations

import pytest

ROLE = "kernel_modules"


@pytest.mark.tom("TOM-OS-05")
def test_a_blocked_module_does_not_load(host, real_kernel, role_vars, evidence):
    """`modprobe <module>` fails for the first blocked module not excused, and it is not loaded afterwards."""
    excused = {k.split(":", 1)[-1] for k in (role_vars.get("tomwerk_exceptions") or {})}
    modules = [m for m in role_vars["kernel_modules_blocked"] if m not in excused]
    if not modules:
        pytest.skip("every blocked module is excused on this host (see the exceptions in the report)")
    module = modules[0]
    run = host.run(f"modprobe {module}")
    loaded = host.run("cat /proc/modules").stdout.split()
    evidence(f"modprobe {module}", f"exit {run.rc}: {(run.stderr or run.stdout).strip()[:200]}")
    assert run.rc != 0, f"modprobe {module} succeeded"
    assert module.replace("-", "_") not in loaded
