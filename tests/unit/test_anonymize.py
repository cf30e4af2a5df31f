"""tomwerk-anonymize: every IP address to 0, every mail address to x@x, nothing else touched.

Expected outputs come from the rules in the module documentation, written out by hand or
built from templates (bench/anonymize_bench.py); "no personal data left" is judged by the
detector of the log-privacy checks (tests/compliance/pii_scan.py, as the bench loads it),
which shares no pattern with the anonymiser (tokens plus ipaddress).
"""

from __future__ import annotations

import ast
import importlib.util
import ipaddress
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from tomwerk import ROOT
from tomwerk_host import anonymize as anon

ANONYMIZER = ROOT / "tomwerk_host" / "anonymize.py"
_spec = importlib.util.spec_from_file_location("anonymize_bench", ROOT / "bench" / "anonymize_bench.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)
find_personal_data = bench.find_personal_data


def run_cli(*args: str, data: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess:
    # the file itself, as it is copied to the servers
    return subprocess.run(
        [sys.executable, str(ANONYMIZER), *args], input=data, capture_output=True, timeout=timeout, check=False
    )


def personal_data(data: bytes) -> list[str]:
    return [hit for line in data.decode("utf-8", "replace").split("\n") for hit in find_personal_data(line)]


# --- what is replaced ---------------------------------------------------------------------

REPLACED = [
    # IPv4
    ("192.0.2.10", "0"),
    ("client 192.0.2.10:51234", "client 0:51234"),
    ("from=192.0.2.1,to=198.51.100.7;", "from=0,to=0;"),
    ("1.2.3.4", "0"),
    ("0.0.0.0 and 255.255.255.255", "0 and 0"),
    ("192.168.001.010", "0"),
    ("10.0.0.0/8", "0/8"),
    ("unknown[203.0.113.9]", "unknown[0]"),
    ("(203.0.113.9)", "(0)"),
    ("ends with 203.0.113.9.", "ends with 0."),
    ("Chrome/119.0.0.0 Safari/537.36", "Chrome/0 Safari/537.36"),
    ("Dovecot v2.3.19.1", "Dovecot v0"),
    ("http://192.0.2.5:8080/path", "http://0:8080/path"),
    # IPv6, every textual form
    ("2001:db8::1", "0"),
    ("2001:0db8:0000:0000:0000:0000:0000:0001", "0"),
    ("2001:DB8::ABCD", "0"),
    ("[2001:db8::1]:443", "[0]:443"),
    ("[2001:db8::1]", "[0]"),
    ("fe80::1%eth0 up", "0 up"),
    ("fe80::1%25eth0", "0"),
    ("::ffff:192.0.2.1", "0"),
    ("64:ff9b::192.0.2.1", "0"),
    ("0:0:0:0:0:ffff:192.0.2.1", "0"),
    ("::1", "0"),
    ("[::1]:8080", "[0]:8080"),
    ("2001:db8::", "0"),
    ("2001:db8::/32", "0/32"),
    ("1:2:3:4:5:6:7::", "0"),
    ("::2:3:4:5:6:7:8", "0"),
    ("rip=2001:db8::5, lip=2001:db8::6", "rip=0, lip=0"),
    ("addr:2001:db8::1", "addr:0"),
    ("id:fe80::1", "id:0"),
    ("addr:::1", "addr:0"),
    ("2001:db8::1: connection closed", "0: connection closed"),
    ("2001:db8:0:0:0:0:0:1:443", "0:443"),
    ("Dead::Beef", "0"),  # every part hex: a valid address
    # mail
    ("from=<alice.smith+tag@mail.example.co.uk>", "from=<x@x>"),
    ("user@localhost", "x@x"),
    ("a!b#c$d&e*f^g~h@example.org", "x@x"),
    (r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR", r"x@x[4\PZX54(P^)7CC)7}$EICAR"),  # as sudo logs it
    ("sasl_username=bob@example.org", "sasl_username=x@x"),
    ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA x@x"),
    ("to=<SRS0=HHH=TT=example.com=alice@fwd.example.net>", "to=<x@x>"),
    ("orig_to=<bob@example.org>, to=<carol@example.org>", "orig_to=<x@x>, to=<x@x>"),
    ("user@[192.0.2.1] and user@[IPv6:2001:db8::1]", "x@x and x@x"),
    ("mail to bob@example.org.", "mail to x@x."),
    ("...alice@example.org", "...x@x"),
    ("jürgen@müller.example", "x@x"),
    ("alice@meet.example.org/resource", "x@x/resource"),
    ("Authenticated as carol@xmpp.example.de", "Authenticated as x@x"),
    ("message-id=<20261121150405.4F3A21C0D2@mx1.example.org>", "message-id=<x@x>"),
    ("user@192.0.2.1", "x@x"),
    ("alice@fe80::a:b:c:d%eth0 and bob@::1", "x@x and x@x"),
    ("alice@2001:db8::1:25", "x@x"),
    ("alice@example.org:25", "x@x:25"),
    ("...192.0.2.1 host.192.0.2.2", "...0 host.0"),
    ("dropped.fe80::1", "dropped.0"),
    # several in one line
    (
        "src=192.0.2.1 dst=2001:db8::2 user=a@b.example via 198.51.100.1 and fe80::1%lo",
        "src=0 dst=0 user=x@x via 0 and 0",
    ),
]


@pytest.mark.parametrize(("line", "expected"), REPLACED)
def test_addresses_are_replaced(line, expected):
    assert anon.anonymize(line.encode()) == expected.encode()


@pytest.mark.parametrize(("line", "expected"), REPLACED)
def test_replaced_lines_hold_no_personal_data(line, expected):
    out = anon.anonymize(line.encode()).decode()
    assert find_personal_data(line), "the detector must see the personal data in the input"
    assert find_personal_data(out) == []


# --- what stays ----------------------------------------------------------------------------

UNCHANGED = [
    "12:34:56",
    "2026-11-21T15:04:05.123+01:00",
    "Nov 21 15:04:05 web1 sshd[1234]:",
    "21/Nov/2026:15:04:05 +0100",
    "nginx/1.22.1 OpenSSH_9.2p1 Python/3.11.2",
    "postfix/qmgr[901]: 4F3A21C0D2: removed",
    "queued as 4Zx7Yk3TQkz9vN",
    "sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    '"GET / HTTP/1.1" 200 5123 "-"',
    "MAC 00:16:3e:aa:bb:cc",
    "request 550e8400-e29b-41d4-a716-446655440000 done",
    "Foo::Bar::baz std::vector Data::Dumper",
    "Mycafe::Bad",
    "::Bar",
    "key :: value",
    "::",
    "1.2.3.256",
    "256.1.1.1",
    "1.3.6.1.4.1.2021",
    "1.2.3",
    "dsn=2.0.0 delays=0.1/0/0.2/0.2",
    "1:2:3:4:5:6:7",
    "SHA256:3pB2J7mKp1QhXyZ0uVw9aQk4rT8sL6nD2fG5hJ1kL0c",
    "MD5:12:f8:7e:aa:00:11:22:33:44:55:66:77:88:99:aa:bb",
    "from=<>",
    "Started user@1000.service - User Manager for UID 1000.",
    "getty@tty1.service: Deactivated successfully.",
    "dpkg: warning: unable to delete old directory '/lib/systemd/system/user@0.service.d': Directory not empty",
    "Created symlink /etc/systemd/system/getty.target.wants/getty@tty1.service.",
    "openvpn@server.socket",
    "@alice",
    "alice@",
    "a @ b",
    "x@x and 0",  # already anonymised
    "",
    "Größe geändert: 1.024 KiB → 2.048 KiB",
]


@pytest.mark.parametrize("line", UNCHANGED)
def test_text_without_personal_data_stays_byte_for_byte(line):
    assert anon.anonymize(line.encode()) == line.encode()


@pytest.mark.parametrize("line", UNCHANGED)
def test_the_detector_agrees_these_hold_no_personal_data(line):
    # keeps the two lists above honest: what stays must really be free of personal data
    assert find_personal_data(line) == []


@pytest.mark.parametrize("last_octet", [0, 9, 10, 99, 100, 199, 200, 249, 250, 255, 256, 299, 300, 999, 1000])
def test_ipv4_octet_range_agrees_with_ipaddress(last_octet):
    text = f"at 198.51.100.{last_octet} now"
    try:
        ipaddress.IPv4Address(text.split()[1])
        expected = "at 0 now"
    except ValueError:
        expected = text
    assert anon.anonymize(text.encode()).decode() == expected


def _random_ipv6_texts(rng: random.Random):
    for _ in range(300):
        address = ipaddress.IPv6Address(rng.getrandbits(128) >> rng.choice((0, 16, 64, 96, 112)))
        yield address.compressed
        yield address.exploded
        yield address.compressed.upper()
        yield f"::ffff:{ipaddress.IPv4Address(rng.getrandbits(32))}"


@pytest.mark.parametrize("seed", range(3))
def test_random_addresses_in_random_surroundings(seed):
    rng = random.Random(seed)
    for address in _random_ipv6_texts(rng):
        if address == "::":
            continue
        before = rng.choice(["", " ", "[", "(", "=", "<", "client ", "addr:", "from=", '"'])
        after = rng.choice(["", " ", "]", "]:443", ")", ",", ". ", ";", "/64", '"', "%eth0 "])
        expected = before + "0" + (after if not after.startswith("%") else " ")
        assert anon.anonymize((before + address + after).encode()).decode() == expected, address
    for _ in range(300):
        v4 = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        before = rng.choice(["", " ", "[", "=", "client ", "ip:", "/"])
        after = rng.choice(["", " ", "]", ":443", ",", ". ", "/24"])
        assert anon.anonymize((before + v4 + after).encode()).decode() == before + "0" + after


_WORDS = ["error", "Foo::Bar", "12:34:56", "nginx/1.22.1", "00:16:3e:aa:bb:cc", "x@x", "from=<>", "::", "1.2.3.256"]
_SEPARATORS = [" ", ", ", " [", "] ", " (", ") ", ": ", "/", '"', "\t", " ... "]


@pytest.mark.parametrize("seed", range(5))
def test_fuzz_addresses_and_words_with_log_separators(seed):
    """Whatever the mix, every address goes and every word stays (angle brackets: see REPLACED)."""
    rng = random.Random(seed)
    addresses = [*list(_random_ipv6_texts(rng))[:200], "192.0.2.1", "fe80::a:b%eth0", "bob@example.org", "a@[::1]"]
    for _ in range(2000):
        parts = [rng.choice(addresses if rng.random() < 0.5 else _WORDS) for _ in range(rng.randint(1, 8))]
        line = "".join(part + rng.choice(_SEPARATORS) for part in parts)
        out = anon.anonymize(line.encode()).decode()
        assert find_personal_data(out) == [], (line, out)
        for part in parts:
            if part in _WORDS:
                assert part in out, (line, out)
        assert anon.anonymize(line.encode(), keep_length=True).__len__() == len(line.encode())


def _random_candidate(rng: random.Random) -> bytes:
    groups = [
        format(rng.getrandbits(rng.choice((4, 8, 12, 16, 20))), "x") if rng.random() > 0.2 else ""
        for _ in range(rng.randint(1, 10))
    ]
    text = ":".join(groups)
    if rng.random() < 0.25:
        text += ":" + ".".join(str(rng.randint(1, 300)) for _ in range(rng.choice((3, 4))))
    return text.encode()


def test_ipv6_syntax_check_agrees_with_ipaddress():
    rng = random.Random(7)
    samples = [_random_candidate(rng) for _ in range(20000)]
    samples += [b"::", b"::1", b"1::", b"1:2:3:4:5:6:7::", b"::1:2:3:4:5:6:7", b":::", b"1:::2", b"1::2::3"]
    valid = 0
    for sample in samples:
        try:
            ipaddress.IPv6Address(sample.decode())
            expected = True
        except ValueError:
            expected = False
        valid += expected
        assert anon.is_ipv6(sample) is expected, sample
    assert valid > 1000  # the sample holds plenty of both


# --- lines ----------------------------------------------------------------------------------


def test_generated_corpus_comes_out_exactly_as_expected_and_clean():
    corpus = bench.generate_corpus(6000, seed=11)
    data, expected = bench.corpus_bytes(corpus.raw), bench.corpus_bytes(corpus.expected)
    out = anon.anonymize(data)
    assert bench.count_damaged(out, expected) == 0
    assert out == expected
    assert personal_data(out) == []
    for raw, personal in zip(corpus.raw, corpus.personal, strict=True):
        # the detector sees exactly the lines that carry personal data
        assert bool(find_personal_data(raw)) == bool(personal), raw
    for value in {value for personal in corpus.personal for value in personal if len(value) >= 7}:
        assert value.encode() not in out


def test_a_buffer_of_lines_gives_what_each_line_gives():
    lines = bench.corpus_bytes(bench.generate_corpus(2000, seed=3).raw).split(b"\n")
    assert anon.anonymize(b"\n".join(lines)) == b"\n".join(anon.anonymize_line(line) for line in lines)


def test_line_count_terminators_and_empty_lines_are_kept():
    data = b"a 192.0.2.1\r\n\n\r\nb@example.org\n\n2001:db8::1\nlast 192.0.2.2"
    out = anon.anonymize(data)
    assert out == b"a 0\r\n\n\r\nx@x\n\n0\nlast 0"
    assert out.count(b"\n") == data.count(b"\n") and out.count(b"\r") == data.count(b"\r")


def test_invalid_utf8_passes_untouched():
    data = b"\xff\xfe user=\xc3( 192.0.2.1 \xed\xa0\x80 bob@example.org \x80\n"
    assert anon.anonymize(data) == b"\xff\xfe user=\xc3( 0 \xed\xa0\x80 x@x \x80\n"
    # non-ASCII bytes belong to mail addresses (jürgen@müller.example), broken ones too
    assert anon.anonymize(b"bob@example.org\x80 \xffalice@example.org") == b"x@x x@x"


def test_very_long_line():
    filler = b"lorem ipsum 12:34:56 " * 100_000
    line = b"192.0.2.1 " + filler + b"alice@example.org " + filler + b"[2001:db8::1]:443"
    assert anon.anonymize(line) == b"0 " + filler + b"x@x " + filler + b"[0]:443"


def test_keep_length_pads_each_replacement():
    line = b"from 192.0.2.1 port 22 <alice@example.org> [2001:db8::1]:443 end"
    out = anon.anonymize(line, keep_length=True)
    assert len(out) == len(line)
    assert out == b"from 0         port 22 <x@x              > [0          ]:443 end"
    assert out.split() == [b"from", b"0", b"port", b"22", b"<x@x", b">", b"[0", b"]:443", b"end"]


# --- the command line (filter, omprog) ------------------------------------------------------

SAMPLE = b"a 192.0.2.1\nfrom=<bob@example.org>\r\n\n\xff [::1]:22\nno newline 2001:db8::7"
SAMPLE_OUT = b"a 0\nfrom=<x@x>\r\n\n\xff [0]:22\nno newline 0"


@pytest.mark.parametrize(
    "args", [(), ("--line-buffered",), ("--chunk-size", "1"), ("--chunk-size", "7"), ("--mode", "filter")]
)
def test_cli_filters_stdin_to_stdout(args):
    result = run_cli(*args, data=SAMPLE)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SAMPLE_OUT
    assert result.stderr == b""


def test_cli_long_lines_across_reads():
    line = b"x" * 5000 + b" 192.0.2.1 " + b"y" * 5000 + b" alice@example.org\n"
    result = run_cli("--chunk-size", "4096", data=line * 3 + b"tail 192.0.2.2")
    assert result.stdout == (b"x" * 5000 + b" 0 " + b"y" * 5000 + b" x@x\n") * 3 + b"tail 0"


def test_cli_empty_input():
    result = run_cli(data=b"")
    assert (result.returncode, result.stdout) == (0, b"")


def test_cli_answers_an_idle_pipe_at_once():
    """A line is written out while stdin stays open: nothing waits for a full buffer or EOF."""
    proc = subprocess.Popen([sys.executable, str(ANONYMIZER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        for line, expected in ((b"one 192.0.2.1\n", b"one 0\n"), (b"two a@b.example\n", b"two x@x\n")):
            proc.stdin.write(line)
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], 10)
            assert ready, "no output while the pipe stays open"
            assert proc.stdout.readline() == expected
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert proc.returncode == 0


def test_cli_output_file_is_reopened_on_sighup(tmp_path):
    log = tmp_path / "anon.log"
    proc = subprocess.Popen(
        [sys.executable, str(ANONYMIZER), "--mode", "omprog", "--output", str(log)], stdin=subprocess.PIPE
    )
    try:
        proc.stdin.write(b"first 192.0.2.1\n")
        proc.stdin.flush()
        _wait_for(lambda: log.exists() and log.read_bytes() == b"first 0\n")
        log.rename(tmp_path / "anon.log.1")  # what logrotate does
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.3)
        proc.stdin.write(b"second alice@example.org\n")
        proc.stdin.flush()
        _wait_for(lambda: log.exists() and log.read_bytes() == b"second x@x\n")
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert (tmp_path / "anon.log.1").read_bytes() == b"first 0\n"
    assert proc.returncode == 0


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_omprog_confirms_each_message_after_writing_it(tmp_path):
    log = tmp_path / "mail.log"
    proc = subprocess.Popen(
        [sys.executable, str(ANONYMIZER), "--mode", "omprog", "--output", str(log), "--confirm-messages"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert _read_line(proc) == b"OK\n"  # ready
        # a lone CR inside a message must not count as a second message
        messages = [b"to=<bob@example.org> relay=[192.0.2.9]\n", b"cr\rinside 192.0.2.8\n", b"plain\n"]
        for number, message in enumerate(messages, 1):
            proc.stdin.write(message)
            proc.stdin.flush()
            assert _read_line(proc) == b"OK\n"
            assert log.read_bytes().count(b"\n") == number  # in the file before the OK
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)
    assert log.read_bytes() == b"to=<x@x> relay=[0]\ncr\rinside 0\nplain\n"
    assert proc.stdout.read() == b""  # no confirmation left over


def _read_line(proc, timeout: float = 10) -> bytes:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no answer"
    return proc.stdout.readline()


@pytest.mark.parametrize(
    "args",
    [
        ("--mode", "omprog"),
        ("--confirm-messages",),
        ("--chunk-size", "0"),
        ("--mode", "x"),
        ("--interface-input", "json"),
    ],
)
def test_cli_refuses_bad_arguments(args):
    result = run_cli(*args, data=b"192.0.2.1\n")
    assert result.returncode == 2
    assert result.stdout == b""


def test_console_script_is_declared():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert scripts["tomwerk-anonymize"] == "tomwerk_host.anonymize:main"


# --- mmexternal -------------------------------------------------------------------------------


class MmexternalPlugin:
    """Talks to the plugin as rsyslog's mmexternal does: one line out, wait for one line back."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, str(ANONYMIZER), "--mode", "mmexternal", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def ask(self, message: bytes) -> bytes:
        self.proc.stdin.write(message + b"\n")
        self.proc.stdin.flush()
        reply = _read_line(self.proc)
        assert reply.endswith(b"\n") and reply.count(b"\n") == 1
        return reply[:-1]

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(timeout=10) == 0
        assert self.proc.stdout.read() == b""  # exactly one answer per message
        assert self.proc.stderr.read() == b""


def _json(reply: bytes):
    return json.loads(reply.decode("utf-8", "surrogateescape"))


MSG_CASES = [
    (b" Failed password for root from 192.0.2.1 port 22 ssh2", b" Failed password for root from 0 port 22 ssh2"),
    (b" 4F3A21C0D2: to=<bob@example.org>, relay=[2001:db8::25]:25", b" 4F3A21C0D2: to=<x@x>, relay=[0]:25"),
    (b' quote " backslash \\ tab \t ctrl \x01 from 192.0.2.3', b' quote " backslash \\ tab \t ctrl \x01 from 0'),
    (b" bytes \xff\xfe and \xc3\xa4 from 192.0.2.4", b" bytes \xff\xfe and \xc3\xa4 from 0"),
    (b" lone\rCR 192.0.2.5", b" lone\rCR 0"),
    (b" Server listening on :: port 22.", None),
    (b"", None),
]


def test_mmexternal_msg_round_trip():
    plugin = MmexternalPlugin()  # interface.input="msg", rsyslog's default
    for message, expected in MSG_CASES:
        reply = plugin.ask(message)
        if expected is None:
            assert reply == b"{}"  # nothing to change: the empty object
        else:
            assert list(_json(reply)) == ["msg"]
            assert _json(reply)["msg"].encode("utf-8", "surrogateescape") == expected
    plugin.close()


@pytest.mark.parametrize("value", [bytes([byte]) for byte in range(256)] + [bytes(range(256)), b'\\"\\u0041'])
def test_json_strings_carry_any_byte(value):
    encoded = anon.json_bytes_string(value)
    assert b"\n" not in encoded and b"\r" not in encoded  # one reply, one line
    assert json.loads(encoded.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape") == value


class RsyslogMessage:
    """rsyslog's msg.c in miniature: MSG is a window at offMSG into rawmsg."""

    def __init__(self, raw: bytes, msg_offset: int):
        self.raw, self.offset, self.msg_length = raw, msg_offset, len(raw) - msg_offset

    @property
    def msg(self) -> bytes:
        return self.raw[self.offset : self.offset + self.msg_length]

    def set_raw(self, new: bytes) -> None:  # MsgSetRawMsg
        delta = len(new) - len(self.raw)
        self.raw = new
        self.msg_length = self.msg_length + delta if len(new) > self.offset else 0

    def replace_msg(self, new: bytes) -> None:  # MsgReplaceMSG
        new_raw_length = len(self.raw) + len(new) - self.msg_length
        buffer = self.raw[: self.offset] + new + self.raw[self.offset + len(new) :]
        self.raw, self.msg_length = buffer[:new_raw_length], len(new)

    def apply(self, reply: dict) -> None:  # msgSetPropViaJSON, key by key, in order
        for key, value in reply.items():
            if key == "rawmsg":
                self.set_raw(value.encode("utf-8", "surrogateescape"))
            elif key == "msg":
                self.replace_msg(value.encode("utf-8", "surrogateescape"))


def _jsonmesg(header: str, msg: str, **properties) -> dict:
    # the shape of rsyslog's msgGetJSONMESG()
    return {
        "msg": msg,
        "rawmsg": header + msg,
        "timereported": "2026-11-21T15:04:05+01:00",
        "hostname": "web1",
        "syslogtag": "sshd[812]:",
        "inputname": "imuxsock",
        "fromhost": "web1",
        "fromhost-ip": "127.0.0.1",
        "pri": "38",
        "syslogfacility": "4",
        "syslogseverity": "6",
        "timegenerated": "2026-11-21T15:04:05.123456+01:00",
        "programname": "sshd",
        "protocol-version": "0",
        "structured-data": "-",
        "app-name": "sshd",
        "procid": "812",
        "msgid": "-",
        "uuid": None,
        "$!": None,
        **properties,
    }


FULLJSON_CASES = [
    # personal data in MSG only
    ("<38>Nov 21 15:04:05 web1 sshd[812]:", " Failed password for root from 192.0.2.1 port 22 ssh2"),
    # and in the header: a host known by its address
    ("<38>Nov 21 15:04:05 192.0.2.7 sshd[812]:", " Accepted publickey for bob@example.org from 2001:db8::1 port 2"),
    # in the header only
    ("<38>Nov 21 15:04:05 [2001:db8::7] sshd[812]:", " session opened"),
    # non-ASCII and invalid UTF-8 (as bytes decoded with surrogateescape)
    ("<38>Nov 21 15:04:05 web1 app:", " Größe \udcff from 192.0.2.9"),
]


@pytest.mark.parametrize(("header", "msg"), FULLJSON_CASES)
def test_mmexternal_fulljson_reply_leaves_rsyslog_consistent(header, msg):
    message = _jsonmesg(header, msg, hostname=header.split()[3], **{"fromhost-ip": "192.0.2.7"})
    reply = _json(
        anon.mmexternal_reply(json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogateescape"), "fulljson")
    )
    rsyslog = RsyslogMessage(message["rawmsg"].encode("utf-8", "surrogateescape"), len(header.encode()))
    rsyslog.apply(reply)
    msg_bytes = msg.encode("utf-8", "surrogateescape")
    assert rsyslog.msg == anon.anonymize(msg_bytes)  # exactly the anonymised MSG
    assert rsyslog.raw.endswith(rsyslog.msg)
    assert len(rsyslog.raw) - len(rsyslog.msg) == len(header.encode())  # MSG stays at its offset
    assert personal_data(rsyslog.raw) == []
    assert reply["fromhost-ip"] == "0"
    if "rawmsg" in reply and "msg" in reply:
        assert list(reply).index("rawmsg") < list(reply).index("msg")  # the order rsyslog needs
    assert not {"timereported", "pri", "inputname", "uuid"} & set(reply)  # only what changed


def test_mmexternal_fulljson_reply_covers_properties_and_variables():
    message = _jsonmesg(
        "<38>Nov 21 15:04:05 web1 app:",
        " nothing here",
        hostname="192.0.2.50",
        fromhost="192.0.2.50",
        **{
            "structured-data": '[origin ip="192.0.2.50"]',
            "$!": {
                "user": "alice@example.org",
                "count": 3,
                "clean": "value",
                "nested": {"peer": "[2001:db8::1]:443", "list": ["192.0.2.1", 5, None], "ok": "yes"},
                "bob@example.org": {"seen": True},
            },
        },
    )
    reply = _json(anon.mmexternal_reply(json.dumps(message).encode(), "fulljson"))
    assert reply == {
        "hostname": "0",
        "fromhost": "0",
        "fromhost-ip": "0",
        "structured-data": '[origin ip="0"]',
        "$!": {
            "user": "x@x",
            "nested": {"peer": "[0]:443", "list": ["0", 5, None], "ok": "yes"},
            "bob@example.org": "",  # variables cannot be deleted through the interface
            "x@x": {"seen": True},
        },
    }


def test_mmexternal_fulljson_round_trip():
    plugin = MmexternalPlugin("--interface-input", "fulljson")
    clean = _jsonmesg("<38>Nov 21 15:04:05 web1 app:", " all fine", **{"fromhost-ip": ""})
    assert plugin.ask(json.dumps(clean).encode()) == b"{}"
    dirty = _jsonmesg("<38>Nov 21 15:04:05 web1 app:", " from 192.0.2.1\nsecond line bob@example.org")
    reply = _json(plugin.ask(json.dumps(dirty).encode()))  # json-c encodes the LF: still one line
    assert reply["msg"] == " from 0\nsecond line x@x"
    # not JSON after all (interface.input left at msg in rsyslog): still anonymised, still answered
    assert _json(plugin.ask(b" from 192.0.2.1")) == {"msg": " from 0"}
    plugin.close()


def test_mmexternal_rawmsg_keeps_offsets():
    plugin = MmexternalPlugin("--interface-input", "rawmsg")
    raw = b"<38>Nov 21 15:04:05 192.0.2.7 sshd[812]: Failed password for root from 192.0.2.1 port 22"
    new_raw = _json(plugin.ask(raw))["rawmsg"].encode()
    assert len(new_raw) == len(raw)
    assert new_raw.split() == b"<38>Nov 21 15:04:05 0 sshd[812]: Failed password for root from 0 port 22".split()
    assert plugin.ask(b"<38>Nov 21 15:04:05 web1 cron[1]: done") == b"{}"
    plugin.close()


def test_mmexternal_keeps_stderr_out_of_the_reply_pipe():
    # mmexternal connects the plugin's stderr to its reply pipe
    proc = subprocess.run(
        [sys.executable, str(ANONYMIZER), "--mode", "mmexternal"],
        input=b"x 192.0.2.1\n",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=30,
        check=False,
    )
    assert proc.stdout == b'{"msg":"x 0"}\n'


# --- runs where it is deployed ---------------------------------------------------------------


def test_uses_the_standard_library_only():
    tree = ast.parse(ANONYMIZER.read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


@pytest.mark.skipif(not shutil.which("python3.11"), reason="no python3.11 here (Debian 12's version)")
def test_runs_on_python_3_11():
    result = subprocess.run(
        ["python3.11", str(ANONYMIZER)], input=SAMPLE, capture_output=True, timeout=30, check=False,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )  # fmt: skip
    assert result.stderr == b""
    assert result.stdout == SAMPLE_OUT


# --- the bench's own parts --------------------------------------------------------------------


def test_corpus_is_deterministic_and_mixed():
    first, second = bench.generate_corpus(3000, seed=5), bench.generate_corpus(3000, seed=5)
    assert first.raw == second.raw and first.expected == second.expected
    assert bench.generate_corpus(3000, seed=6).raw != first.raw
    with_data = sum(1 for personal in first.personal if personal)
    assert 0.5 < with_data / len(first.raw) < 0.9  # both kinds of lines, in numbers
    assert any(len(personal) >= 5 for personal in first.personal)  # lines with several addresses


def test_damage_count_sees_changed_lost_and_merged_lines():
    expected = b"a\nb\nc"
    assert bench.count_damaged(b"a\nb\nc", expected) == 0
    assert bench.count_damaged(b"a\nX\nc", expected) == 1
    assert bench.count_damaged(b"a\nb\r\nc", expected) == 1  # a terminator counts too
    assert bench.count_damaged(b"a\nbc", expected) == 3
