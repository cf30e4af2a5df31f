"""The OS baseline collectors (TOM-OS-01..06) on hand-built hosts: compliant, each drift
fails the right TOM with a reason, exceptions excuse exactly their control, and a
kernel-wide TOM inside a container is "needs a real kernel", never a verdict.

The files are Debian 13's as the roles leave them (login.defs, common-session,
limits, /proc/sys); the sshd -T output is the compliant recording's.
"""

from __future__ import annotations

import pytest

from tests.unit.exporter_helpers import FIXTURES, STATE_DIR, DictHost, FakeClock, scrape
from tomwerk_host import probe
from tomwerk_host.exporter import core
from tomwerk_host.exporter.collectors import banner, coredump, login, modules, sysctl
from tomwerk_host.exporter.collectors.ssh import SSHD_T

SSHD_OUTPUT = (FIXTURES / "compliant" / "commands" / "sshd-T.txt").read_text()
NOTICE = "Nur für befugte Personen.\n\nAuthorised persons only.\n"
SHADOW = (
    "root:$y$j9T$bZwBtNp0aHaI0S5N$9rCOYoRwcZp0u3RMs8URzlR9tVbqAX1MVREaUdSVKC0:20413:1:365:7:::\n"
    "daemon:*:20400:0:99999:7:::\n"
    "alice:!:20413:0:99999:7:::\n"
)
COMMON_SESSION = (
    "session [default=1] pam_permit.so\nsession requisite pam_deny.so\nsession required pam_permit.so\n"
    "session required pam_unix.so\nsession optional pam_tmpdir.so\nsession optional pam_umask.so\n"
    "session optional pam_systemd.so\n"
)
NETWORK = {
    "rp-filter": {"net.ipv4.conf.all.rp_filter": 1},
    "redirects": {"net.ipv4.conf.all.send_redirects": 0, "net.ipv6.conf.all.accept_redirects": 0},
    "syncookies": {"net.ipv4.tcp_syncookies": 1},
}
KERNEL = {"kptr-restrict": {"kernel.kptr_restrict": 2}, "suid-dumpable": {"fs.suid_dumpable": 0}}
MODULES = ["usb-storage", "dccp"]


def proc(values: dict) -> dict[str, str]:
    return {f"/proc/sys/{k.replace('.', '/')}": f"{v}\n" for keys in values.values() for k, v in keys.items()}


PAM_TMPDIR = "/usr/lib/x86_64-linux-gnu/security/pam_tmpdir.so"
LIMITS_D = "/etc/security/limits.d"
COREDUMP_D = "/etc/systemd/coredump.conf.d"


class BaselineHost(DictHost):
    def edit(self, path: str, old: str, new: str) -> None:
        assert old in self.files[path], f"{old!r} not in {path}"
        self.files[path] = self.files[path].replace(old, new)


def baseline_host() -> BaselineHost:
    files = {
        "/etc/login.defs": "MAIL_DIR /var/mail\nUMASK 027\nPASS_MAX_DAYS 365\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 7\n",
        "/etc/shadow": SHADOW,
        "/etc/pam.d/common-session": COMMON_SESSION,
        PAM_TMPDIR: "",
        "/etc/security/limits.conf": "# <domain> <type> <item> <value>\n",
        "/etc/security/limits.d/60-tomwerk-core.conf": "*    hard    core    0\n*    soft    core    0\n",
        "/etc/systemd/coredump.conf": "[Coredump]\n#Storage=external\n",
        "/etc/systemd/coredump.conf.d/60-tomwerk.conf": "[Coredump]\nStorage=none\nProcessSizeMax=0\n",
        "/etc/issue": NOTICE + "\n",
        "/etc/issue.net": NOTICE,
        "/proc/modules": "nf_tables 356352 1 - Live 0x0000000000000000\n",
        **proc(NETWORK),
        **proc(KERNEL),
    }
    outputs = {
        SSHD_T: (0, SSHD_OUTPUT, ""),
        coredump.SYSTEMCTL_SHOW: (0, "DefaultLimitCORE=0\n", ""),
        **{(modules.MODPROBE, "-n", "-v", m): (0, "install /bin/false\n", "") for m in MODULES},
    }
    return BaselineHost(files, outputs)


def in_container(host: DictHost, kind: str = "podman") -> DictHost:
    host.files["/run/systemd/container"] = kind + "\n"
    return host


STATES = {
    "login": (login.LoginCollector, "login_defaults", ("TOM-OS-01",), {
        "login_defaults_umask": "027", "login_defaults_pass_max_days": 365,
        "login_defaults_pass_min_days": 1, "login_defaults_pass_warn_days": 7,
    }),
    "coredump": (coredump.CoredumpCollector, "core_dumps", ("TOM-OS-02",), {}),
    "sysctl": (sysctl.SysctlCollector, "sysctl_hardening", ("TOM-OS-03", "TOM-OS-04"), {
        "sysctl_hardening_network": NETWORK, "sysctl_hardening_kernel": KERNEL,
    }),
    "modules": (modules.ModulesCollector, "kernel_modules", ("TOM-OS-05",), {"kernel_modules_blocked": MODULES}),
    "banner": (banner.BannerCollector, "legal_banner", ("TOM-OS-06",), {"legal_banner_text": NOTICE}),
}  # fmt: skip


def run(name: str, host: DictHost | None = None, exceptions: dict | None = None, **changes):
    """One check run of the named collector: (failures by TOM, unprovable by TOM, figures)."""
    cls, role, toms, variables = STATES[name]
    state = core.State(role, toms, {**variables, "tomwerk_exceptions": exceptions or {}, **changes}, STATE_DIR)
    report = cls().check(state, host or baseline_host())
    figures = {(s.name, s.labels): s.value for s in report.samples}
    return {t: report.failures.get(t) for t in toms}, {t: report.unproven.get(t, []) for t in toms}, figures


@pytest.mark.parametrize("name", STATES)
def test_the_baseline_host_holds(name):
    failures, unproven, _ = run(name)
    assert all(f == [] for f in failures.values()), failures
    assert all(u == [] for u in unproven.values()), unproven


def put(path: str, text: str):
    return lambda h: h.files.update({path: text})


def answer(argv: tuple[str, ...], text: str):
    return lambda h: h.outputs.update({argv: (0, text, "")})


LOGIN_DEFS = "/etc/login.defs"
SESSION = "/etc/pam.d/common-session"
DCCP = (modules.MODPROBE, "-n", "-v", "dccp")
# id: (collector, drift of the host, failing TOM, words of the reason)
DRIFTS = {
    "umask 022": ("login", lambda h: h.edit(LOGIN_DEFS, "UMASK 027", "UMASK 022"), "TOM-OS-01", "UMASK"),
    "no pam_umask": (
        "login",
        lambda h: h.edit(SESSION, "session optional pam_umask.so\n", ""),
        "TOM-OS-01",
        "pam_umask",
    ),
    "account without aging": (
        "login",
        put("/etc/shadow", SHADOW.replace(":1:365:7:", ":0:99999:7:")),
        "TOM-OS-01",
        "aging",
    ),
    "pam_tmpdir removed": ("login", lambda h: h.files.pop(PAM_TMPDIR), "TOM-OS-01", "libpam-tmpdir"),
    "core limit raised": (
        "coredump",
        put(f"{LIMITS_D}/90-dev.conf", "root hard core unlimited\n"),
        "TOM-OS-02",
        "raise",
    ),
    "services may dump": (
        "coredump",
        answer(coredump.SYSTEMCTL_SHOW, "DefaultLimitCORE=infinity\n"),
        "TOM-OS-02",
        "infinity",
    ),
    "coredump stores again": (
        "coredump",
        put(f"{COREDUMP_D}/90-x.conf", "[Coredump]\nStorage=external\n"),
        "TOM-OS-02",
        "Storage",
    ),
    "redirects sent": (
        "sysctl",
        put("/proc/sys/net/ipv4/conf/all/send_redirects", "1\n"),
        "TOM-OS-03",
        "send_redirects",
    ),
    "kptr_restrict 0": ("sysctl", put("/proc/sys/kernel/kptr_restrict", "0\n"), "TOM-OS-04", "kptr_restrict"),
    "module loadable": (
        "modules",
        answer(DCCP, "insmod /lib/modules/6.12.0/kernel/net/dccp/dccp.ko\n"),
        "TOM-OS-05",
        "would load",
    ),
    "module loaded": ("modules", put("/proc/modules", "usb_storage 81920 0 - Live 0x0\n"), "TOM-OS-05", "loaded now"),
    "issue shows the release": (
        "banner",
        put("/etc/issue", "Debian GNU/Linux 13 \\n \\l\n"),
        "TOM-OS-06",
        "/etc/issue ",
    ),
    "sshd sends no banner": (
        "banner",
        answer(SSHD_T, SSHD_OUTPUT.replace("banner /etc/issue.net", "banner none")),
        "TOM-OS-06",
        "banner none",
    ),
}


@pytest.mark.parametrize("case", DRIFTS)
def test_a_drift_fails_its_tom_with_a_reason(case):
    name, drift, tom, words = DRIFTS[case]
    host = baseline_host()
    drift(host)
    failures, _, _ = run(name, host)
    assert failures[tom] and any(words in reason for reason in failures[tom]), failures
    assert all(f == [] for t, f in failures.items() if t != tom), failures


def test_figures_of_the_baseline_host():
    figures = {}
    for name in STATES:
        figures.update(run(name)[2])
    assert figures[("tomwerk_login_accounts_without_aging", ())] == 0
    assert figures[("tomwerk_sysctl_wrong_settings", (("tom", "TOM-OS-03"),))] == 0
    assert figures[("tomwerk_modules_loadable", ())] == 0
    assert figures[("tomwerk_banner_files_differing", ())] == 0
    assert figures[("tomwerk_tom_exceptions", (("tom", "TOM-OS-05"),))] == 0


@pytest.mark.parametrize(
    ("name", "exception", "drift_case"),
    [
        ("modules", "usb-storage", "module loaded"),
        ("login", "umask", "umask 022"),
        ("coredump", "service-limits", "services may dump"),
        ("sysctl", "redirects", "redirects sent"),
        ("banner", "network", "sshd sends no banner"),
    ],
)
def test_an_exception_excuses_exactly_its_control(name, exception, drift_case):
    _, drift, tom, _ = DRIFTS[drift_case]
    host = baseline_host()
    drift(host)
    reason = "backup to a USB disk, decided by the admins on 2026-12-01"
    failures, _, figures = run(name, host, {f"{tom}:{exception}": reason})
    assert failures[tom] == [], failures
    assert figures[("tomwerk_tom_exceptions", (("tom", tom),))] == 1
    other = "TOM-OS-01:pam-tmpdir" if tom != "TOM-OS-01" else "TOM-OS-02:limits"
    failures, _, _ = run(name, host, {other: reason})  # another TOM's exception excuses nothing here
    assert failures[tom], failures


@pytest.mark.parametrize("kind", ["podman", "docker", "lxc"])
def test_kernel_wide_toms_need_a_real_kernel_in_a_container(kind):
    host = in_container(baseline_host(), kind)
    host.files["/proc/sys/kernel/kptr_restrict"] = "0\n"  # the machine's value: no verdict either way
    failures, unproven, figures = run("sysctl", host)
    assert failures == {"TOM-OS-03": [], "TOM-OS-04": []}
    assert unproven["TOM-OS-03"] == []  # per network namespace: proven in the container
    assert unproven["TOM-OS-04"] and unproven["TOM-OS-04"][0].startswith(f"needs a real kernel: this host is a {kind}")
    assert ("tomwerk_sysctl_wrong_settings", (("tom", "TOM-OS-04"),)) not in figures
    failures, unproven, _ = run("modules", host)
    assert failures["TOM-OS-05"] == [] and unproven["TOM-OS-05"][0].startswith("needs a real kernel")
    assert host.calls[(modules.MODPROBE, "-n", "-v", "dccp")] == 0


def test_a_failing_network_setting_in_a_container_still_fails():
    host = in_container(baseline_host())
    host.files["/proc/sys/net/ipv4/tcp_syncookies"] = "0\n"
    failures, unproven, _ = run("sysctl", host)
    assert failures["TOM-OS-03"] and unproven["TOM-OS-03"] == []


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/run/.containerenv", "podman"), ("/.dockerenv", "docker"), ("/proc/1/environ", "lxc")],
)
def test_a_container_is_recognised_by_its_markers(path, kind):
    host = baseline_host()
    assert core.container(host) is None
    host.files[path] = "PATH=/usr/bin\0container=lxc\0" if path == "/proc/1/environ" else ""
    assert core.container(host) == kind


def test_an_ipv6_key_the_kernel_lacks_is_no_finding():
    host = baseline_host()
    host.files.pop("/proc/sys/net/ipv6/conf/all/accept_redirects")
    assert run("sysctl", host)[0]["TOM-OS-03"] == []
    host.files.pop("/proc/sys/net/ipv4/tcp_syncookies")
    assert "net.ipv4.tcp_syncookies is missing, not 1" in run("sysctl", host)[0]["TOM-OS-03"]


def test_a_broken_exceptions_record_is_a_check_error():
    with pytest.raises(core.CheckError, match="tomwerk_exceptions"):
        run("modules", exceptions={"TOM-OS-05:dccp": ""})


# --------------------------------------------------------------------- exporter and probe


def exporter_for(host: DictHost) -> core.TomExporter:
    import json

    for _cls, role, toms, variables in STATES.values():
        host.files[f"{STATE_DIR}/{role}.json"] = json.dumps(
            {"role": role, "toms": list(toms), "vars": {**variables, "tomwerk_exceptions": {}}}
        )
    collectors = [cls() for cls, *_ in STATES.values()]
    return core.TomExporter(collectors, host=host, state_dir=STATE_DIR, wall=FakeClock(1_700_000_000.0))


def test_in_a_container_the_metric_says_unprovable_and_the_probe_gives_the_reason():
    host = in_container(baseline_host())
    s = scrape(exporter_for(host))
    assert s.toms() == {"TOM-OS-01": 1, "TOM-OS-02": 1, "TOM-OS-03": 1, "TOM-OS-06": 1}
    unprovable = {dict(labels)["tom"]: v for labels, v in s.series("tomwerk_tom_unprovable").items()}
    assert unprovable == {"TOM-OS-04": 1, "TOM-OS-05": 1}
    checked = {dict(labels)["tom"] for labels in s.series("tomwerk_tom_check_timestamp_seconds")}
    assert {"TOM-OS-04", "TOM-OS-05"} <= checked  # still evaluated: TomChecksStale keeps watching
    measured = probe.measure(exporter_for(host))["toms"]
    assert measured["TOM-OS-04"]["compliant"] is False
    assert measured["TOM-OS-04"]["reasons"] == []
    assert measured["TOM-OS-04"]["unprovable"][0].startswith("needs a real kernel")
    assert measured["TOM-OS-03"] == {**measured["TOM-OS-03"], "compliant": True, "unprovable": []}


def test_on_a_real_kernel_every_baseline_tom_is_compliant():
    s = scrape(exporter_for(baseline_host()))
    assert s.toms() == dict.fromkeys([f"TOM-OS-0{i}" for i in range(1, 7)], 1)
    assert s.series("tomwerk_tom_unprovable") == {}


def test_a_failure_outweighs_needing_a_real_kernel():
    host = in_container(baseline_host())
    host.files["/proc/sys/net/ipv4/tcp_syncookies"] = "0\n"
    s = scrape(exporter_for(host))
    assert s.toms()["TOM-OS-03"] == 0
