"""TOM-TLS-01, TOM-WEB-01 (role web_tls) and TOM-TLS-02 (role acme): own sites over HTTPS only, by ACME.

WebTlsCollector probes this host's nginx the way a visitor does, over the
loopback address with each site's first server name (Host header and SNI):

TOM-TLS-01 holds iff for every site in web_tls.json plain HTTP answers
with a 301 to https://<that name>/..., HTTPS answers with an HSTS max-age of
at least web_tls_hsts_max_age (and never below two years), and the served
certificate has not expired.
TOM-WEB-01 holds iff neither answer sets a cookie outside
web_tls_allowed_cookies.

AcmeCollector reads certbot's certificates (<acme_live_dir>/<name>/cert.pem):
TOM-TLS-02 holds iff each exists, is issued by a CA (not self-signed), is
valid for more than acme_min_valid_days, is the one linked for the site in
acme_deploy_dir (when that directory exists), and certbot.timer is active.

Certificates are parsed here (a few DER fields, standard library only); the
parse of a certificate is cached by its bytes. Site names are labels; no
addresses or certificate contents leave this module.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import http.client
import re
import socket
import time

from ..core import CheckError, Collector, Host, Report, State, StateError, one_line, unverified_tls_context

HTTPS = "TOM-TLS-01"
COOKIES = "TOM-WEB-01"
ACME = "TOM-TLS-02"
DAY = 86400
TWO_YEARS = 63072000
PROBE_TIMEOUT = 3.0
SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s*(.*?)\s*-----END CERTIFICATE-----", re.DOTALL)
HSTS_MAX_AGE = re.compile(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:;|$)", re.IGNORECASE)


# --------------------------------------------------------------------- certificates


class Certificate:
    """The few fields of an X.509 certificate the checks need."""

    def __init__(self, not_before: float, not_after: float, issuer: bytes, subject: bytes, der: bytes):
        self.not_before = not_before
        self.not_after = not_after
        self.issuer = issuer
        self.subject = subject
        self.der = der

    @property
    def self_issued(self) -> bool:
        return self.issuer == self.subject


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at pos."""
    if pos + 2 > len(data):
        raise ValueError("truncated")
    tag, length = data[pos], data[pos + 1]
    start = pos + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise ValueError("bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    if start + length > len(data):
        raise ValueError("truncated")
    return tag, start, start + length


def _time(tag: int, raw: bytes) -> float:
    text = raw.decode("ascii")
    if tag == 0x17:  # UTCTime YYMMDDHHMMSSZ
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"
    elif tag != 0x18:  # GeneralizedTime YYYYMMDDHHMMSSZ
        raise ValueError("not a time")
    if not re.fullmatch(r"\d{14}Z", text):
        raise ValueError("not a UTC time")
    parts = (int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:14]))
    return float(calendar.timegm(parts))


def parse_der(der: bytes) -> Certificate:
    """Validity, issuer and subject of a DER certificate; CheckError if it is none."""
    try:
        tag, start, _ = _tlv(der, 0)
        tbs_tag, pos, tbs_end = _tlv(der, start)
        if tag != 0x30 or tbs_tag != 0x30:
            raise ValueError("not a certificate")
        fields = []
        while pos < tbs_end and len(fields) < 6:
            ftag, fstart, fend = _tlv(der, pos)
            if not (ftag == 0xA0 and not fields):  # skip the optional [0] version
                fields.append((ftag, fstart, fend, pos))
            pos = fend
        serial, _alg, issuer, validity, subject = fields[:5]
        if serial[0] != 0x02 or issuer[0] != 0x30 or validity[0] != 0x30 or subject[0] != 0x30:
            raise ValueError("unexpected structure")
        t1, s1, e1 = _tlv(der, validity[1])
        t2, s2, e2 = _tlv(der, e1)
        return Certificate(
            _time(t1, der[s1:e1]),
            _time(t2, der[s2:e2]),
            der[issuer[3] : issuer[2]],
            der[subject[3] : subject[2]],
            der,
        )
    except (ValueError, IndexError, UnicodeDecodeError) as exc:
        raise CheckError(f"cannot parse a certificate: {exc}") from None


def pem_certificates(text: str) -> list[bytes]:
    """The DER bytes of every certificate in a PEM text, in order."""
    found = []
    for block in PEM_CERT.findall(text):
        try:
            found.append(base64.b64decode("".join(block.split()), validate=True))
        except ValueError:
            raise CheckError("a PEM certificate block is not base64") from None
    return found


class _ParseCache:
    """Parsed certificates by their SHA-256, so an unchanged certificate is parsed once."""

    def __init__(self, size: int = 32):
        self._size = size
        self._items: dict[bytes, Certificate] = {}

    def __call__(self, der: bytes) -> Certificate:
        key = hashlib.sha256(der).digest()
        cert = self._items.get(key)
        if cert is None:
            cert = parse_der(der)
            if len(self._items) >= self._size:
                self._items.clear()
            self._items[key] = cert
        return cert


# --------------------------------------------------------------------- network probes


class Answer:
    def __init__(self, status: int, headers: list[tuple[str, str]]):
        self.status = status
        self.headers = headers

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def cookies(self) -> list[str]:
        """Names of the cookies the answer sets."""
        return [v.split("=", 1)[0].strip() for k, v in self.headers if k.lower() == "set-cookie"]


class _Https(http.client.HTTPSConnection):
    """HTTPS to an address with a server name as SNI (http.client sends the address)."""

    def __init__(self, address: str, port: int, server_name: str, **kwargs):
        super().__init__(address, port, **kwargs)
        self._sni = server_name

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self._sni)


class Probe:
    """This host's web server as a visitor sees it; tests pass recorded answers instead.

    The certificate is read, not trusted: the ACME check judges it.
    """

    def __init__(self, address: str = "127.0.0.1", timeout: float = PROBE_TIMEOUT):
        self.address = address
        self.timeout = timeout

    def certificate(self, port: int, server_name: str) -> bytes:
        """DER of the certificate served for server_name (SNI)."""
        raw = socket.create_connection((self.address, port), timeout=self.timeout)
        with raw, unverified_tls_context().wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
        if not der:
            raise OSError("no certificate served")
        return der

    def get(self, port: int, server_name: str, path: str, tls: bool) -> Answer:
        if tls:
            conn = _Https(self.address, port, server_name, timeout=self.timeout, context=unverified_tls_context())
        else:
            conn = http.client.HTTPConnection(self.address, port, timeout=self.timeout)
        try:
            conn.request("GET", path, headers={"Host": server_name, "User-Agent": "tomwerk-exporter"})
            response = conn.getresponse()
            response.read(65536)
            return Answer(response.status, response.getheaders())
        finally:
            conn.close()


# --------------------------------------------------------------------- state


def _sites(state: State) -> list[tuple[str, str]]:
    """(site name, first server name) of each site in the state."""
    sites = state.value("web_tls_sites")
    result = []
    if not isinstance(sites, list) or not sites:
        raise StateError(f"{state.role}.json: vars.web_tls_sites is not a non-empty list", state.toms)
    for site in sites:
        names = site.get("server_names") if isinstance(site, dict) else None
        name = site.get("name") if isinstance(site, dict) else None
        if not isinstance(name, str) or not SITE_NAME.match(name) or not isinstance(names, list) or not names:
            raise StateError(f"{state.role}.json: vars.web_tls_sites has an entry without name and server_names")
        if not all(isinstance(n, str) and n for n in names):
            raise StateError(f"{state.role}.json: vars.web_tls_sites[{name}].server_names are not names")
        result.append((name, names[0]))
    return result


def hsts_max_age(value: str | None) -> int | None:
    if value is None:
        return None
    match = HSTS_MAX_AGE.search(value)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------- collectors


class WebTlsCollector(Collector):
    name = "web"  # the family of TOM-TLS-01 and TOM-WEB-01
    role = "web_tls"
    toms = (HTTPS, COOKIES)

    def __init__(self, probe: Probe | None = None, now=time.time):
        self._probe = probe or Probe()
        self._now = now
        self._parse = _ParseCache()

    def check(self, state: State, host: Host) -> Report:
        sites = _sites(state)
        http_port = state.integer("web_tls_http_port", 1, 65535)
        https_port = state.integer("web_tls_https_port", 1, 65535)
        min_age = state.integer("web_tls_hsts_max_age", 0)
        allowed = set(state.texts("web_tls_allowed_cookies")) if state.value("web_tls_allowed_cookies") else set()
        report = Report()
        report.require(HTTPS, min_age >= TWO_YEARS, f"web_tls_hsts_max_age {min_age} is below two years")
        for site, server_name in sites:
            cookies: list[str] = []
            cookies += self._redirect(report, site, server_name, http_port)
            cookies += self._https(report, site, server_name, https_port, min_age)
            self._certificate(report, site, server_name, https_port)
            unexpected = sorted({c for c in cookies if c not in allowed})
            report.require(COOKIES, not unexpected, f"site {site} sets cookies not allowed: {', '.join(unexpected)}")
            report.gauge(
                "tomwerk_web_unexpected_cookies",
                "Cookies a site sets that web_tls_allowed_cookies does not allow (TOM-WEB-01); 0 is compliant.",
                len(unexpected),
                tom=COOKIES,
                name=site,
            )
        return report

    def _redirect(self, report: Report, site: str, server_name: str, port: int) -> list[str]:
        try:
            answer = self._probe.get(port, server_name, "/tomwerk-probe?check=1", tls=False)
        except (OSError, http.client.HTTPException) as exc:
            answer = None
            redirects = False
            reason = f"site {site}: plain HTTP does not answer ({one_line(str(exc), 100)})"
        else:
            location = answer.header("Location") or ""
            redirects = answer.status == 301 and location.startswith(f"https://{server_name}/")
            reason = (
                f"site {site}: plain HTTP answers {answer.status} {location!r}, not a 301 to https://{server_name}/"
            )
        report.require_and_gauge(
            HTTPS,
            redirects,
            reason,
            "tomwerk_tls_http_redirect",
            "1 if plain HTTP answers a site's requests with a 301 to HTTPS, else 0 (TOM-TLS-01).",
            name=site,
        )
        return answer.cookies() if answer else []

    def _https(self, report: Report, site: str, server_name: str, port: int, min_age: int) -> list[str]:
        try:
            answer = self._probe.get(port, server_name, "/", tls=True)
        except (OSError, http.client.HTTPException) as exc:
            report.require(HTTPS, False, f"site {site}: HTTPS does not answer ({one_line(str(exc), 100)})")
            return []
        age = hsts_max_age(answer.header("Strict-Transport-Security"))
        report.require(
            HTTPS,
            age is not None and age >= min_age and age >= TWO_YEARS,
            f"site {site}: HSTS max-age is {age}, below {max(min_age, TWO_YEARS)}",
        )
        report.gauge(
            "tomwerk_tls_hsts_max_age_seconds",
            "HSTS max-age a site sends over HTTPS (TOM-TLS-01); 0 without the header.",
            age or 0,
            tom=HTTPS,
            name=site,
        )
        return answer.cookies()

    def _certificate(self, report: Report, site: str, server_name: str, port: int) -> None:
        try:
            cert = self._parse(self._probe.certificate(port, server_name))
        except OSError as exc:
            report.require(HTTPS, False, f"site {site}: no TLS handshake ({one_line(str(exc), 100)})")
            return
        report.require(HTTPS, cert.not_after > self._now(), f"site {site}: the served certificate has expired")
        report.gauge(
            "tomwerk_tls_certificate_expiry_timestamp_seconds",
            "Unix time the certificate a site serves expires (notAfter).",
            cert.not_after,
            tom=HTTPS,
            name=site,
        )


class AcmeCollector(Collector):
    name = "tls"
    role = "acme"
    toms = (ACME,)

    def __init__(self, now=time.time):
        self._now = now
        self._parse = _ParseCache()

    def check(self, state: State, host: Host) -> Report:
        live = state.text("acme_live_dir")
        deploy = state.text("acme_deploy_dir")
        timer = state.text("acme_timer")
        min_valid = state.integer("acme_min_valid_days", 1, 29) * DAY
        certificates = state.value("acme_certificates")
        if not isinstance(certificates, list) or not certificates:
            raise StateError(f"{state.role}.json: vars.acme_certificates is not a non-empty list", state.toms)
        report = Report()
        rc, out, _ = host.execute(("systemctl", "is-active", timer))
        active = rc == 0 and out.strip() == "active"
        report.require(ACME, active, f"{timer} is not active: certificates are not renewed")
        report.gauge(
            "tomwerk_acme_renewal_timer_active", "1 if the ACME renewal timer is active, else 0 (TOM-TLS-02).", active
        )
        report.gauge(
            "tomwerk_acme_min_valid_seconds",
            "Validity a certificate must have left (TOM-TLS-02), from acme_min_valid_days.",
            min_valid,
        )
        for entry in certificates:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str) or not SITE_NAME.match(name):
                raise StateError(f"{state.role}.json: vars.acme_certificates has an entry without a name", state.toms)
            self._one(report, host, name, f"{live}/{name}/cert.pem", f"{deploy}/{name}/fullchain.pem", min_valid)
        return report

    def _one(self, report: Report, host: Host, name: str, path: str, deployed: str, min_valid: int) -> None:
        text = host.read_optional(path)
        ders = pem_certificates(text) if text is not None else []
        if not ders:
            report.require(ACME, False, f"certificate {name}: none obtained yet ({path} is missing or empty)")
            return
        cert = self._parse(ders[0])
        left = cert.not_after - self._now()
        report.require(ACME, not cert.self_issued, f"certificate {name} is self-signed, not issued by the ACME CA")
        report.require(
            ACME, left > min_valid, f"certificate {name} expires in {left / DAY:.1f} days: renewal does not work"
        )
        report.gauge(
            "tomwerk_acme_certificate_expiry_timestamp_seconds",
            "Unix time the certificate certbot holds expires (TOM-TLS-02).",
            cert.not_after,
            name=name,
        )
        linked = host.read_optional(deployed)
        if linked is not None:
            in_use = pem_certificates(linked)[:1] == ders[:1]
            report.require(ACME, in_use, f"certificate {name}: {deployed} is not the ACME certificate")
            report.gauge(
                "tomwerk_acme_certificate_deployed",
                "1 if the site's certificate link points at the ACME certificate, else 0 (TOM-TLS-02).",
                in_use,
                name=name,
            )
