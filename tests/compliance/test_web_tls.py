"""TOM-TLS-01: own websites over HTTPS only (redirect, HSTS, Mozilla's TLS profile);
TOM-WEB-01: no tracking cookies. Real requests from another lab host, a real sslyze scan."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from tests.compliance.tlsprobe import acme_root_pem, cookie_names, header, peer_get, sslyze_scan
from tomwerk.inventory import Inventory

ROLE = "web_tls"
TWO_YEARS = 63072000
# src=/href= URLs with a host: anything a page loads or links from elsewhere.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']((?:https?:)?//[^"']+)""")


def in_own_domains(name: str, own: list[str]) -> bool:
    return any(name == d or name.endswith("." + d) for d in own)


def sites(role_vars) -> list[tuple[str, str]]:
    """(site name, first server name) of every site the role serves."""
    return [(s["name"], s["server_names"][0]) for s in role_vars["web_tls_sites"]]


def acme_root(inventory: Inventory, hostname: str, host) -> str | None:
    """The ACME CA's root when the inventory names one (the lab's pebble), else None (system trust)."""
    url = inventory.role_vars(hostname, "acme").get("acme_ca_roots_url")
    return acme_root_pem(host, url) if url else None


@pytest.fixture(scope="module")
def scans(inventory, hostname, host, address, role_vars):
    root = acme_root(inventory, hostname, host)
    return {name: sslyze_scan(address, 443, server, root) for name, server in sites(role_vars)}


@pytest.mark.tom("TOM-TLS-01")
def test_http_answers_only_with_a_redirect_to_https(peer, address, role_vars, evidence):
    """Plain HTTP from another host gets a 301 to the same URL over HTTPS, for the site's names and unknown ones."""
    _, peer_host, _ = peer
    seen = {}
    for _, server in sites(role_vars):
        for name, path in ((server, "/"), (server, "/kontakt/formular?x=1"), ("unknown.invalid", "/")):
            answer = peer_get(peer_host, address, 80, name, path)
            seen[f"{name}{path}"] = [answer["status"], header(answer, "Location")]
            assert answer["status"] == 301, seen
            assert header(answer, "Location") == f"https://{name}{path}", seen
    evidence("http answers", seen)


@pytest.mark.tom("TOM-TLS-01")
def test_hsts_for_at_least_two_years(peer, address, role_vars, evidence):
    """HTTPS answers carry Strict-Transport-Security with max-age >= 63072000 (the configured value)."""
    _, peer_host, _ = peer
    for name, server in sites(role_vars):
        value = header(peer_get(peer_host, address, 443, server, "/", tls=True), "Strict-Transport-Security")
        evidence(f"HSTS {name}", value)
        age = re.search(r"max-age=(\d+)", value or "")
        assert age, value
        assert int(age.group(1)) >= TWO_YEARS
        assert int(age.group(1)) == int(role_vars["web_tls_hsts_max_age"])


@pytest.mark.tom("TOM-TLS-01")
def test_tls_handshake_from_another_host(peer, address, role_vars, evidence):
    """A real TLS handshake from another lab host negotiates a configured version and serves the site."""
    _, peer_host, _ = peer
    for name, server in sites(role_vars):
        answer = peer_get(peer_host, address, 443, server, "/", tls=True)
        evidence(f"handshake {name}", {"version": answer["tls_version"], "cipher": answer["cipher"]})
        assert answer["tls_version"] in role_vars["web_tls_protocols"]
        assert answer["status"] == 200


@pytest.mark.tom("TOM-TLS-01")
def test_sslyze_finds_the_mozilla_profile(scans, role_vars, evidence):
    """sslyze's check against Mozilla's profile (intermediate by default) finds no issue."""
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    profile = MozillaTlsConfiguration.get(TlsConfigurationEnum(role_vars["web_tls_profile"]))
    for name, scan in scans.items():
        try:
            check_server_against_tls_configuration(scan, profile)
            issues = {}
        except ServerNotCompliantWithTlsConfiguration as exc:
            issues = exc.issues
        evidence(f"mozilla {role_vars['web_tls_profile']} issues {name}", issues)
        assert issues == {}


@pytest.mark.tom("TOM-TLS-01")
def test_tls_below_1_2_is_refused(scans, evidence):
    """Handshakes with SSL 3.0, TLS 1.0 and TLS 1.1 are refused (sslyze tries every cipher suite of each)."""
    for name, scan in scans.items():
        result = scan.scan_result
        accepted = {
            version: len(getattr(result, f"{version}_cipher_suites").result.accepted_cipher_suites)
            for version in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1", "tls_1_2", "tls_1_3")
        }
        evidence(f"accepted cipher suites per version {name}", accepted)
        assert accepted["ssl_2_0"] == accepted["ssl_3_0"] == accepted["tls_1_0"] == accepted["tls_1_1"] == 0
        # The scan really got through: the allowed versions were accepted.
        assert accepted["tls_1_3"] > 0


@pytest.mark.tom("TOM-WEB-01")
def test_no_tracking_cookies_and_no_third_party_content(peer, address, inventory, hostname, role_vars, evidence):
    """The sites' answers set no cookie beyond web_tls_allowed_cookies, and pages load nothing from outside."""
    _, peer_host, _ = peer
    own = [str(d) for d in inventory.var(hostname, "tomwerk_own_domains")]
    allowed = set(role_vars["web_tls_allowed_cookies"])
    cookies, foreign = {}, {}
    for name, server in sites(role_vars):
        for path, tls in (("/", True), ("/index.html", True), ("/does-not-exist", True), ("/", False)):
            answer = peer_get(peer_host, address, 443 if tls else 80, server, path, tls=tls)
            cookies[f"{name}{path}{'' if tls else ' (http)'}"] = cookie_names(answer)
            if tls and answer["status"] == 200:
                hosts = {urlsplit(u).hostname for u in EXTERNAL.findall(answer["body"])}
                foreign[f"{name}{path}"] = sorted(h for h in hosts if h and not in_own_domains(h, own))
    evidence("cookies set", cookies)
    evidence("third-party hosts referenced", foreign)
    assert all(set(names) <= allowed for names in cookies.values()), cookies
    assert not any(foreign.values()), foreign
