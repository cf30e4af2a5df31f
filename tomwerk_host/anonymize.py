"""Anonymise log lines at write time: every IP address becomes ``0``, every mail address ``x@x``.

This is the filter behind the privacy-policy promise "server logs are anonymised when
they are written". It is copied to the servers as a single file and runs there on
Debian 12's Python 3.11, so it uses the standard library only.

What is replaced (anywhere in a line, every occurrence)
-------------------------------------------------------
* IPv4 ``a.b.c.d`` with every octet 0..255 -> ``0``: ``client 192.0.2.10:51234`` ->
  ``client 0:51234``, ``0.0.0.0`` -> ``0``. Leading zeros count (``192.168.001.010``, as
  some tools print addresses), and so does a version-looking ``1.2.3.4``: it is a valid
  IPv4 literal and privacy comes first, hence ``Chrome/119.0.0.0`` -> ``Chrome/0`` and
  ``v2.3.19.1`` -> ``v0``. A dotted run of more or fewer than four numbers
  (``1.3.6.1.4.1``, ``nginx/1.22.1``) or with an octet above 255 (``1.2.3.256``) is no
  address and stays; dots before a non-number do not count (``...192.0.2.1`` -> ``...0``).
* IPv6 in every textual form -> ``0``: full, compressed, upper case, embedded IPv4
  (``::ffff:192.0.2.1``, ``64:ff9b::192.0.2.1``), loopback ``::1``, with a zone id (part of
  the address: ``fe80::1%eth0`` -> ``0``). Brackets and ports stay: ``[2001:db8::1]:443`` ->
  ``[0]:443``; a port glued to a full eight-group address stays too, while
  ``2001:db8::1:443`` is itself a valid address and goes as a whole.
* Mail addresses ``local@domain`` -> ``x@x``: ``user@localhost``, key comments, domain
  literals (``user@[192.0.2.1]``), ``sasl_username=bob@example.org`` ->
  ``sasl_username=x@x``. Outside angle brackets the local part is letters, digits,
  non-ASCII bytes and ``. _ % + - ! # $ & * ^ ~`` (so the ``key=`` in front stays); inside ``<...>``
  (Postfix envelopes) it is any non-space, so SRS/BATV addresses
  (``<SRS0=h=t=example.com=alice@fwd.example>``) go completely. ``from=<>`` stays.
* Addresses go before mail, so a mail address whose domain is an IP address goes as a
  whole: ``alice@fe80::1%eth0``, ``alice@192.0.2.1`` -> ``x@x``.
* XMPP JIDs are mail-shaped: the bare JID goes, the resource after ``/`` stays:
  ``alice@meet.example.org/phone`` -> ``x@x/phone``.

Rules for ambiguous text
------------------------
* A valid address is replaced, anything else is not. An IPv6 candidate is a run of hex
  groups and colons holding ``::`` or seven colons (six before an embedded IPv4) that is
  not glued to a letter, digit or ``_``; it is checked against the exact IPv6
  grammar (the tests compare that check with :mod:`ipaddress`). So ``12:34:56``, MAC
  addresses (``00:16:3e:aa:bb:cc``: six groups), ``Foo::Bar``, ``std::vector`` and
  ``Mycafe::Bad`` stay, while a name whose parts are all hex (``Dead::Beef``) *is* a valid
  address and becomes ``0``; so does an eight-group EUI-64 in colon notation.
* A word followed by a single colon is a label: ``addr:2001:db8::1`` -> ``addr:0``,
  ``id:fe80::1`` -> ``id:0``.
* A bare ``::`` (the unspecified address) stays: it identifies nobody and is a common
  separator (``key :: value``).
* systemd template units are not mail: ``user@1000.service``, ``getty@tty1.service`` (and
  ``.socket .timer .mount .automount .path .slice .scope .swap .device .target``) stay.
  Other mail-shaped text goes: ``git@github.com``, ``name@1.2.3``, Message-IDs.
* Not covered: addresses spelt with dashes in host names (``192-0-2-1.dyn.example``),
  user names that are not mail addresses, URL user info (``https://user:pw@host`` keeps
  ``user:``).

Lines
-----
The filter works on bytes, so invalid UTF-8 passes untouched. It never drops, merges or
reorders lines, keeps every line terminator (``\\n``, ``\\r\\n``) and the missing one
of a last line. No pattern can match across a line break, so it anonymises a whole
buffer of complete lines at once: one pass each for mail, IPv6 and IPv4, each anchored
on a byte every match contains (``@``, ``:``, ``.``) and skipped when that byte is absent.

Modes (``--mode``)
------------------
``filter`` (default)
    stdin -> stdout, or appended to ``--output FILE``. It reads what is available (up
    to ``--chunk-size``), writes the complete lines and flushes, so an idle pipe never
    holds lines back; ``--line-buffered`` writes and flushes line by line.
``mmexternal``
    rsyslog's external message modification interface (plugins/external/INTERFACE.md
    and plugins/mmexternal/mmexternal.c in rsyslog's source). rsyslog writes one message
    per LF-terminated line and waits; the plugin answers exactly one line of JSON per
    message, in order, naming only the properties to change, ``{}`` when nothing
    changes, and flushes. ``--interface-input`` must match the action's
    ``interface.input``:

    ``msg`` (rsyslog's default): the line is the MSG property, the answer
    ``{"msg":"..."}``; rsyslog rewrites the MSG part of rawmsg itself. Only MSG is seen:
    a hostname that is an IP stays. Multi-line messages break the one-line framing;
    use ``fulljson`` for them.

    ``rawmsg``: the line is the whole received message, the answer ``{"rawmsg":"..."}``.
    rsyslog keeps MSG as a window at a fixed offset into rawmsg and does not parse the
    new rawmsg again, so every replacement is padded with spaces to the old length
    (``from 0          port``) and properties parsed before (hostname) stay as they were.

    ``fulljson``: the line is rsyslog's ``jsonmesg`` object. The modifiable string
    properties ``rawmsg msg syslogtag procid msgid structured-data hostname fromhost
    fromhost-ip`` and the ``$!`` tree are anonymised and the changed ones returned:
    rawmsg first (padded as above), then the exact msg, which rsyslog writes into its
    window. ``$!`` comes back per changed top-level key, because rsyslog merges it at the
    top level; a top-level key that is itself an address is set to ``""`` and re-added
    anonymised (the interface cannot delete variables). ``fromhost-ip`` 127.0.0.1
    becomes ``0`` too: every IP address means every one.

    rsyslog connects the plugin's stderr to its reply pipe, so this mode sends stderr to
    /dev/null; and since rsyslog passes a message on unmodified when the plugin dies, a
    line it cannot parse still gets an answer (its anonymised text as msg). rsyslog
    starts the plugin with an empty environment; give absolute paths, e.g.
    ``action(type="mmexternal" interface.input="fulljson"
    binary="/usr/local/bin/tomwerk-anonymize --mode mmexternal --interface-input fulljson")``.
``omprog``
    For rsyslog's omprog, which writes one formatted line per message to stdin: the
    anonymised lines are appended to ``--output FILE`` (required), each written and
    flushed on its own, and the file is reopened on SIGHUP (omprog ``hup.signal="HUP"``
    after logrotate). With omprog ``confirmMessages="on"`` add ``--confirm-messages``:
    ``OK`` is printed once at start and once per line after it is in the file. Leave
    omprog's ``useTransactions`` off.

As a library: :func:`anonymize` (one line or a buffer of complete lines) and its alias
:func:`anonymize_line` take and return ``bytes``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys

# --- patterns ---------------------------------------------------------------------------
# Each pass starts its pattern at a byte that every match contains (':' for IPv6, '.' for
# IPv4, '@' for mail), so `re` jumps from one such byte to the next instead of trying a
# match at every position; the few bytes of the address before that anchor are added in
# Python for the few places that do match.

IP_REPLACEMENT = b"0"
MAIL_REPLACEMENT = b"x@x"

_DIGITS = frozenset(b"0123456789")
_WORD = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")

# IPv6. Compressed forms are found at their '::' (rare outside addresses: Foo::Bar), full
# forms by seven colons between hex groups (or six and an embedded IPv4), so timestamps
# and MAC addresses fail within a few bytes. The groups before the anchor are collected
# in Python, for the few matches only.
_IPV6_PARTS = {
    b"h": rb"[0-9A-Fa-f]{1,4}",
    b"v4_tail": rb"(?:\.[0-9]{1,3}){3}",  # the first octet is matched as a hex group
    b"zone": rb"(?:%[0-9A-Za-z_.~-]+)?",
    b"end": rb"(?![0-9A-Za-z_]|\.[0-9])",
}
IPV6_COMPRESSED_RE = re.compile(rb"::(?!:)(?:%(h)s(?::%(h)s){0,6}(?:%(v4_tail)s)?)?%(zone)s%(end)s" % _IPV6_PARTS)
IPV6_FULL_RE = re.compile(
    # from the first colon: five groups, then two more (maybe a port) or one and IPv4
    rb":(?<=[0-9A-Fa-f]:)%(h)s(?::%(h)s){4}:(?:%(h)s:%(h)s(?::[0-9]{1,5})?|%(h)s%(v4_tail)s)%(zone)s%(end)s"
    % _IPV6_PARTS
)
_IPV6_GROUPS_BEFORE_REVERSED_RE = re.compile(rb"[0-9A-Fa-f:]{0,40}")  # eight groups and colons at most

# IPv4, from its first dot; the look-behinds check the first octet and that it is not
# part of a bigger number or a longer dotted number (1.3.6.1.4.1); "...192.0.2.1" counts.
_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
_THREE_DIGIT_OCTET = rb"(?:25[0-5]|2[0-4][0-9]|[01][0-9]{2})"
IPV4_FROM_FIRST_DOT_RE = re.compile(
    rb"\.(?:"
    + rb"|".join(
        rb"(?<=" + before + octet + rb"\.)"
        for before in (rb"[^0-9.]", rb"\A", rb"[^0-9]\.", rb"\A\.")
        for octet in (rb"[0-9]", rb"[0-9]{2}", _THREE_DIGIT_OCTET)
    )
    + rb")(?:"
    + _OCTET
    + rb"\.){2}"
    + _OCTET
    + rb"(?![0-9]|\.[0-9])"
)

# Mail, around each '@'. The local part is matched backwards on the reversed buffer.
# RFC 5322 allows ! # $ & * ^ ~ in a local part too: without them "a!b@example.org"
# would keep "a!" (the EICAR test string in a logged command line did exactly that).
_LOCAL_FIRST = rb"A-Za-z0-9_%+!#$&*^~\x80-\xff-"
# ...[first][first or dot]*@ read backwards; greedy, so the local part is the whole token
_LOCAL_PART_REVERSED_RE = re.compile(rb"[" + _LOCAL_FIRST + rb".]*[" + _LOCAL_FIRST + rb"]")
# inside <...> (Postfix envelopes) the local part may hold = / ' and friends (SRS, BATV)
_BRACKETED_LOCAL_PART_REVERSED_RE = re.compile(rb"[^\s<>@]+(?=<)")
_DOMAIN_CHARS = rb"A-Za-z0-9_\x80-\xff-"
_SYSTEMD_UNIT_SUFFIXES = (
    b"service",
    b"socket",
    b"timer",
    b"mount",
    b"automount",
    b"path",
    b"slice",
    b"scope",
    b"swap",
    b"device",
    b"target",
)
DOMAIN_RE = re.compile(
    rb"(?:[%(c)s]+(?:\.[%(c)s]+)*|\[[0-9A-Za-z:.]+\])"
    # the whole domain or nothing, so the unit check below cannot be dodged by backtracking
    rb"(?![%(c)s]|\.[%(c)s])"
    % {b"c": _DOMAIN_CHARS}
    # a unit, or its drop-in and dependency directories (user@0.service.d, as dpkg names it)
    + b"".join(
        rb"(?<!\." + suffix + extra + rb")"
        for suffix in _SYSTEMD_UNIT_SUFFIXES
        for extra in (b"", rb"\.d", rb"\.wants", rb"\.requires")
    )
)


def _ipv6_syntax() -> bytes:
    """Every textual IPv6 form, for fullmatch: eight groups, or fewer around one '::', the
    last two groups possibly written as IPv4 (leading zeros allowed, as in the IPv4 rule)."""
    h = _IPV6_PARTS[b"h"]
    octet = rb"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9]?[0-9])"
    v4 = rb"(?:%s\.){3}%s" % (octet, octet)

    def groups(count: int) -> bytes:  # count groups joined by single colons
        return b"" if count == 0 else rb"(?:%s:){%d}%s" % (h, count - 1, h)

    forms = [rb"(?:%s:){7}%s" % (h, h), rb"(?:%s:){6}%s" % (h, v4)]
    for before in range(8):  # '::' stands for at least one group
        forms.append(groups(before) + b"::" + (rb"(?:%s(?::%s){0,%d})?" % (h, h, 6 - before) if before < 7 else b""))
    for before in range(6):
        forms.append(groups(before) + rb"::(?:%s:){0,%d}%s" % (h, 5 - before, v4))
    return b"|".join(forms)


IPV6_SYNTAX_RE = re.compile(_ipv6_syntax())


def is_ipv6(text: bytes) -> bool:
    """Exact IPv6 syntax check on bytes (ipaddress would need a str and costs twice as much)."""
    return IPV6_SYNTAX_RE.fullmatch(text) is not None


def _ipv6_address_length(candidate: bytes) -> int | None:
    """How many leading bytes of a candidate are an address (zone included), or None."""
    address = candidate.partition(b"%")[0]
    if address == b"::":  # the unspecified address: no one's, and a common separator
        return None
    if is_ipv6(address):
        return len(candidate)
    # a port glued to the end: "1:2:3:4:5:6:7:8:443"
    cut = address.rfind(b":")
    if cut > 0 and address[cut - 1] != 0x3A and address[cut + 1 :].isdigit() and is_ipv6(address[:cut]):
        return cut
    return None


def _replacement(replacement: bytes, original_length: int, keep_length: bool) -> bytes:
    return replacement + b" " * (original_length - len(replacement)) if keep_length else replacement


def _joined(pieces: list[bytes], data: bytes, done: int) -> bytes:
    """The replaced pieces and the rest of data after done; data itself when nothing was replaced."""
    if not pieces:
        return data
    pieces.append(data[done:])
    return b"".join(pieces)


def _anonymize_ipv6(data: bytes, pattern: re.Pattern[bytes], keep_length: bool) -> bytes:
    pieces, done = [], 0
    reversed_data = None
    for match in pattern.finditer(data):
        anchor, end = match.span()
        if reversed_data is None:
            reversed_data = data[::-1]
        # the groups before the anchor, read backwards
        start = max(len(data) - _IPV6_GROUPS_BEFORE_REVERSED_RE.match(reversed_data, len(data) - anchor).end(), done)
        if start and data[start - 1] in _WORD:
            # glued to a word: "Mycafe::Bad", "v1:2:3:4:5:6:7:8" are no addresses; in
            # "id:fe80::1" the word ends at the first colon, a separator
            first_colon = data.find(b":", start, anchor + 1)
            if first_colon == anchor:
                continue
            start = first_colon + 1
        head = data[start : start + 3]
        if head[:1] == b":" and (head[1:2] != b":" or head == b":::"):
            start += 1  # a separator colon in front: "=:2001:db8::1", " :::1"
        length = _ipv6_address_length(data[start:end])
        if length is not None:
            pieces += (data[done:start], _replacement(IP_REPLACEMENT, length, keep_length))
            done = start + length  # a glued port stays
    return _joined(pieces, data, done)


def _anonymize_ipv4(data: bytes, keep_length: bool) -> bytes:
    pieces, done = [], 0
    for match in IPV4_FROM_FIRST_DOT_RE.finditer(data):
        dot, end = match.span()
        start = dot - 1  # the look-behind made sure of one to three digits
        if start and data[start - 1] in _DIGITS:
            start -= 1
            if start and data[start - 1] in _DIGITS:
                start -= 1
        pieces += (data[done:start], _replacement(IP_REPLACEMENT, end - start, keep_length))
        done = end
    return _joined(pieces, data, done)


def _anonymize_mail(data: bytes, keep_length: bool) -> bytes:
    pieces, done = [], 0
    reversed_data = data[::-1]
    size = len(data)
    at = data.find(b"@")
    while at != -1:
        domain = DOMAIN_RE.match(data, at + 1)
        if domain:
            end = domain.end()
            bracketed = data[end : end + 1] == b">"
            local = bracketed and _BRACKETED_LOCAL_PART_REVERSED_RE.match(reversed_data, size - at)
            local = local or _LOCAL_PART_REVERSED_RE.match(reversed_data, size - at)
            start = size - local.end() if local else at
            if local and start >= done:
                pieces += (data[done:start], _replacement(MAIL_REPLACEMENT, end - start, keep_length))
                done = end
        at = data.find(b"@", max(at + 1, done))
    return _joined(pieces, data, done)


def anonymize(data: bytes, *, keep_length: bool = False) -> bytes:
    """Anonymise one line or a buffer of complete lines; line structure is kept byte for byte.

    keep_length pads every replacement with spaces to the length of what it replaces (for
    rsyslog, whose MSG is a window at a fixed offset into rawmsg).
    """
    # IPv6 before IPv4: ::ffff:192.0.2.1 is one address. Addresses before mail: in
    # alice@fe80::1 the mail pass alone would take "alice@fe80" and leave "::1", while
    # "alice@0" is a mail address as a whole.
    if b"::" in data:
        data = _anonymize_ipv6(data, IPV6_COMPRESSED_RE, keep_length)
    if data.count(b":") >= 6:
        data = _anonymize_ipv6(data, IPV6_FULL_RE, keep_length)
    if b"." in data:
        data = _anonymize_ipv4(data, keep_length)
    if b"@" in data:
        data = _anonymize_mail(data, keep_length)
    return data


anonymize_line = anonymize


# --- filter / omprog ----------------------------------------------------------------------

DEFAULT_CHUNK_SIZE = 1 << 20


class _ReopenableOutput:
    """An append-only output file that logrotate can move away: SIGHUP makes it reopen."""

    def __init__(self, path: str | None):
        self.path = path
        self.reopen_requested = False
        self.stream = sys.stdout.buffer if path is None else self._open()

    def _open(self):
        return open(self.path, "ab")  # open for the life of the process

    def request_reopen(self, _signum=None, _frame=None) -> None:
        self.reopen_requested = True

    def write(self, data: bytes) -> None:
        if self.reopen_requested and self.path is not None:
            self.reopen_requested = False
            self.stream.close()
            self.stream = self._open()
        self.stream.write(data)

    def flush(self) -> None:
        self.stream.flush()


def _complete_lines(fd: int, chunk_size: int):
    """Yield buffers of complete lines as they arrive; the last piece may lack its newline.

    os.read returns what is there instead of waiting for a full chunk, so a slow pipe is
    answered at once while a file is read in big blocks.
    """
    pending: list[bytes] = []
    while True:
        data = os.read(fd, chunk_size)
        if not data:
            break
        cut = data.rfind(b"\n") + 1
        if not cut:
            pending.append(data)  # a line longer than one read: keep collecting
            continue
        if pending:
            pending.append(data[:cut])
            yield b"".join(pending)
            pending = []
        else:
            yield data[:cut]
        if cut < len(data):
            pending.append(data[cut:])
    if pending:
        yield b"".join(pending)


def _split_lines(block: bytes) -> list[bytes]:
    """Lines with their LF; unlike bytes.splitlines a lone CR does not end a line (rsyslog
    frames on LF only, and one message must get exactly one answer)."""
    lines = [line + b"\n" for line in block.split(b"\n")]
    lines[-1] = lines[-1][:-1]  # what follows the last LF
    if not lines[-1]:
        lines.pop()
    return lines


def run_filter(
    fd: int,
    output: _ReopenableOutput,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    line_buffered: bool = False,
    confirm: bool = False,
) -> None:
    confirmations = sys.stdout.buffer
    if confirm:
        confirmations.write(b"OK\n")  # ready for the first message
        confirmations.flush()
    for block in _complete_lines(fd, chunk_size):
        for piece in _split_lines(block) if line_buffered or confirm else (block,):
            output.write(anonymize(piece))
            output.flush()
            if confirm:
                # the line is in the file: omprog may forget the message
                confirmations.write(b"OK\n")
                confirmations.flush()


# --- mmexternal -------------------------------------------------------------------------

_JSON_ESCAPES = {i: b"\\u%04x" % i for i in range(0x20)} | {
    ord("\n"): b"\\n",
    ord("\r"): b"\\r",
    ord("\t"): b"\\t",
    ord('"'): b'\\"',
    ord("\\"): b"\\\\",
}
_JSON_NEEDS_ESCAPE_RE = re.compile(rb'[\x00-\x1f"\\]')


def json_bytes_string(value: bytes) -> bytes:
    """A JSON string for raw bytes: bytes >= 0x80 pass as they are, so invalid UTF-8 survives
    (rsyslog's json-c parser takes them; json.dumps would need text)."""
    return b'"' + _JSON_NEEDS_ESCAPE_RE.sub(lambda m: _JSON_ESCAPES[m.group()[0]], value) + b'"'


def _anonymize_text(text: str) -> str:
    # surrogateescape maps undecodable bytes to lone surrogates and back, byte for byte
    return anonymize(text.encode("utf-8", "surrogateescape")).decode("utf-8", "surrogateescape")


def _anonymize_json(value):
    if isinstance(value, str):
        return _anonymize_text(value)
    if isinstance(value, list):
        return [_anonymize_json(item) for item in value]
    if isinstance(value, dict):
        return {_anonymize_text(key): _anonymize_json(item) for key, item in value.items()}
    return value


FULLJSON_STRING_PROPERTIES = (
    "syslogtag",
    "procid",
    "msgid",
    "structured-data",
    "hostname",
    "fromhost",
    "fromhost-ip",
)


def fulljson_reply(message: dict) -> dict:
    """The properties of an rsyslog jsonmesg object that anonymisation changes, in the
    order rsyslog must apply them."""
    changes: dict = {}
    # MSG is a window at a fixed offset into rawmsg. rawmsg goes first, with every
    # replacement padded to the old length so that window stays in place; then the exact
    # new msg, which rsyslog writes into that window (MsgSetRawMsg, then MsgReplaceMSG).
    rawmsg = message.get("rawmsg")
    if isinstance(rawmsg, str):
        raw = rawmsg.encode("utf-8", "surrogateescape")
        new_raw = anonymize(raw, keep_length=True)
        if new_raw != raw:
            changes["rawmsg"] = new_raw.decode("utf-8", "surrogateescape")
    for name in ("msg", *FULLJSON_STRING_PROPERTIES):
        value = message.get(name)
        if isinstance(value, str):
            new_value = _anonymize_text(value)
            if new_value != value:
                changes[name] = new_value
    tree = message.get("$!")
    if isinstance(tree, dict):
        # rsyslog merges the reply's "$!" into the message's tree at the top level
        tree_changes = {}
        for key, value in tree.items():
            new_key, new_value = _anonymize_text(key), _anonymize_json(value)
            if new_key != key:
                tree_changes[key] = ""  # cannot delete a variable: empty it, add the clean one
            if new_key != key or new_value != value:
                tree_changes[new_key] = new_value
        if tree_changes:
            changes["$!"] = tree_changes
    return changes


def _encode_reply(changes: dict) -> bytes:
    text = json.dumps(changes, ensure_ascii=False, separators=(",", ":"))
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that did not come from a byte: escape it
        return json.dumps(changes, separators=(",", ":")).encode("ascii")


def mmexternal_reply(line: bytes, interface_input: str = "msg") -> bytes:
    """The one-line JSON answer (without LF) to one message line (without LF)."""
    if interface_input in ("msg", "rawmsg"):
        # rawmsg: the reply cannot say where MSG starts, so keep every offset as it is
        new_value = anonymize(line, keep_length=interface_input == "rawmsg")
        if new_value == line:
            return b"{}"  # rsyslog skips parsing this one
        return b'{"' + interface_input.encode() + b'":' + json_bytes_string(new_value) + b"}"
    try:
        message = json.loads(line.decode("utf-8", "surrogateescape"), strict=False)
        if not isinstance(message, dict):
            raise ValueError("not a JSON object")
        changes = fulljson_reply(message)
        return _encode_reply(changes) if changes else b"{}"
    except (ValueError, RecursionError):
        # not rsyslog's jsonmesg (interface.input set to msg after all?): never let it through raw
        return b'{"msg":' + json_bytes_string(anonymize(line)) + b"}"


def run_mmexternal(fd: int, out, interface_input: str) -> None:
    for block in _complete_lines(fd, DEFAULT_CHUNK_SIZE):
        for line in _split_lines(block):
            out.write(mmexternal_reply(line.removesuffix(b"\n"), interface_input) + b"\n")
            out.flush()  # rsyslog waits for this answer before it sends the next message


# --- command line -----------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tomwerk-anonymize",
        description="Replace every IP address with 0 and every mail address with x@x (stdin -> stdout).",
        epilog="Rules and rsyslog set-up: the module documentation (pydoc3 /path/to/anonymize.py).",
    )
    parser.add_argument(
        "--mode",
        choices=["filter", "mmexternal", "omprog"],
        default="filter",
        help="filter: stdin to stdout (default); mmexternal: answer rsyslog's mmexternal, one JSON line"
        " per message; omprog: append rsyslog omprog's lines to --output",
    )
    parser.add_argument(
        "--interface-input",
        choices=["msg", "rawmsg", "fulljson"],
        default="msg",
        help="mmexternal: what rsyslog sends, as in the action's interface.input (default: msg)",
    )
    parser.add_argument("--output", metavar="FILE", help="append to FILE instead of stdout; SIGHUP reopens it")
    parser.add_argument(
        "--confirm-messages",
        action="store_true",
        help="omprog confirmMessages=on: print OK at start and after each line is written",
    )
    parser.add_argument("--line-buffered", action="store_true", help="write and flush every line on its own")
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=DEFAULT_CHUNK_SIZE,
        metavar="BYTES",
        help="largest read from stdin (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.chunk_size < 1:
        parser.error("--chunk-size must be positive")
    stdin_fd = sys.stdin.fileno()
    try:
        if args.mode == "mmexternal":
            # stderr shares rsyslog's reply pipe: a stray traceback would corrupt the protocol
            os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
            run_mmexternal(stdin_fd, sys.stdout.buffer, args.interface_input)
            return 0
        if (args.mode == "omprog" or args.confirm_messages) and not args.output:
            parser.error("--mode omprog and --confirm-messages need --output FILE (stdout carries the OKs)")
        output = _ReopenableOutput(args.output)
        if args.output:
            signal.signal(signal.SIGHUP, output.request_reopen)
        run_filter(
            stdin_fd,
            output,
            chunk_size=args.chunk_size,
            line_buffered=args.line_buffered or args.mode == "omprog",
            confirm=args.confirm_messages,
        )
    except BrokenPipeError:
        # the reader went away (e.g. `| head`): nothing left to protect, leave quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
