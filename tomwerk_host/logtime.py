"""When a log line was written: the timestamp formats of the logs tomwerk keeps (TOM-RET-01).

One parser for the retention sweep on the host (tomwerk_host.retention) and the
exporter's retention collector, so the limit that deletes and the figure that
proves read every line alike. Times without a zone are UTC (the servers' zone).
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import zlib

DAY = 86400
HEAD_BYTES = 65536
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, 1)}
_ISO = re.compile(rb"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,]\d+)?(Z|[+-]\d{2}:?\d{2})?")
_SLASHED = re.compile(rb"^(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})")
_CLAMAV = re.compile(rb"^[A-Z][a-z]{2} ([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})")
_SYSLOG = re.compile(rb"^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\s")
_NGINX = re.compile(rb"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\]")
_JOURNAL_MAGIC = b"LPKSHHRH"
_JOURNAL_HEAD_REALTIME = 184  # offset of head_entry_realtime (usec, little endian) in the header


def _stamp(year, month, day, hour, minute, second, offset: int = 0) -> float | None:
    try:
        at = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        return None
    return at.timestamp() - offset


def _zone(text: bytes | None) -> int:
    if not text or text == b"Z":
        return 0
    sign = -1 if text[:1] == b"-" else 1
    digits = text[1:].replace(b":", b"")
    return sign * (int(digits[:2]) * 3600 + int(digits[2:4]) * 60)


def entry_time(line: bytes, now: float) -> float | None:
    """Unix time of a log line's timestamp, or None when it has none we know."""
    if m := _ISO.match(line):
        return _stamp(*m.groups()[:6], offset=_zone(m.group(7)))
    if m := _SLASHED.match(line):
        return _stamp(*m.groups())
    if m := _CLAMAV.match(line):
        month = MONTHS.get(m.group(1).decode())
        return _stamp(m.group(6), month, *m.groups()[1:5]) if month else None
    if m := _SYSLOG.match(line):
        month = MONTHS.get(m.group(1).decode())
        if not month:
            return None
        year = dt.datetime.fromtimestamp(now, dt.UTC).year
        at = _stamp(year, month, *m.groups()[1:])
        if at is not None and at > now + DAY:  # "Dec 31" read in January
            at = _stamp(year - 1, month, *m.groups()[1:])
        return at
    if m := _NGINX.search(line[:512]):
        month = MONTHS.get(m.group(2).decode())
        offset = (1 if m.group(7) == b"+" else -1) * (int(m.group(8)) * 3600 + int(m.group(9)) * 60)
        return _stamp(m.group(3), month, m.group(1), *m.groups()[3:6], offset=offset) if month else None
    return None


def head_bytes(raw: bytes, gzipped: bool) -> bytes:
    """The first HEAD_BYTES of the content (decompressed if gzipped; b'' when that fails)."""
    if not gzipped:
        return raw[:HEAD_BYTES]
    try:
        return zlib.decompressobj(wbits=47).decompress(raw, HEAD_BYTES)
    except zlib.error:
        return b""


def oldest_in_head(head: bytes, now: float) -> tuple[float | None, bool]:
    """(time of the first timestamped line, whether the head holds any line)."""
    if head.startswith(_JOURNAL_MAGIC) and len(head) >= _JOURNAL_HEAD_REALTIME + 8:
        (usec,) = struct.unpack_from("<Q", head, _JOURNAL_HEAD_REALTIME)
        return (usec / 1e6 if usec else None), usec != 0
    lines = head.split(b"\n")
    if len(head) >= HEAD_BYTES:
        lines = lines[:-1]  # the last one may be cut off
    for line in lines:
        at = entry_time(line, now)
        if at is not None:
            return at, True
    return None, any(line.strip() for line in lines)
