"""What the OS baseline collectors share: recorded exceptions, and reading /proc/sys.

A host may be excused from a control of a baseline TOM only with a reason
recorded in the inventory (tomwerk_exceptions, checked before any change).
Each baseline role records the exceptions of its TOMs in its state file as
vars.tomwerk_exceptions ({"TOM-OS-05:usb-storage": "<reason>"}; a key
without a control excuses the whole TOM, and the role then does not record
the TOM at all); the collector skips those controls and counts them. The reasons go to the evidence report
through the inventory, never into a metric label.
"""

from __future__ import annotations

from ..core import CheckError, Host, Report, State

EXCEPTIONS = "tomwerk_exceptions"
PROC_SYS = "/proc/sys"


def exceptions(state: State, tom: str) -> dict[str, str]:
    """The controls of tom this host is excused from, with their reasons ({} when none is recorded)."""
    value = state.vars.get(EXCEPTIONS, {})
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v.strip() for k, v in value.items()
    ):
        raise CheckError(f"{state.role}.json: vars.{EXCEPTIONS} is not an object of controls and reasons", state.toms)
    return {k.split(":", 1)[1]: v for k, v in value.items() if k.startswith(tom + ":")}


def count_exceptions(report: Report, tom: str, excused: dict[str, str]) -> None:
    report.gauge(
        "tomwerk_tom_exceptions",
        "Controls of the TOM this host is excused from by an exception recorded with a reason in the inventory "
        "(tomwerk_exceptions); the evidence report names each with its reason.",
        len(excused),
        tom=tom,
        tom_label=True,
    )


def sysctl_path(key: str) -> str:
    """/proc/sys path of a sysctl key (net.ipv4.tcp_syncookies -> /proc/sys/net/ipv4/tcp_syncookies)."""
    return f"{PROC_SYS}/{key.replace('.', '/')}"


def read_sysctl(host: Host, key: str) -> str | None:
    """The live value of a sysctl (whitespace collapsed), or None when the kernel has no such key."""
    text = host.read_optional(sysctl_path(key))
    return None if text is None else " ".join(text.split())
