"""TOM-OS-03 (network stack) and TOM-OS-04 (kernel self-protection): the live /proc/sys
against the values sysctl_hardening applied.

The net.* settings belong to the host's network namespace, so they are read
and proven in a container too. The kernel-wide ones (kernel.*, fs.*) are the
machine's inside a container: there the TOM reports "needs a real kernel",
never a verdict taken from the configuration file. A net.ipv6.* key the kernel
lacks means the host has no IPv6 stack, which the setting would only guard.
"""

from __future__ import annotations

from ..core import CheckError, Collector, Host, Report, State, container, needs_real_kernel
from .baseline import count_exceptions, exceptions, read_sysctl

NETWORK = "TOM-OS-03"
KERNEL = "TOM-OS-04"
SETTINGS = {NETWORK: "sysctl_hardening_network", KERNEL: "sysctl_hardening_kernel"}


def settings(state: State, name: str) -> dict[str, dict[str, str]]:
    """control -> {sysctl key: wanted value} from the state file, values as the kernel prints them."""
    value = state.value(name)
    if not isinstance(value, dict) or not value:
        raise CheckError(f"{state.role}.json: vars.{name} is not an object of controls", state.toms)
    found = {}
    for control, keys in value.items():
        if not isinstance(keys, dict) or not keys:
            raise CheckError(f"{state.role}.json: vars.{name}.{control} is not an object of sysctl keys", state.toms)
        found[control] = {str(k): " ".join(str(v).split()) for k, v in keys.items()}
    return found


class SysctlCollector(Collector):
    name = "sysctl"
    role = "sysctl_hardening"
    toms = (NETWORK, KERNEL)

    def check(self, state: State, host: Host) -> Report:
        wanted = {tom: settings(state, var) for tom, var in SETTINGS.items()}
        report = Report()
        kind = container(host)
        for tom in state.toms:
            if tom not in wanted:
                continue
            excused = exceptions(state, tom)
            count_exceptions(report, tom, excused)
            if tom == KERNEL and kind is not None:
                report.unprovable(tom, needs_real_kernel(kind))
                continue
            wrong = 0
            for control, keys in wanted[tom].items():
                if control in excused:
                    continue
                for key, value in keys.items():
                    live = read_sysctl(host, key)
                    if live is None and key.startswith("net.ipv6."):
                        continue  # no IPv6 stack: nothing to guard
                    if live != value:
                        wrong += 1
                        report.require(tom, False, f"{key} is {live if live is not None else 'missing'}, not {value}")
            report.gauge(
                "tomwerk_sysctl_wrong_settings",
                "Hardening sysctls whose live value in /proc/sys differs from the applied one (TOM-OS-03, "
                "TOM-OS-04); excused controls not counted; absent while the host cannot prove the TOM.",
                wrong,
                tom=tom,
                tom_label=True,
            )
            report.require(tom, True, "")
        return report
