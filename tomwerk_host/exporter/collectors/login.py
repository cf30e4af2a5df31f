"""TOM-OS-01: restrictive login defaults, against what login_defaults applied.

- umask: /etc/login.defs UMASK, and pam_umask in the session stack so that
  SSH sessions get it too;
- password-aging: PASS_MAX_DAYS, PASS_MIN_DAYS, PASS_WARN_AGE in login.defs
  for new accounts, and the same aging on every local account that has a
  password (locked accounts and those without one are left out);
- pam-tmpdir: pam_tmpdir in the session stack (a private $TMPDIR per user).

All of it lives in the host's own files and applies in a container too; an
admin's real login (tests/compliance/test_login_defaults.py) proves the effect.
Account names never leave this module.
"""

from __future__ import annotations

from ..core import CheckError, Collector, Host, Report, State, expand
from .baseline import count_exceptions, exceptions
from .password import PAM_LINE

TOM = "TOM-OS-01"
LOGIN_DEFS = "/etc/login.defs"
SHADOW = "/etc/shadow"
PAM_SESSION = "/etc/pam.d/common-session"
PAM_TMPDIR_GLOBS = ("/usr/lib/*/security/pam_tmpdir.so", "/lib/*/security/pam_tmpdir.so")


def login_defs(text: str) -> dict[str, str]:
    """Settings of login.defs (the last one of a name wins, as for the shadow tools)."""
    found = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2:
            found[words[0]] = words[1]
    return found


def session_modules(text: str) -> list[str]:
    """Module names of the session lines of a PAM file."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        match = PAM_LINE.match(line.split("#", 1)[0].strip())
        if match and match.group(1) == "session":
            found.append(match.group(3).rsplit("/", 1)[-1])
    return found


def exists(host: Host, path: str) -> bool:
    try:
        host.stat(path)
    except OSError:
        return False
    return True


def umask_value(text: str) -> int | None:
    try:
        return int(text, 8)
    except ValueError:
        return None


def aged_badly(text: str, max_days: int, min_days: int, warn_days: int) -> int:
    """Accounts with a password whose aging is laxer than wanted."""
    bad = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split(":")
        if len(fields) < 6:
            raise CheckError(f"{SHADOW} line {number} is malformed")
        password = fields[1]
        if not password or password[0] in "!*":
            continue  # locked or no password: nothing ages
        try:
            minimum, maximum = int(fields[3] or -1), int(fields[4] or -1)
            warn = int(fields[5]) if len(fields) > 5 and fields[5] else -1
        except ValueError:
            raise CheckError(f"{SHADOW} line {number} has non-numeric aging fields") from None
        if not (0 <= maximum <= max_days) or minimum < min_days or warn < warn_days:
            bad += 1
    return bad


class LoginCollector(Collector):
    name = "login"
    role = "login_defaults"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        wanted_umask = umask_value(state.text("login_defaults_umask"))
        if wanted_umask is None:
            raise CheckError("login_defaults.json: vars.login_defaults_umask is not an octal umask", state.toms)
        max_days = state.integer("login_defaults_pass_max_days", 1, 99999)
        min_days = state.integer("login_defaults_pass_min_days", 0, 99999)
        warn_days = state.integer("login_defaults_pass_warn_days", 0, 99999)
        excused = exceptions(state, TOM)
        report = Report()
        count_exceptions(report, TOM, excused)
        defs = login_defs(host.read(LOGIN_DEFS))
        session = session_modules(host.read(PAM_SESSION))
        if "umask" not in excused:
            live = umask_value(defs.get("UMASK", ""))
            report.require(
                TOM,
                live is not None and live & wanted_umask == wanted_umask,
                f"UMASK in {LOGIN_DEFS} is {defs.get('UMASK', 'not set')}, not {state.text('login_defaults_umask')}",
            )
            report.require(TOM, "pam_umask.so" in session, f"{PAM_SESSION} does not run pam_umask")
        if "password-aging" not in excused:
            for key, wanted, stricter in (
                ("PASS_MAX_DAYS", max_days, lambda v: v <= max_days),
                ("PASS_MIN_DAYS", min_days, lambda v: v >= min_days),
                ("PASS_WARN_AGE", warn_days, lambda v: v >= warn_days),
            ):
                value = defs.get(key, "")
                report.require(
                    TOM,
                    value.lstrip("-").isdigit() and stricter(int(value)),
                    f"{key} in {LOGIN_DEFS} is {value or 'not set'}, not {wanted}",
                )
            bad = aged_badly(host.read(SHADOW), max_days, min_days, warn_days)
            report.require(TOM, not bad, f"{bad} accounts with a password lack the password aging")
            report.gauge(
                "tomwerk_login_accounts_without_aging",
                "Local accounts with a password whose aging (maximum, minimum, warning days) is laxer than "
                "login_defaults applied (TOM-OS-01); absent when the control is excused.",
                bad,
            )
        if "pam-tmpdir" not in excused:
            report.require(TOM, "pam_tmpdir.so" in session, f"{PAM_SESSION} does not run pam_tmpdir")
            installed = any(exists(host, path) for pattern in PAM_TMPDIR_GLOBS for path in expand(host, pattern))
            report.require(TOM, installed, "pam_tmpdir.so is not installed (package libpam-tmpdir)")
        report.require(TOM, True, "")
        return report
