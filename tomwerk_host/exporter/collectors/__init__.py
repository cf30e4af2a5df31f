"""The TOM collectors, one per TOM family.

Adding a family (logs, backup, updates, tls, ...):
  1. write collectors/<family>.py with a core.Collector subclass: name (the
     collector label), role (its state file is /etc/tomwerk/state/<role>.json),
     toms, and check(state, host) -> Report with a require() per TOM (a collector that
     probes live services: core.ProbingCollector, with its probe and cache time; one of
     several TOMs names the TOM of each figure: gauge(..., tom=...));
  2. add the class to COLLECTORS below;
  3. add recorded fixtures and drift cases to tests/unit/test_exporter_collectors.py.
"""

from __future__ import annotations

from ..core import Collector
from .antivirus import AntivirusCollector
from .backup import BackupCollector
from .dns import DnsCollector
from .firewall import FirewallCollector
from .internal_tls import InternalTlsCollector
from .logs import LogsCollector
from .mail import MailCollector
from .meet import MeetCollector
from .org import OrgCollector
from .password import PasswordCollector
from .retention import RetentionCollector
from .ssh import SshCollector
from .tls import AcmeCollector, WebTlsCollector
from .updates import UpdatesCollector

COLLECTORS: tuple[type[Collector], ...] = (
    SshCollector,
    FirewallCollector,
    PasswordCollector,
    OrgCollector,
    UpdatesCollector,
    BackupCollector,
    LogsCollector,
    MailCollector,
    MeetCollector,
    AntivirusCollector,
    DnsCollector,
    WebTlsCollector,
    AcmeCollector,
    RetentionCollector,
    InternalTlsCollector,
)


def all_collectors() -> list[Collector]:
    return [cls() for cls in COLLECTORS]
