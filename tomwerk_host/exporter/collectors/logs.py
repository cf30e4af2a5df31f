"""TOM-LOG-01, TOM-LOG-02: logs anonymised at write time; the raw attack log kept 7 days at most.

roles/log_privacy records in log_privacy.json the log files to scan (glob patterns), the
attack log and its retention, and where the anonymiser lives. This collector

* scans the log files incrementally: per file it remembers inode and offset and reads only
  the bytes written since the last scrape (at most MAX_BYTES_PER_FILE per scrape; the rest
  follows at the next), so its cost grows with new log volume, not with history. A new
  inode or a shrunken file (rotation, truncation) starts the file over. A finding is a
  line that the host's own anonymiser (tomwerk_host.anonymize) would still change: an IP
  or mail address that got past the pipeline. Counts are per file since the exporter
  started (or the file was rotated), exported as tomwerk_log_pii_lines{file};
* reads the first line of the attack log and of its rotated files (the oldest entries,
  the files are append-only) for the age of the oldest attack-log entry.

TOM-LOG-03 (with log_forwarding.json or log_server.json on the host) holds iff a connection
to the log server is established, or, on the log server, rsyslog listens on its port.

TOM-LOG-01 holds iff no scanned file holds a finding. TOM-LOG-02 holds iff the oldest
attack-log entry is not older than log_privacy_attack_retention_days and the attack log
is readable by root and adm only. File paths are labels; no line content leaves this
module.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
import time

from ...anonymize import anonymize

# The attack log's cleanup (tomwerk-log-privacy) and this check date entries and find
# rotated files with the same code, so the figure shows what the cleanup goes by.
from ...log_privacy import ROTATED_SUFFIX_RE, entry_time
from ..core import CheckError, Collector, Host, Report, State, StateError, expand

ANONYMISED = "TOM-LOG-01"
ATTACK = "TOM-LOG-02"
FORWARDED = "TOM-LOG-03"
DAY = 86400
MAX_BYTES_PER_FILE = 16 << 20
MAX_FILES = 200


class _FileScan:
    __slots__ = ("findings", "inode", "offset", "pending")

    def __init__(self, inode: tuple[int, int]):
        self.inode = inode
        self.offset = 0
        self.pending = b""  # an incomplete last line, finished at the next scrape
        self.findings = 0


class LogsCollector(Collector):
    name = "log"
    role = "log_privacy"
    toms = (ANONYMISED, ATTACK, FORWARDED)
    also_roles = ("log_forwarding", "log_server")

    def __init__(self, now=time.time, max_bytes: int = MAX_BYTES_PER_FILE) -> None:
        self._now = now
        self._max_bytes = max_bytes
        self._files: dict[str, _FileScan] = {}

    def check(self, state: State, host: Host) -> Report:
        attack_log = state.text("log_privacy_attack_log")
        retention_days = state.integer("log_privacy_attack_retention_days", 1, 7)
        anonymizer = state.text("log_privacy_anonymizer")
        patterns = state.texts("log_privacy_scanned_logs")
        # Absent in state files written before the exclusions existed (until the next converge).
        excluded = state.texts("log_privacy_scan_excluded") if "log_privacy_scan_excluded" in state.vars else []
        for path in (attack_log, anonymizer, *patterns):
            if not path.startswith("/"):
                raise StateError(f"{state.role}.json: {path!r} is not an absolute path", state.toms)
        # The anonymiser rsyslog runs is this package's (the same zipapp), so the scan
        # judges each line by the very code that wrote it; the command must be in place.
        host.stat_of(anonymizer)
        report = Report()
        self._scan(report, host, patterns, excluded, attack_log)
        self._attack(report, host, attack_log, retention_days)
        self._forwarding(report, host, state.directory)
        self._server(report, host, state.directory)
        return report

    # --- TOM-LOG-03 (figures only; the verdict is the compliance checks') -------------------

    def _forwarding(self, report: Report, host: Host, state_dir: str) -> None:
        """With log_forwarding on the host: is a connection to the log server up, and how
        much waits in the disk-assisted queues."""
        settings = _role_vars(
            host,
            state_dir,
            "log_forwarding",
            lambda v: (
                int(v["log_forwarding_port"]),
                str(v["log_forwarding_queue_dir"]),
                [str(q) for q in v["log_forwarding_queue_files"]],
            ),
        )
        if settings is None:
            return
        port, queue_dir, queues = settings
        # A dropped connection is retried by rsyslog; what waits meanwhile sits in the queue.
        report.require_and_gauge(
            FORWARDED,
            count_on_host(host, established_to_port, port) > 0,
            f"no connection to the log server's port {port}",
            "tomwerk_log_forwarding_connected",
            "1 if a connection to the log server's RELP/TLS port is established, else 0 (TOM-LOG-03).",
        )
        size = 0
        for name in host.list_optional(queue_dir) or []:
            if any(name.startswith(queue + ".") for queue in queues):
                try:
                    size += host.stat(os.path.join(queue_dir, name)).st_size
                except OSError:
                    continue
        report.gauge(
            "tomwerk_log_forwarding_queue_bytes",
            "Bytes of log lines waiting on disk for the log server (rsyslog's disk-assisted queues, TOM-LOG-03).",
            size,
            tom=FORWARDED,
        )

    def _server(self, report: Report, host: Host, state_dir: str) -> None:
        """On the log server: rsyslog accepts the servers' logs on its port."""
        port = _role_vars(host, state_dir, "log_server", lambda v: int(v["log_server_port"]))
        if port is None:
            return
        report.require_and_gauge(
            FORWARDED,
            count_on_host(host, listening_on_port, port) > 0,
            f"nothing listens on the log server's port {port}",
            "tomwerk_log_server_listening",
            "1 if the log server accepts connections on its RELP/TLS port, else 0 (TOM-LOG-03).",
        )

    # --- TOM-LOG-01 ----------------------------------------------------------------------

    def _scan(self, report: Report, host: Host, patterns: list[str], excluded: list[str], attack_log: str) -> None:
        attack_dir = os.path.dirname(attack_log)
        files = sorted({p for pattern in patterns for p in expand(host, pattern)})
        files = [
            p for p in files if os.path.dirname(p) != attack_dir and not any(fnmatch.fnmatch(p, x) for x in excluded)
        ][:MAX_FILES]
        seen = set()
        unreadable: list[str] = []
        for path in files:
            try:
                info = host.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            seen.add(path)
            scan = self._files.get(path)
            inode = (info.st_dev, info.st_ino)
            if scan is None or scan.inode != inode or info.st_size < scan.offset:
                scan = self._files[path] = _FileScan(inode)  # new, rotated or truncated: from the start
            if info.st_size > scan.offset:
                try:
                    data = host.read_bytes(path, scan.offset, min(info.st_size - scan.offset, self._max_bytes))
                except OSError as exc:
                    # what cannot be read cannot be shown clean: a finding, the other files still count
                    unreadable.append(f"{path} ({exc.strerror or exc})")
                    continue
                scan.offset += len(data)
                data = scan.pending + data
                cut = data.rfind(b"\n") + 1
                scan.pending = data[cut:]
                scan.findings += count_findings(data[:cut])
            report.gauge(
                "tomwerk_log_pii_lines",
                "Lines with an IP or mail address found in a log file since the exporter started or the file "
                "was rotated (TOM-LOG-01; the attack log is not scanned).",
                scan.findings,
                tom=ANONYMISED,
                file=path,
            )
            report.gauge(
                "tomwerk_log_scanned_bytes",
                "Bytes of a log file scanned for personal data so far (the file's current inode).",
                scan.offset,
                tom=ANONYMISED,
                file=path,
            )
        for gone in set(self._files) - seen:
            del self._files[gone]
        leaking = sorted(p for p in seen if self._files[p].findings)
        report.require(
            ANONYMISED,
            not leaking,
            f"IP or mail addresses in {', '.join(leaking)}" if leaking else "",
        )
        report.require(ANONYMISED, not unreadable, f"cannot read {', '.join(unreadable)}")
        report.gauge(
            "tomwerk_log_scanned_files", "Log files scanned for personal data (TOM-LOG-01).", len(seen), tom=ANONYMISED
        )

    def _read(self, host: Host, path: str, offset: int, limit: int) -> bytes:
        try:
            return host.read_bytes(path, offset, limit)
        except OSError as exc:
            raise CheckError(f"cannot read {path}: {exc.strerror or exc}") from None

    # --- TOM-LOG-02 ----------------------------------------------------------------------

    def _attack(self, report: Report, host: Host, attack_log: str, retention_days: int) -> None:
        directory, base = os.path.split(attack_log)
        names = host.list_optional(directory) or []
        files = [attack_log] if base in names else []
        files += [os.path.join(directory, n) for n in names if n.startswith(base + ".") and ROTATED_SUFFIX_RE.search(n)]
        oldest = None
        for path in files:
            first = self._read(host, path, 0, 256).split(b"\n", 1)[0]
            if not first:
                continue
            at = entry_time(first)
            if at is None:
                at = host.stat_of(path).st_mtime  # as the cleanup counts it
            oldest = at if oldest is None else min(oldest, at)
        limit = retention_days * DAY
        now = self._now()
        if oldest is not None:
            report.gauge(
                "tomwerk_log_attack_oldest_entry_timestamp_seconds",
                "Unix time of the oldest entry in the attack log and its rotated files (TOM-LOG-02); absent "
                "when the attack log is empty.",
                oldest,
                tom=ATTACK,
            )
            report.require(
                ATTACK,
                now - oldest <= limit,
                f"the attack log holds an entry older than {retention_days} days",
            )
        report.gauge(
            "tomwerk_log_attack_retention_seconds",
            "How long attack-log entries may be kept (TOM-LOG-02), from log_privacy_attack_retention_days.",
            limit,
            tom=ATTACK,
        )
        if attack_log in files:
            info = host.stat_of(attack_log)
            closed = info.st_uid == 0 and stat.S_IMODE(info.st_mode) & 0o007 == 0
            report.require(ATTACK, closed, f"{attack_log} is readable by others than root and adm")
        else:
            report.require(ATTACK, True, "")


def count_findings(data: bytes) -> int:
    """Lines the anonymiser would still change (it keeps the line structure)."""
    if not data:
        return 0
    clean = anonymize(data)
    if clean == data:
        return 0
    return sum(1 for a, b in zip(data.split(b"\n"), clean.split(b"\n"), strict=True) if a != b)


def _sockets(table: str, port: int, state: str, column: int) -> int:
    """Sockets in /proc/net/tcp{,6} text in `state` whose address in `column` has `port`."""
    count = 0
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == state and fields[column].rpartition(":")[2] == f"{port:04X}":
            count += 1
    return count


def listening_on_port(table: str, port: int) -> int:
    """Sockets that LISTEN (0A) on a local port."""
    return _sockets(table, port, "0A", 1)


def established_to_port(table: str, port: int) -> int:
    """Connections that are ESTABLISHED (01) to a remote port."""
    return _sockets(table, port, "01", 2)


def count_on_host(host: Host, counter, port: int) -> int:
    """counter(table, port) summed over the host's IPv4 and IPv6 TCP tables."""
    return sum(counter(host.read_optional(table) or "", port) for table in ("/proc/net/tcp", "/proc/net/tcp6"))


def _role_vars(host: Host, state_dir: str, role: str, parse):
    """parse(vars) of the role's state file, None without the role; a CheckError if they are not the role's."""
    text = host.read_optional(os.path.join(state_dir, f"{role}.json"))
    if text is None:
        return None
    try:
        return parse(json.loads(text)["vars"])
    except (ValueError, KeyError, TypeError):
        raise CheckError(f"{role}.json: vars are not what the role writes") from None
