"""Framework of the tomwerk exporter: cached, fail-safe TOM collectors behind one endpoint.

A collector (collectors/<family>.py) reads the state file its role wrote
(/etc/tomwerk/state/<role>.json), checks the live host against it and returns
a Report. This module caches each report for --min-interval seconds, turns any
failure into compliant=0 plus an error count and one log line, and renders the
metrics for prometheus_client.

Only the standard library and prometheus_client 0.16 (Debian 12's
python3-prometheus-client) may be used here: the exporter runs on the hosts.
prometheus_client is imported where the metrics are rendered, so `tomwerk-probe`,
which runs the same checks for the compliance checks, needs only Python.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import logging
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from socketserver import ThreadingMixIn
from typing import Callable, NamedTuple
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..values import to_int

log = logging.getLogger("tomwerk_exporter")

DEFAULT_STATE_DIR = "/etc/tomwerk/state"
DEFAULT_MIN_INTERVAL = 30.0
# A check command that hangs must not hold the scrape past Prometheus' timeout.
COMMAND_TIMEOUT = 5.0
# A failure that does not change is logged again after this long, not per scrape.
LOG_REPEAT_SECONDS = 3600.0

TOM_ID = re.compile(r"^TOM-[A-Z]+-\d{2}$")
METRIC_NAME = re.compile(r"^tomwerk_[a-z][a-z0-9_]*$")
LABEL_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Label values must never carry personal data; mail addresses are caught by '@'.
_IPV4 = re.compile(r"(?<![0-9])[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9])")
_IPV6 = re.compile(r"[0-9A-Fa-f]*:[0-9A-Fa-f:]*:[0-9A-Fa-f.]*")


class CheckError(Exception):
    """A check could not be made: a command missing or failing, input unreadable or unparsable.

    toms: the TOMs this failure is known to concern (empty: those of the collector).
    """

    def __init__(self, reason: str, toms: tuple[str, ...] = ()):
        super().__init__(reason)
        self.toms = toms


class StateError(CheckError):
    """A state file is broken: not JSON, or not in the shape its role writes."""


def one_line(text: str, limit: int = 300) -> str:
    """Collapse text to one short line, for journald and reasons."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def looks_personal(value: str) -> bool:
    """True for a label value that contains a mail address or something shaped like an IP address."""
    if "@" in value or _IPV4.search(value):
        return True
    for candidate in _IPV6.findall(value):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        return True
    return False


# --------------------------------------------------------------------- the host


class Host:
    """The live host as the checks see it: commands and files.

    Tests pass a recorded host that overrides the primitives (execute,
    read_text, listdir, stat, read_bytes). The helpers below turn their OSErrors into
    CheckErrors with a one-line reason.
    """

    def execute(self, argv: tuple[str, ...]) -> tuple[int, str, str]:
        # C locale: messages and number formats stay what the parsers expect.
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LC_ALL": "C"}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, env=env, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def read_text(self, path: str) -> str:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def stat(self, path: str) -> os.stat_result:
        return os.stat(path)

    def read_bytes(self, path: str, offset: int, limit: int) -> bytes:
        """Up to limit bytes of a file from offset (for incremental scans)."""
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(limit)

    # Helpers the collectors use.

    def output(self, argv: tuple[str, ...]) -> str:
        """stdout of a command that must succeed."""
        try:
            rc, out, err = self.execute(argv)
        except FileNotFoundError:
            raise CheckError(f"{argv[0]} not found") from None
        except subprocess.TimeoutExpired:
            raise CheckError(f"{argv[0]} did not finish within {COMMAND_TIMEOUT:g} s") from None
        except OSError as exc:
            raise CheckError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        if rc != 0:
            raise CheckError(f"{' '.join(argv)} exited with {rc}: {one_line(err or out) or 'no message'}")
        return out

    def read(self, path: str) -> str:
        """Content of a file that must exist."""
        try:
            return self.read_text(path)
        except OSError as exc:
            raise CheckError(f"cannot read {path}: {exc.strerror or exc}") from None

    def read_optional(self, path: str) -> str | None:
        """Content of a file, or None when it does not exist."""
        try:
            return self.read_text(path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckError(f"cannot read {path}: {exc.strerror or exc}") from None

    def list_optional(self, path: str) -> list[str] | None:
        """Names in a directory, or None when it does not exist."""
        try:
            return sorted(self.listdir(path))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CheckError(f"cannot list {path}: {exc.strerror or exc}") from None

    def stat_of(self, path: str) -> os.stat_result:
        try:
            return self.stat(path)
        except OSError as exc:
            raise CheckError(f"cannot stat {path}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------- state files


class State:
    """A role's state file: the TOMs it enforced and the variables it applied.

    The accessors check each variable's shape, so a broken file fails with
    a reason that names the variable.
    """

    def __init__(self, role: str, toms: tuple[str, ...], variables: dict, directory: str):
        self.role = role
        self.toms = toms
        self.vars = variables
        self.directory = directory

    def _fail(self, name: str, problem: str) -> StateError:
        return StateError(f"{self.role}.json: vars.{name} {problem}", self.toms)

    def value(self, name: str) -> object:
        if name not in self.vars:
            raise self._fail(name, "is missing")
        return self.vars[name]

    def text(self, name: str, choices: tuple[str, ...] | None = None) -> str:
        value = self.value(name)
        if not isinstance(value, str) or not value:
            raise self._fail(name, "is not a non-empty string")
        if choices is not None and value not in choices:
            raise self._fail(name, f"is not one of {', '.join(choices)}")
        return value

    def integer(self, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
        value = to_int(self.value(name))
        if value is None or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise self._fail(name, "is not an integer in range")
        return value

    def texts(self, name: str) -> list[str]:
        value = self.value(name)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(name, "is not a list of strings")
        return list(value)


def expand(host: Host, pattern: str) -> list[str]:
    """Glob on the host through its primitives (no hidden files)."""
    paths = ["/"]
    for part in pattern.strip("/").split("/"):
        found = []
        for base in paths:
            if not any(ch in part for ch in "*?["):
                found.append(os.path.join(base, part))
                continue
            try:
                names = host.list_optional(base) or []
            except CheckError:  # a file where the pattern expects a directory (/var/log/README)
                continue
            found += [os.path.join(base, n) for n in names if not n.startswith(".") and fnmatch.fnmatch(n, part)]
        paths = found
    return paths


def json_object(text: str, source: str, problem: str = "is not a JSON object") -> dict:
    """A file's text or a command's output as a JSON object, or CheckError naming its source."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise CheckError(f"{source} {problem}")
    return data


def is_number(value: object) -> bool:
    """A JSON number (true and false are none)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def load_state(host: Host, directory: str, role: str) -> State | None:
    """The state file of role, or None when the role is not on this host."""
    name = f"{role}.json"
    text = host.read_optional(os.path.join(directory, name))
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise StateError(f"{name} is not valid JSON: {one_line(str(exc), 120)}") from None
    if not isinstance(data, dict):
        raise StateError(f"{name} is not a JSON object")
    toms = data.get("toms")
    if not isinstance(toms, list) or not all(isinstance(t, str) and TOM_ID.match(t) for t in toms):
        raise StateError(f"{name}: toms is not a list of TOM ids")
    if data.get("role") != role:
        raise StateError(f"{name}: role is {data.get('role')!r}, not {role!r}", tuple(toms))
    if not isinstance(data.get("vars"), dict):
        raise StateError(f"{name}: vars is not an object", tuple(toms))
    return State(role, tuple(toms), data["vars"], directory)


# --------------------------------------------------------------------- collectors


class Sample(NamedTuple):
    name: str
    documentation: str
    labels: tuple[tuple[str, str], ...]
    value: float
    tom: str = ""  # the TOM it is evidence of; "": every TOM of its collector


class Report:
    """What one check run found: per TOM the reasons it fails (none: compliant), and figures."""

    def __init__(self) -> None:
        self.failures: dict[str, list[str]] = {}
        self.samples: list[Sample] = []

    def require(self, tom: str, ok: bool, reason: str) -> None:
        """Record one condition of a TOM; the TOM is compliant only if all of its conditions hold."""
        reasons = self.failures.setdefault(tom, [])
        if not ok:
            reasons.append(reason)

    def gauge(self, name: str, documentation: str, value: float, /, *, tom: str = "", **labels: str) -> None:
        """A figure: name{labels} = value. tom (not a label) is the TOM it is evidence of, which
        `tomwerk-probe` files it under; a collector that decides several TOMs must name it."""
        # Checked here, so a bad name or a personal label value fails the
        # collector's run (compliant=0, logged) instead of reaching Prometheus.
        if not METRIC_NAME.match(name) or name.endswith("_total"):
            raise ValueError(f"bad gauge name {name}")
        if tom and not TOM_ID.match(tom):
            raise ValueError(f"bad TOM {tom!r} of {name}")
        for key, val in labels.items():
            if not LABEL_NAME.match(key) or not isinstance(val, str) or looks_personal(val):
                raise ValueError(f"bad label {key}={val!r} on {name}")
        self.samples.append(Sample(name, documentation, tuple(sorted(labels.items())), float(value), tom))

    def require_and_gauge(self, tom: str, ok: bool, reason: str, name: str, documentation: str, /, **labels) -> None:
        """require(tom, ok, reason), and the condition as the gauge name: 1 if it holds, else 0."""
        self.require(tom, ok, reason)
        self.gauge(name, documentation, 1 if ok else 0, tom=tom, **labels)


class Collector:
    """One TOM family. Subclasses set name, role and toms, and implement check().

    check() reads the live host through `host` (never directly), compares it
    with the state its role wrote, and returns a Report with a require() for
    every TOM in `toms`. It raises CheckError when it cannot decide.
    """

    name = ""  # value of the collector label
    role = ""  # the role whose state file <role>.json activates this collector
    toms: tuple[str, ...] = ()  # the TOMs check() evaluates
    # Further roles whose TOMs (those in `toms`) this collector also decides when their
    # state file is on the host, e.g. log forwarding beside log privacy.
    also_roles: tuple[str, ...] = ()

    def check(self, state: State, host: Host) -> Report:
        raise NotImplementedError


class Outcome(NamedTuple):
    active: bool
    toms: dict[str, bool]  # TOM -> compliant
    samples: list[Sample]
    finished: float  # wall-clock time the run ended
    duration: float
    error: str | None
    reasons: dict[str, list[str]]  # TOM -> why it does not hold (empty: it holds)


class _LogLimiter:
    """Logs a message for a key when it changes, and again only after `every` seconds."""

    def __init__(self, every: float, clock) -> None:
        self._every = every
        self._clock = clock
        self._last: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def __call__(self, level: int, key: str, message: str) -> None:
        message = one_line(message, 500)
        with self._lock:
            now = self._clock()
            last = self._last.get(key)
            if last and last[0] == message and now - last[1] < self._every:
                return
            self._last[key] = (message, now)
        log.log(level, "%s", message)

    def clear(self, key: str) -> bool:
        """Forget key; True if something was logged for it (so a recovery line is due)."""
        with self._lock:
            return self._last.pop(key, None) is not None


class _Slot:
    """Per-collector cache and bookkeeping. The lock makes concurrent scrapes share one run."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.lock = threading.Lock()
        self.outcome: Outcome | None = None
        self.ran_at = 0.0
        self.errors = 0
        self.known_toms: tuple[str, ...] = ()  # TOMs of the last state file seen


# The exporter's own families, in the order it yields them: (a counter?, name, HELP, label).
_OWN_FAMILIES = (
    (
        False,
        "tomwerk_tom_compliant",
        "1 if the TOM holds on this host, 0 if not or if its check failed (see tomwerk_collector_errors_total).",
        "tom",
    ),
    (False, "tomwerk_tom_check_timestamp_seconds", "Unix time the TOM was last evaluated.", "tom"),
    (
        False,
        "tomwerk_collector_active",
        "1 if the collector's role is on this host (its state file exists), else 0 and no TOM series.",
        "collector",
    ),
    (
        True,
        "tomwerk_collector_errors_total",
        "Check runs that failed (command missing or failing, unreadable or broken input); reason in the journal.",
        "collector",
    ),
    (False, "tomwerk_collector_duration_seconds", "How long the collector's last check run took.", "collector"),
    (
        False,
        "tomwerk_collector_last_run_timestamp_seconds",
        "Unix time the collector's last check run ended; results are cached for --min-interval seconds.",
        "collector",
    ),
)


class TomExporter:
    """The prometheus_client collector: each TOM collector's cached outcome as metrics.

    host, clock (monotonic, for the cache) and wall (for timestamps) are
    injectable for tests.
    """

    def __init__(
        self,
        collectors: list[Collector],
        host: Host | None = None,
        state_dir: str = DEFAULT_STATE_DIR,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        clock=time.monotonic,
        wall=time.time,
        log_every: float = LOG_REPEAT_SECONDS,
    ) -> None:
        names = [c.name for c in collectors]
        if len(set(names)) != len(names):
            raise ValueError(f"collector names are not unique: {names}")
        self.host = host or Host()
        self.state_dir = state_dir
        self.min_interval = min_interval
        self._clock = clock
        self._wall = wall
        self._slots = [_Slot(c) for c in collectors]
        self._note = _LogLimiter(log_every, clock)

    # prometheus_client calls collect() on every scrape, possibly from several threads.
    def collect(self):
        outcomes = [(slot, self._outcome(slot)) for slot in self._slots]
        yield from self._families(outcomes)

    def _outcome(self, slot: _Slot) -> Outcome:
        with slot.lock:
            now = self._clock()
            if slot.outcome is None or now - slot.ran_at >= self.min_interval:
                slot.ran_at = now
                slot.outcome = self._run(slot)
            return slot.outcome

    def _run(self, slot: _Slot) -> Outcome:
        collector = slot.collector
        started = time.perf_counter()
        try:
            active, reasons, samples = self._check(slot)
            error = None
        except CheckError as exc:
            error = str(exc)
            concerned = tuple(t for t in exc.toms if t in collector.toms)
            if concerned:
                slot.known_toms = concerned
            active, samples = True, []
            reasons = {t: [f"check failed: {error}"] for t in slot.known_toms or collector.toms}
        except Exception as exc:  # a bug in a check must not break the scrape
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            error = f"internal error {type(exc).__name__}: {exc} ({os.path.basename(frame.filename)}:{frame.lineno})"
            active, samples = True, []
            reasons = {t: [f"check failed: {error}"] for t in slot.known_toms or collector.toms}
        key = f"{collector.name}: check failed"
        if error is not None:
            slot.errors += 1
            self._note(logging.ERROR, key, f"{collector.name}: check failed, its TOMs count as not compliant: {error}")
        elif self._note.clear(key):
            log.info("%s: check works again", collector.name)
        toms = {tom: not why for tom, why in reasons.items()}
        return Outcome(active, toms, samples, self._wall(), time.perf_counter() - started, error, reasons)

    def run_once(self) -> list[tuple[Collector, Outcome]]:
        """Every collector's check, run now (no cache): what `tomwerk-host probe` prints."""
        return [(slot.collector, self._run(slot)) for slot in self._slots]

    def _check(self, slot: _Slot) -> tuple[bool, dict[str, list[str]], list[Sample]]:
        collector = slot.collector
        state = load_state(self.host, self.state_dir, collector.role)
        if state is None:
            if slot.known_toms:
                # Roles are not removed from a running host; a vanished file is a fault.
                raise CheckError(f"{collector.role}.json has disappeared from {self.state_dir}")
            return False, {}, []
        wanted = tuple(t for t in state.toms if t in collector.toms)
        for role in collector.also_roles:
            extra = load_state(self.host, self.state_dir, role)
            if extra is not None:
                wanted += tuple(t for t in extra.toms if t in collector.toms and t not in wanted)
        unknown = [t for t in state.toms if t not in collector.toms]
        if unknown:
            self._note(
                logging.WARNING,
                f"{collector.name}: unknown TOMs",
                f"{collector.name}: {collector.role}.json names {', '.join(unknown)}, which this exporter "
                "does not check (update the exporter)",
            )
        slot.known_toms = wanted
        report = collector.check(state, self.host)
        toms = {}
        for tom in wanted:
            reasons = report.failures.get(tom, ["not evaluated by the collector"])
            toms[tom] = reasons
            key = f"{tom}: finding"
            if reasons:
                self._note(logging.WARNING, key, f"{tom} not compliant: {'; '.join(reasons)}")
            elif self._note.clear(key):
                log.info("%s compliant again", tom)
        return True, toms, report.samples

    def _families(self, outcomes: list[tuple[_Slot, Outcome]]):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        compliant, checked, active, errors, duration, last_run = (
            (CounterMetricFamily if counter else GaugeMetricFamily)(name, documentation, labels=[label])
            for counter, name, documentation, label in _OWN_FAMILIES
        )
        toms: dict[str, tuple[bool, float]] = {}
        custom: dict[str, GaugeMetricFamily] = {}
        for slot, outcome in outcomes:
            name = slot.collector.name
            active.add_metric([name], 1 if outcome.active else 0)
            errors.add_metric([name], slot.errors)
            duration.add_metric([name], outcome.duration)
            last_run.add_metric([name], outcome.finished)
            for tom, ok in outcome.toms.items():
                # Should two collectors ever report one TOM, it holds only if both say so.
                prev_ok, prev_at = toms.get(tom, (True, outcome.finished))
                toms[tom] = (prev_ok and ok, min(prev_at, outcome.finished))
            for s in outcome.samples:
                if s.name not in custom:
                    custom[s.name] = GaugeMetricFamily(s.name, s.documentation, labels=[k for k, _ in s.labels])
                custom[s.name].add_metric([v for _, v in s.labels], s.value)
        for tom in sorted(toms):
            compliant.add_metric([tom], 1 if toms[tom][0] else 0)
            checked.add_metric([tom], toms[tom][1])
        yield from (compliant, checked, active, errors, duration, last_run)
        for name in sorted(custom):
            yield custom[name]


# --------------------------------------------------------------------- probes


class SuccessCache:
    """Probe results kept for `seconds` while every probe succeeded.

    Probes of live services (an SMTP handshake, a STUN request, a TLS
    handshake) cost time and log lines, so their results are reused; a failure
    is not, so a repaired service is compliant again at the next check instead
    of after the cache's lifetime. A different key (e.g. another server list)
    probes anew.
    """

    def __init__(self, seconds: float, clock=time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._cached: tuple[float, object, dict] | None = None

    def get(self, key: object, probe: Callable[[], dict], succeeded: Callable[[object], bool]) -> dict:
        now = self._clock()
        if self._cached and self._cached[1] == key and now - self._cached[0] < self._seconds:
            return self._cached[2]
        results = probe()
        self._cached = (now, key, results) if all(succeeded(v) for v in results.values()) else None
        return results


class ProbingCollector(Collector):
    """A collector that probes live services, declared as
    `class MailCollector(ProbingCollector, probe=SmtpProbe, cache_seconds=300.0)`.

    An instance probes with probe() unless given one (tests pass a recorded probe), and
    keeps the results for cache_seconds while all of them succeed (SuccessCache).
    """

    probe_class: Callable[[], object]
    cache_seconds: float

    # Keywords, not class attributes: a subclass without them fails when it is defined.
    def __init_subclass__(cls, *, probe: Callable[[], object], cache_seconds: float, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        cls.probe_class = probe
        cls.cache_seconds = cache_seconds

    def __init__(self, probe=None, clock=time.monotonic, cache_seconds: float | None = None) -> None:
        self._probe = probe or self.probe_class()
        self._cache = SuccessCache(self.cache_seconds if cache_seconds is None else cache_seconds, clock)

    def probe_each(self, key: object, targets, probe_one: Callable, succeeded: Callable[[object], bool]) -> dict:
        """{target: probe_one(target)} for every target, from the cache while all of them succeeded.

        key names what the results depend on (targets, ports, files): another key probes anew.
        """
        return self._cache.get(key, lambda: {target: probe_one(target) for target in targets}, succeeded)


# TLS versions as ssl names them, and the floor of TOM-TLS-03 and TOM-TLS-04.
TLS_VERSIONS = {"TLSv1": 1.0, "TLSv1.1": 1.1, "TLSv1.2": 1.2, "TLSv1.3": 1.3}


def tls_strong_enough(version: str) -> bool:
    """A negotiated version ("TLSv1.3"; "" for no session) is TLS 1.2 or newer."""
    return TLS_VERSIONS.get(version, 0) >= 1.2


def unverified_tls_context() -> ssl.SSLContext:
    """A client context that accepts any certificate: for probes that judge the session or
    read the certificate, not trust it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


# --------------------------------------------------------------------- HTTP


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # socketserver's listen backlog is 5: a burst of scrapes (several Prometheus
    # servers, a restart, a federation) then waits for SYN retries, seconds each.
    # The kernel caps it at net.core.somaxconn.
    request_queue_size = 256


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass  # a line per scrape would flood the journal


def make_app(registry):
    """The metrics WSGI app; it answers 200 even if rendering fails, and logs why."""
    from prometheus_client import make_wsgi_app

    metrics = make_wsgi_app(registry)

    def app(environ, start_response):
        try:
            return metrics(environ, start_response)
        except Exception as exc:
            log.error("rendering the metrics failed: %s", one_line(f"{type(exc).__name__}: {exc}"))
            start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], sys.exc_info())
            return [b"# tomwerk exporter: rendering the metrics failed, see the journal\n"]

    return app


class TlsSettings(NamedTuple):
    """Mutual TLS for the endpoint (TOM-TLS-04): our certificate, the CA that signs the
    clients', and the certificate names (DNS subjectAltName) that may scrape."""

    cert_file: str
    key_file: str
    client_ca_file: str
    allowed_clients: frozenset[str]

    def context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_file, self.key_file)
        context.load_verify_locations(cafile=self.client_ca_file)
        context.verify_mode = ssl.CERT_REQUIRED
        return context


# A client that connects and says nothing must not hold a handler thread.
CLIENT_TIMEOUT = 10.0


def client_names(cert: dict | None) -> set[str]:
    """The DNS names of a peer certificate as ssl.getpeercert() returns it."""
    return {value for kind, value in (cert or {}).get("subjectAltName", ()) if kind == "DNS"}


class _TlsServer(_Server):
    """The threaded server behind TLS with client certificates. The handshake runs in
    the request's thread, so a slow client delays no other scrape. A renewed
    certificate, key or CA file is picked up at the next connection, without a restart."""

    tls: TlsSettings
    ssl_context: ssl.SSLContext
    _files_stamp: tuple = ()

    def _context(self) -> ssl.SSLContext:
        try:
            stamp = tuple(os.stat(f).st_mtime_ns for f in self.tls[:3])
        except OSError:
            return self.ssl_context  # mid-replacement: keep serving with what was loaded
        if stamp != self._files_stamp:
            self._files_stamp = stamp  # a broken set is tried again only once the files change again
            try:
                self.ssl_context = self.tls.context()
            except (OSError, ssl.SSLError) as exc:
                log.error("TLS files changed but cannot be loaded, keeping the old ones: %s", one_line(str(exc)))
        return self.ssl_context

    def get_request(self):
        sock, address = self.socket.accept()
        sock.settimeout(CLIENT_TIMEOUT)
        return self._context().wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request, client_address):
        try:
            request.do_handshake()
        except (OSError, ssl.SSLError):
            # No client certificate, one of another CA, plain HTTP, a port scan: no answer.
            # Not logged: the exporter's own TOM-TLS-04 probes do exactly this every check.
            return
        if not client_names(request.getpeercert()) & self.tls.allowed_clients:
            return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # a client that went away mid-request; nothing to tell the journal


def make_http_server(registry, addr: str, port: int, tls: TlsSettings | None = None) -> WSGIServer:
    """A threaded HTTP server for the registry on addr:port (port 0: any free port);
    with tls, HTTPS that admits only clients whose certificate names an allowed client."""
    family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]
    if tls is None:
        server_class = type("TomwerkServer", (_Server,), {"address_family": family})
    else:
        # Loaded here, so broken TLS files stop the start with a clear error.
        attrs = {"address_family": family, "tls": tls, "ssl_context": tls.context()}
        server_class = type("TomwerkTlsServer", (_TlsServer,), attrs)
    return make_server(addr, port, make_app(registry), server_class=server_class, handler_class=_QuietHandler)
