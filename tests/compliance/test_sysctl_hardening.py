"""TOM-OS-04: what an unprivileged user sees of the kernel, on a host with a kernel of its own.

The probe (test_probes.py) reads every setting in /proc/sys (TOM-OS-03 in
a container too). These checks look at the effect as an unprivileged user:
kernel addresses hidden, the kernel log closed. In a container both are the
machine's: the checks say "needs a real kernel" instead of a verdict.
"""

from __future__ import annotations

import pytest

ROLE = "sysctl_hardening"
NOBODY = "runuser -u nobody --"


@pytest.mark.tom("TOM-OS-04")
def test_an_unprivileged_user_sees_no_kernel_addresses_or_log(host, real_kernel, role_vars, evidence):
    """As nobody: /proc/kallsyms shows only zero addresses, and dmesg is refused."""
    excused = role_vars.get("tomwerk_exceptions") or {}
    symbols = host.run(f"{NOBODY} head -n 3 /proc/kallsyms")
    dmesg = host.run(f"{NOBODY} dmesg")
    evidence("kallsyms as nobody", symbols.stdout.strip() or symbols.stderr.strip())
    evidence("dmesg as nobody", f"exit {dmesg.rc}: {dmesg.stderr.strip()[:200]}")
    if "TOM-OS-04:kptr-restrict" not in excused:
        addresses = [line.split()[0] for line in symbols.stdout.splitlines() if line.strip()]
        assert addresses and all(set(a) == {"0"} for a in addresses), addresses
    if "TOM-OS-04:dmesg-restrict" not in excused:
        assert dmesg.rc != 0, "dmesg works for an unprivileged user"
