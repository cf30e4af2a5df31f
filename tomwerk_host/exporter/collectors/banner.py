"""TOM-OS-06: a legal notice before every login, against what legal_banner applied.

- console: /etc/issue (agetty shows it before the login prompt) is the text;
- network: /etc/issue.net is the text and sshd sends it (sshd -T banner) before
  authentication.

The text names no operating system or version (the role refuses agetty's
escapes such as \\r and \\v). An admin's SSH connection from another host
(tests/compliance/test_legal_banner.py) sees it.
"""

from __future__ import annotations

from ..core import Collector, Host, Report, State
from .baseline import count_exceptions, exceptions
from .ssh import SSHD_T, SshdConfig

TOM = "TOM-OS-06"
ISSUE = "/etc/issue"
ISSUE_NET = "/etc/issue.net"


def same_text(found: str | None, wanted: str) -> bool:
    return found is not None and found.strip() == wanted.strip()


class BannerCollector(Collector):
    name = "banner"
    role = "legal_banner"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        text = state.text("legal_banner_text")
        excused = exceptions(state, TOM)
        report = Report()
        count_exceptions(report, TOM, excused)
        differing = 0
        if "console" not in excused:
            ok = same_text(host.read_optional(ISSUE), text)
            differing += not ok
            report.require(TOM, ok, f"{ISSUE} is not the legal notice")
        if "network" not in excused:
            ok = same_text(host.read_optional(ISSUE_NET), text)
            differing += not ok
            report.require(TOM, ok, f"{ISSUE_NET} is not the legal notice")
            banner = SshdConfig(host.output(SSHD_T)).get("banner")
            report.require(TOM, banner == ISSUE_NET, f"sshd sends banner {banner}, not {ISSUE_NET}")
        report.gauge(
            "tomwerk_banner_files_differing",
            "Login notice files (/etc/issue, /etc/issue.net) whose text is not the legal notice legal_banner applied "
            "(TOM-OS-06); excused ones not counted.",
            differing,
        )
        report.require(TOM, True, "")
        return report
