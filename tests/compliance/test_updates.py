"""TOM-UPD-01: updates are installed at least weekly, from origins that really
match this host's Debian archives."""

from __future__ import annotations

import json
import re

import pytest

ROLE = "updates"


def apt_config(host, name: str) -> list[str]:
    """Values of an apt configuration item as apt itself resolves it: the list
    entries ("Name:: value") if it is a list, else its single value."""
    out = host.check_output(f"apt-config dump {name}")
    entries = re.findall(rf'^{re.escape(name)}:: "(.*)";$', out, re.MULTILINE)
    return entries or re.findall(rf'^{re.escape(name)} "(.*)";$', out, re.MULTILINE)


def release_origins(host) -> list[dict[str, str]]:
    """The archives apt knows, from `apt-cache policy` release lines (o=, a=, n=, l=)."""
    out = host.check_output("apt-cache policy")
    return [dict(kv.split("=", 1) for kv in m.split(",") if "=" in kv)
            for m in re.findall(r"^\s+release (\S+)", out, re.MULTILINE)]  # fmt: skip


def matches(pattern: str, release: dict[str, str], codename: str) -> bool:
    # Origins-Pattern keywords -> apt-cache policy release fields.
    keys = {"origin": "o", "codename": "n", "label": "l", "archive": "a", "suite": "a", "component": "c"}
    for item in pattern.replace("${distro_codename}", codename).split(","):
        key, _, value = item.partition("=")
        if release.get(keys.get(key, key)) != value:
            return False
    return True


@pytest.mark.tom("TOM-UPD-01")
def test_host_runs_a_debian_release_with_security_support(host, role_vars, evidence):
    """/etc/os-release names a Debian release that still gets security updates (13, or 12 LTS).

    The observed release is also what the evidence report shows for the host."""
    release = dict(line.split("=", 1) for line in host.check_output("cat /etc/os-release").splitlines() if "=" in line)
    version = release.get("VERSION_ID", "").strip('"')
    point = host.check_output("cat /etc/debian_version")
    evidence("debian release", f"Debian {point} ({release.get('VERSION_CODENAME', '?')})")
    assert release.get("ID") == "debian"
    assert version in role_vars["updates_supported_debian_releases"]


@pytest.mark.tom("TOM-UPD-01")
def test_every_origin_pattern_matches_a_real_archive(host, role_vars, evidence):
    """apt-config dump shows the configured patterns, and each matches an archive of apt-cache policy."""
    patterns = apt_config(host, "Unattended-Upgrade::Origins-Pattern")
    codename = host.system_info.codename
    releases = release_origins(host)
    matched = {
        p: [f"{r.get('o')}/{r.get('n')}/{r.get('l')}" for r in releases if matches(p, r, codename)] for p in patterns
    }
    evidence("pattern -> archives", matched)
    assert patterns == list(role_vars["updates_origins_patterns"])
    assert all(matched[p] for p in patterns), matched


@pytest.mark.tom("TOM-UPD-01")
def test_dry_run_uses_the_origins(host, evidence):
    """unattended-upgrade --dry-run runs cleanly and works with the configured origins."""
    result = host.run("unattended-upgrade --dry-run --debug 2>&1")
    allowed = re.search(r"Allowed origins are: (.*)", result.stdout)
    evidence("allowed origins", allowed.group(1) if allowed else result.stdout[-300:])
    assert result.rc == 0
    assert allowed and "Debian-Security" in allowed.group(1)


@pytest.mark.tom("TOM-UPD-01")
def test_runs_at_least_weekly(host, role_vars, evidence):
    """APT::Periodic runs unattended-upgrade every updates_interval_days (at most 7), and the timer is active."""
    interval = apt_config(host, "APT::Periodic::Unattended-Upgrade")
    evidence("APT::Periodic::Unattended-Upgrade", interval)
    assert interval == [str(role_vars["updates_interval_days"])]
    assert 1 <= int(interval[0]) <= 7
    timer = host.service("apt-daily-upgrade.timer")
    assert timer.is_enabled and timer.is_running


@pytest.mark.tom("TOM-UPD-01")
def test_last_successful_run_is_recent(host, role_vars, evidence):
    """The last successful unattended-upgrades run is younger than updates_max_age_days."""
    import time

    status = json.loads(host.file(role_vars["updates_status_file"]).content_string)
    last = status.get("last_success_timestamp")
    evidence("last success (age in hours)", round((time.time() - last) / 3600, 1) if last else None)
    assert last and time.time() - last < role_vars["updates_max_age_days"] * 86400
