"""Benchmark tomwerk-anonymize against anonip 1.1.0 on a generated, fully known log corpus.

    .venv/bin/python bench/anonymize_bench.py [--lines 200000] [--repeat 3] [--seed 2026]

The corpus mixes nginx access/error, Postfix (smtpd, cleanup, qmgr, smtp), sshd, coturn,
Prosody (c2s/s2s, JIDs), lines with several addresses, every IPv6 form and lines without
personal data. Every line is built from literal text and personal-data slots, so its exact
anonymised form is known: a line whose output differs from it is *damaged*. Lines still
holding personal data are counted with the detector of the log-privacy checks
(tests/compliance/pii_scan.py), which shares no code or pattern with the anonymiser (it cuts
a line into tokens and asks `ipaddress`, plus a plain mail pattern).

Both tools read the same corpus file on stdin and write a file, several times; the table
shows the median lines/s. anonip runs in regex mode with masks that blank the whole address
(-4 32 -6 128) and a pattern that finds the first address anywhere in the line (anonip
replaces what the pattern's groups capture, so one address per line). The corpus is valid
UTF-8 because anonip reads text and stops at the first undecodable byte.

Exit status 1 when tomwerk-anonymize leaves personal data, damages a line or is slower than
anonip; 0 otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANONYMIZER_FILE = ROOT / "tomwerk_host" / "anonymize.py"
BIN = Path(sys.executable).parent


def _load(name: str, path: Path):
    """A module as the servers get it: one file, imported by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_anonymizer():
    return _load("tomwerk_anonymize_bench", ANONYMIZER_FILE)


# --- independent personal-data detector -------------------------------------------------
# The one the log-privacy checks run on the hosts: deliberately naive and separate from
# tomwerk_host/anonymize.py (tokens split at characters that never occur inside an
# address, every plausible cut of a token tried with ipaddress).
PII_SCAN_FILE = ROOT / "tests" / "compliance" / "pii_scan.py"
find_personal_data = _load("tomwerk_pii_scan_bench", PII_SCAN_FILE).find
ANONYMISED_MAIL = "x@x"


# --- corpus --------------------------------------------------------------------------------


class Corpus:
    """Lines built from literal text and (original, anonymised) slots."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.raw: list[str] = []
        self.expected: list[str] = []
        self.personal: list[list[str]] = []  # what was put into each line

    def add(self, *parts) -> None:
        raw, expected, personal = [], [], []
        for part in parts:
            if isinstance(part, tuple):
                raw.append(part[0])
                expected.append(part[1])
                personal.append(part[0])
            else:
                raw.append(part)
                expected.append(part)
        self.raw.append("".join(raw))
        self.expected.append("".join(expected))
        self.personal.append(personal)

    # personal-data slots
    def ipv4(self) -> tuple[str, str]:
        r = self.rng.randint
        return (f"{r(1, 223)}.{r(0, 255)}.{r(0, 255)}.{r(1, 254)}", "0")

    def ipv6(self, form: str | None = None) -> tuple[str, str]:
        rng = self.rng
        form = form or rng.choice(("compressed", "compressed", "compressed", "full", "upper", "mapped", "nat64"))
        network = rng.choice((0x20010DB8, 0x2A0104F8, 0x2A001450, 0x2003_00E4))
        address = ipaddress.IPv6Address(
            (network << 96) | (rng.getrandbits(32) << 64) | rng.choice((1, 2, 0x10, rng.getrandbits(64)))
        )
        v4 = self.ipv4()[0]
        text = {
            "compressed": address.compressed,
            "full": address.exploded,
            "upper": address.compressed.upper(),
            "mapped": f"::ffff:{v4}",
            "nat64": f"64:ff9b::{v4}",
            "loopback": "::1",
            "link-local": f"fe80::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}%eth{rng.randint(0, 3)}",
        }[form]
        return (text, "0")

    def ip(self) -> tuple[str, str]:
        return self.ipv6() if self.rng.random() < 0.25 else self.ipv4()

    def mail(self) -> tuple[str, str]:
        rng = self.rng
        local = rng.choice(
            ("alice", "bob", "c.meier", "alice.smith+tag", "info", "jürgen", "mail-admin", "k_lehmann", "no-reply")
        )
        if rng.random() < 0.3:
            local += str(rng.randint(1, 999))
        domain = rng.choice(
            ("example.org", "mail.example.co.uk", "example.de", "müller-bau.example", "localhost", "sub.example.net")
        )
        return (f"{local}@{domain}", ANONYMISED_MAIL)

    def jid(self) -> tuple[str, str]:
        user = self.rng.choice(("alice", "bob", "carol", "dave.k", "eve_m"))
        return (f"{user}@{self.rng.choice(('meet.example.org', 'xmpp.example.de'))}", ANONYMISED_MAIL)

    # literal helpers
    def syslog_time(self) -> str:
        r = self.rng.randint
        return f"Nov {r(1, 30):2d} {r(0, 23):02d}:{r(0, 59):02d}:{r(0, 59):02d}"

    def queue_id(self) -> str:
        if self.rng.random() < 0.5:
            return "".join(self.rng.choices("0123456789ABCDEF", k=10))
        return "4" + "".join(self.rng.choices("BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789", k=13))

    def port(self) -> str:
        return str(self.rng.randint(1024, 65535))

    def pid(self) -> str:
        return str(self.rng.randint(100, 99999))


def _nginx_access(c: Corpus) -> None:
    rng = c.rng
    path = rng.choice(("/", "/index.php?id=42", "/wp-login.php", "/static/app.3f2a9c.js", "/api/v1/items/17"))
    agent = rng.choice(
        (
            ("Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",),
            ("curl/7.88.1",),
            ("Go-http-client/1.1",),
            # Chrome's reduced version is a valid IPv4 literal: privacy first, it goes too
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/",
                ("119.0.0.0", "0"),
            ),
        )
    )
    user = c.mail() if rng.random() < 0.05 else "-"
    c.add(
        c.ip(),
        " - ",
        user,
        f' [21/Nov/2026:{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:05 +0100] "GET {path} HTTP/1.1" ',
        f'{rng.choice(("200", "304", "404", "301", "500"))} {rng.randint(0, 99999)} "-" "',
        *agent,
        '"',
    )


def _nginx_error(c: Corpus) -> None:
    rng = c.rng
    c.add(
        f"2026/11/21 15:04:{rng.randint(0, 59):02d} [error] {c.pid()}#{c.pid()}: *{rng.randint(1, 99999)} ",
        'open() "/var/www/html/favicon.ico" failed (2: No such file or directory), client: ',
        c.ip(),
        ', server: example.org, request: "GET /favicon.ico HTTP/1.1", host: "example.org"',
    )


def _postfix(c: Corpus) -> None:
    rng = c.rng
    head = f"{c.syslog_time()} mx1 postfix/"
    qid = c.queue_id()
    kind = rng.randrange(7)
    if kind == 0:
        c.add(head, f"smtpd[{c.pid()}]: connect from unknown[", c.ip(), "]")
    elif kind == 1:
        c.add(
            head,
            f"smtpd[{c.pid()}]: {qid}: client=mail.example.com[",
            c.ip(),
            "]:",
            c.port(),
            ", sasl_method=PLAIN, sasl_username=",
            c.mail(),
        )
    elif kind == 2:
        c.add(head, f"cleanup[{c.pid()}]: {qid}: message-id=<", (f"20261121150405.{qid}@mx1.example.org", "x@x"), ">")
    elif kind == 3:
        sender = "" if rng.random() < 0.1 else c.mail()  # from=<> is a bounce
        c.add(
            head,
            f"qmgr[{c.pid()}]: {qid}: from=<",
            sender,
            f">, size={rng.randint(300, 99999)}, nrcpt=1 (queue active)",
        )
    elif kind == 4:
        c.add(
            head,
            f"smtp[{c.pid()}]: {qid}: to=<",
            c.mail(),
            ">, relay=mx.example.net[",
            c.ip(),
            f"]:25, delay=0.52, delays=0.1/0/0.2/0.2, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as {c.queue_id()})",
        )
    elif kind == 5:
        address = c.ipv6()
        c.add(
            head,
            f"smtpd[{c.pid()}]: NOQUEUE: reject: RCPT from unknown[",
            address,
            "]: 554 5.7.1 <",
            c.mail(),
            ">: Relay access denied; from=<",
            c.mail(),
            "> to=<",
            c.mail(),
            "> proto=ESMTP helo=<[",
            address,
            "]>",
        )
    else:
        c.add(
            head, f"smtpd[{c.pid()}]: disconnect from unknown[", c.ip(), "] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4"
        )


def _sshd(c: Corpus) -> None:
    rng = c.rng
    head = f"{c.syslog_time()} web1 sshd[{c.pid()}]: "
    kind = rng.randrange(5)
    if kind == 0:
        c.add(
            head,
            "Accepted publickey for deploy from ",
            c.ip(),
            f" port {c.port()} ssh2: ED25519 SHA256:3pB2J7mKp1QhXyZ0uVw9aQk4rT8sL6nD2fG5hJ1kL0c",
        )
    elif kind == 1:
        c.add(head, "Failed password for invalid user admin from ", c.ip(), f" port {c.port()} ssh2")
    elif kind == 2:
        c.add(head, f"Invalid user {rng.choice(('test', 'oracle', 'ubnt'))} from ", c.ip(), f" port {c.port()}")
    elif kind == 3:
        c.add(head, "Connection closed by authenticating user root ", c.ip(), f" port {c.port()} [preauth]")
    else:
        c.add(
            head, "Accepted key ED25519 SHA256:Xk2m9pQ found at /home/deploy/.ssh/authorized_keys:3 comment ", c.mail()
        )


def _coturn(c: Corpus) -> None:
    rng = c.rng
    session = f"{rng.randint(1, 999):03d}000000000{rng.randint(0, 999999):06d}"
    head = f"{rng.randint(1000, 99999)}: : session {session}: "
    kind = rng.randrange(4)
    if kind == 0:
        c.add(
            head, f"new, realm=<turn.example.org>, username=<{rng.randint(1700000000, 1800000000)}:alice>, lifetime=600"
        )
    elif kind == 1:
        c.add(head, "realm <turn.example.org> user <", c.mail(), ">: incoming packet ALLOCATE processed, success")
    elif kind == 2:
        local = c.ipv6() if rng.random() < 0.5 else c.ipv4()
        remote = c.ipv6() if local[0].count(":") else c.ipv4()
        if ":" in local[0]:
            c.add(head, "TCP socket: local [", local, "]:3478, remote [", remote, f"]:{c.port()}")
        else:
            c.add(head, "UDP socket: local ", local, ":3478, remote ", remote, f":{c.port()}")
    else:
        c.add(head, "peer ", c.ip(), f" lifetime updated: {rng.choice(('300', '600'))}")


def _prosody(c: Corpus) -> None:
    rng = c.rng
    connection = f"c2s{rng.getrandbits(40):010x}"
    head = f"{c.syslog_time()} prosody[{c.pid()}]: "
    kind = rng.randrange(5)
    if kind == 0:
        c.add(head, f"{connection}\tinfo\tClient connected from ", c.ip())
    elif kind == 1:
        c.add(head, f"{connection}\tinfo\tAuthenticated as ", c.jid())
    elif kind == 2:
        resource = rng.choice(("gajim.X7K2P", "Conversations.a9Bc", "phone", "laptop-home"))
        c.add(head, f"{connection}\tdebug\tReceived[c2s]: <presence from='", c.jid(), f"/{resource}' id='p{c.pid()}'>")
    elif kind == 3:
        c.add(
            head,
            f"s2sout{rng.getrandbits(40):010x}\tinfo\tOutgoing s2s connection meet.example.org->example.com complete",
        )
    else:
        c.add(head, f"{connection}\tinfo\tClient disconnected: connection closed")


def _several(c: Corpus) -> None:
    c.add(
        f"{c.syslog_time()} gw audit[{c.pid()}]: src=",
        c.ipv4(),
        " dst=",
        c.ipv6(),
        " user=",
        c.mail(),
        " via ",
        c.ipv4(),
        " notify ",
        c.mail(),
        ", ",
        c.mail(),
    )


def _ipv6_forms(c: Corpus) -> None:
    rng = c.rng
    form = rng.choice(("compressed", "full", "upper", "mapped", "nat64", "loopback", "link-local"))
    address = c.ipv6(form)
    layout = rng.randrange(4)
    if layout == 0:
        c.add(f"{c.syslog_time()} web1 app[{c.pid()}]: peer ", address, " ok")
    elif layout == 1:
        c.add(f"{c.syslog_time()} web1 app[{c.pid()}]: connect to [", address, f"]:{c.port()} failed")
    elif layout == 2:
        c.add(
            f"{c.syslog_time()} web1 dovecot: imap-login: Login: user=<",
            c.mail(),
            ">, rip=",
            address,
            ", lip=",
            c.ipv6(),
        )
    else:
        c.add("2026-11-21T15:04:05.123+01:00 web1 app: addr:", address, " (", address, ")")


_NO_PERSONAL_DATA = (
    "systemd[1]: Started user@1000.service - User Manager for UID 1000.",
    "systemd[1]: getty@tty1.service: Deactivated successfully.",
    "kernel: [12345.678901] eth0: link up, 1000Mbps, full-duplex, lpa 0x45E1, MAC 00:16:3e:aa:bb:cc",
    "nginx[812]: nginx/1.22.1 ready; OpenSSL 3.0.11 19 Sep 2023; Python/3.11.2 worker",
    "sshd[1021]: Server listening on :: port 22.",
    "sshd[1021]: OpenSSH_9.2p1 Debian-2+deb12u1, OpenSSL 3.0.11 19 Sep 2023",
    "CRON[4242]: (root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
    "app[77]: request 550e8400-e29b-41d4-a716-446655440000 done status=200 bytes=5123 rt=0.123 upstream=0.101",
    "perl[31]: Use of uninitialized value in concatenation at /usr/share/perl5/Foo/Bar.pm line 42 (Foo::Bar::baz).",
    "app[88]: terminate called after throwing an instance of 'std::runtime_error' at 12:34:56",
    "postfix/qmgr[901]: 4F3A21C0D2: removed",
    "backup[5]: sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 at 2026-11-21T15:04:05+01:00",
    "snmpd[12]: OID 1.3.6.1.4.1.2021.10.1.3.1 = 0.42, version 5.9.3, build 2026.11.21",
    "app[99]: Größe geändert: 1.024 KiB → 2.048 KiB, Übertragung zu 99.5 % fertig",
)


def _no_personal_data(c: Corpus) -> None:
    c.add(f"{c.syslog_time()} web1 ", c.rng.choice(_NO_PERSONAL_DATA))


KINDS = (
    (_nginx_access, 22),
    (_nginx_error, 4),
    (_postfix, 18),
    (_sshd, 10),
    (_coturn, 6),
    (_prosody, 6),
    (_several, 4),
    (_ipv6_forms, 6),
    (_no_personal_data, 24),
)


def generate_corpus(lines: int, seed: int = 2026) -> Corpus:
    corpus = Corpus(seed)
    makers = [maker for maker, _ in KINDS]
    weights = [weight for _, weight in KINDS]
    for maker in corpus.rng.choices(makers, weights, k=lines):
        maker(corpus)
    return corpus


def corpus_bytes(lines: list[str], *, crlf_every: int = 97) -> bytes:
    """Newline-terminated lines, some with CRLF, the last one without a terminator."""
    out = []
    for index, line in enumerate(lines):
        if index == len(lines) - 1:
            out.append(line)
        else:
            out.append(line + ("\r\n" if index % crlf_every == crlf_every - 1 else "\n"))
    return "".join(out).encode("utf-8")


# --- anonip -------------------------------------------------------------------------------

_H = "[0-9a-fA-F]{1,4}"
_V4 = r"(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)"
_V6 = "|".join(
    (
        rf"::(?:[fF]{{4}}(?::0{{1,4}})?:)?{_V4}",
        rf"(?:{_H}:){{1,4}}:{_V4}",
        rf"(?:{_H}:){{7}}{_H}",
        rf"(?:{_H}:){{1,7}}:",
        rf"(?:{_H}:){{1,6}}:{_H}",
        rf"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
        rf"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
        rf"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
        rf"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
        rf"{_H}:(?::{_H}){{1,6}}",
        rf":(?::{_H}){{1,7}}",
    )
)
# first IPv6 or IPv4 address anywhere in the line; anonip replaces what the groups capture
ANONIP_REGEX = rf"^.*?(?:(?<![\w:.])({_V6})(?![\w:]|\.\d)|(?<![\w.])({_V4})(?!\w|\.\d))"


def anonip_command() -> list[str]:
    return [str(BIN / "anonip"), "-4", "32", "-6", "128", "--regex", ANONIP_REGEX]


def tomwerk_command(*extra: str) -> list[str]:
    script = BIN / "tomwerk-anonymize"
    if script.exists():
        return [str(script), *extra]
    return [sys.executable, str(ANONYMIZER_FILE), *extra]  # not installed: the file as on the servers


# --- measuring ------------------------------------------------------------------------------


def time_subprocess(command: list[str], corpus_file: Path, output_file: Path, repeat: int) -> tuple[float, bytes]:
    env = dict(os.environ, PYTHONUTF8="1")  # anonip reads text; do not depend on the locale
    durations, output = [], b""
    for _ in range(repeat):
        with corpus_file.open("rb") as stdin, output_file.open("wb") as stdout:
            start = time.perf_counter()
            subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL, env=env, check=True)
            durations.append(time.perf_counter() - start)
        this_output = output_file.read_bytes()
        if output and this_output != output:
            raise SystemExit(f"{command[0]}: output differs between repetitions")
        output = this_output
    return statistics.median(durations), output


def time_in_process(function, repeat: int) -> tuple[float, bytes]:
    durations, output = [], b""
    for _ in range(repeat):
        start = time.perf_counter()
        output = function()
        durations.append(time.perf_counter() - start)
    return statistics.median(durations), output


def blocks_of_lines(data: bytes, size: int) -> list[bytes]:
    blocks, start = [], 0
    while start < len(data):
        cut = data.rfind(b"\n", start, start + size) + 1 if start + size < len(data) else len(data)
        cut = cut if cut > start else len(data)
        blocks.append(data[start:cut])
        start = cut
    return blocks


def output_lines(output: bytes) -> list[str]:
    return output.decode("utf-8", "replace").split("\n")


def count_personal(lines: list[str]) -> int:
    return sum(1 for line in lines if find_personal_data(line))


def count_damaged(output: bytes, expected: bytes) -> int:
    """Lines that differ from their expected form, terminator included."""
    got, want = output.split(b"\n"), expected.split(b"\n")
    if len(got) != len(want):
        return max(len(got), len(want))  # lost or merged lines: everything is suspect
    return sum(1 for got_line, want_line in zip(got, want, strict=True) if got_line != want_line)


OURS = "tomwerk-anonymize (subprocess)"
ANONIP = "anonip 1.1.0 --regex (subprocess)"


def run_all(data: bytes, repeat: int) -> dict[str, tuple[float, bytes]]:
    """Median seconds and output of every contender, all on the same corpus in this run."""
    anonymizer = load_anonymizer()
    blocks = blocks_of_lines(data, anonymizer.DEFAULT_CHUNK_SIZE)
    one_per_line = data.splitlines(keepends=True)
    workdir = Path(tempfile.mkdtemp(prefix="anonymize-bench-"))
    try:
        corpus_file = workdir / "corpus.log"
        corpus_file.write_bytes(data)
        output_file = workdir / "output.log"
        return {
            OURS: time_subprocess(tomwerk_command(), corpus_file, output_file, repeat),
            # one write and flush per line, as anonip does it
            "tomwerk-anonymize --line-buffered": time_subprocess(
                tomwerk_command("--line-buffered"), corpus_file, output_file, repeat
            ),
            "anonymize() in-process, 1 MiB blocks": time_in_process(
                lambda: b"".join(map(anonymizer.anonymize, blocks)), repeat
            ),
            "anonymize_line() in-process, per line": time_in_process(
                lambda: b"".join(map(anonymizer.anonymize_line, one_per_line)), repeat
            ),
            ANONIP: time_subprocess(anonip_command(), corpus_file, output_file, repeat),
        }
    finally:
        shutil.rmtree(workdir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="corpus size (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool; the median counts (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=2026, help="corpus seed (default: %(default)s)")
    args = parser.parse_args(argv)
    if not (BIN / "anonip").exists():
        raise SystemExit(f"anonip not found in {BIN}: run make bootstrap")

    started = time.perf_counter()
    corpus = generate_corpus(args.lines, args.seed)
    data, expected = corpus_bytes(corpus.raw), corpus_bytes(corpus.expected)
    lines = len(corpus.raw)
    print(f"corpus: {lines} lines, {len(data) / 1e6:.1f} MB, seed {args.seed}")
    input_personal = count_personal(corpus.raw)
    print(f"lines with personal data in the input: {input_personal} ({input_personal / lines:.1%})")

    runs = run_all(data, args.repeat)
    anonip_rate = lines / runs[ANONIP][0]
    personal_by_output: dict[bytes, int] = {}  # our variants agree: detect once
    failures = []
    print(f"\n{'':40} {'lines/s':>10} {'x anonip':>9} {'lines with PII left':>20} {'damaged':>8}")
    for name, (seconds, output) in runs.items():
        if output not in personal_by_output:
            personal_by_output[output] = count_personal(output_lines(output))
        personal = personal_by_output[output]
        rate = lines / seconds
        ours = name != ANONIP
        damaged = count_damaged(output, expected) if ours else None
        print(
            f"{name:40} {rate:10.0f} {rate / anonip_rate:9.2f} {personal:11d} ({personal / lines:6.2%})"
            f" {'n/a' if damaged is None else damaged:>8}"
        )
        if ours and personal:
            failures.append(f"{name}: {personal} lines still hold personal data")
        if ours and damaged:
            failures.append(f"{name}: {damaged} lines differ from their expected form")
    our_rate = lines / runs[OURS][0]
    if our_rate < anonip_rate:
        failures.append(f"tomwerk-anonymize is slower than anonip ({our_rate:.0f} < {anonip_rate:.0f} lines/s)")
    print(f"\nbar: anonip's rate, goal: twice that; took {time.perf_counter() - started:.0f} s")
    for failure in failures:
        print("FAIL:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
