"""TOM-SSH-01..03: what sshd really does (sshd -T), against what ssh_access applied.

Mirrors tests/compliance/test_ssh_access.py: keys only, exactly the named
admins (AllowUsers and the root-owned key files), exactly the configured
algorithms and all of them strong.
"""

from __future__ import annotations

import os
import re
import stat

from ..core import CheckError, Collector, Host, Report, State

SSHD_T = ("/usr/sbin/sshd", "-T")
ACCOUNTS = "/etc/passwd"
GROUP = "/etc/group"

KEYS_ONLY = "TOM-SSH-01"
ADMINS = "TOM-SSH-02"
CRYPTO = "TOM-SSH-03"

# sshd -T keyword -> required value (TOM-SSH-01); permitrootlogin comes from the state.
KEYS_ONLY_SETTINGS = {
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "permitemptypasswords": "no",
    "authenticationmethods": "publickey",
    "pubkeyauthentication": "yes",
    "hostbasedauthentication": "no",
    "gssapiauthentication": "no",
}
# "prohibit-password" shows as "without-password" in sshd -T.
ROOT_LOGIN = {"no": ("no",), "prohibit-password": ("without-password", "prohibit-password")}
# (sshd -T keyword, configured list, strong list) for TOM-SSH-03.
ALGORITHMS = (
    ("kexalgorithms", "ssh_access_kex_algorithms", "ssh_access_strong_kex"),
    ("ciphers", "ssh_access_ciphers", "ssh_access_strong_ciphers"),
    ("macs", "ssh_access_macs", "ssh_access_strong_macs"),
    ("hostkeyalgorithms", "ssh_access_host_key_algorithms", "ssh_access_strong_host_key_algorithms"),
)
# Protocol markers, not algorithms, should sshd ever list them.
PSEUDO_ALGORITHMS = ("kex-strict-", "ext-info-")
NO_LOGIN_SHELLS = ("nologin", "false")
# Key files larger than this are not read (a real one holds a few keys).
MAX_KEYS_FILE_BYTES = 1 << 20


class SshdConfig:
    """sshd -T output: keyword -> values; repeated keywords (allowusers, hostkey) come one per line."""

    def __init__(self, text: str):
        self.values: dict[str, list[str]] = {}
        for line in text.splitlines():
            key, _, value = line.strip().partition(" ")
            if key:
                self.values.setdefault(key.lower(), []).append(value.strip())
        if "port" not in self.values:
            raise CheckError("sshd -T printed no configuration (no port line)")

    def get(self, key: str) -> str | None:
        values = self.values.get(key)
        return values[-1] if values else None

    def words(self, key: str) -> list[str]:
        """All values of a keyword, split into words (one per line or several on one)."""
        return [w for v in self.values.get(key, []) for w in v.split()]

    def algorithms(self, key: str) -> list[str]:
        value = self.get(key) or ""
        return [a for a in value.split(",") if a and not a.startswith(PSEUDO_ALGORITHMS)]


class SshCollector(Collector):
    name = "ssh"
    role = "ssh_access"
    toms = (KEYS_ONLY, ADMINS, CRYPTO)

    def check(self, state: State, host: Host) -> Report:
        admins = sorted(state.texts("ssh_access_admins"))
        keys_dir = state.text("ssh_access_keys_dir").rstrip("/")
        root_login = state.text("ssh_access_permit_root_login", tuple(ROOT_LOGIN))
        lists = {name: state.texts(name) for _, var, strong in ALGORITHMS for name in (var, strong)}
        sshd = SshdConfig(host.output(SSHD_T))
        report = Report()
        self._keys_only(report, sshd, root_login)
        self._admins(report, sshd, host, admins, keys_dir)
        self._crypto(report, sshd, lists)
        report.gauge(
            "tomwerk_ssh_login_allowed_accounts",
            "Accounts sshd lets log in (TOM-SSH-02): allowed by Allow/DenyUsers/Groups and PermitRootLogin, "
            "with a login shell and an authorized key.",
            _login_allowed_accounts(sshd, host),
            tom=ADMINS,
        )
        return report

    def _keys_only(self, report: Report, sshd: SshdConfig, root_login: str) -> None:
        settings = dict(KEYS_ONLY_SETTINGS)
        observed = {key: sshd.get(key) for key in settings}
        # OpenSSH before 8.7 calls keyboard-interactive "challengeresponse".
        if observed["kbdinteractiveauthentication"] is None:
            observed["kbdinteractiveauthentication"] = sshd.get("challengeresponseauthentication")
        # Without GSSAPI support sshd does not print the keyword: it is off.
        if observed["gssapiauthentication"] is None:
            observed["gssapiauthentication"] = "no"
        for key, wanted in settings.items():
            report.require(KEYS_ONLY, observed[key] == wanted, f"{key} is {observed[key]}, not {wanted}")
        permit = sshd.get("permitrootlogin")
        report.require(
            KEYS_ONLY,
            permit in ROOT_LOGIN[root_login],
            f"permitrootlogin is {permit}, not {ROOT_LOGIN[root_login][0]}",
        )
        enabled = "yes" in (observed["passwordauthentication"], observed["kbdinteractiveauthentication"])
        report.gauge(
            "tomwerk_ssh_password_auth_enabled",
            "1 if sshd -T reports PasswordAuthentication or KbdInteractiveAuthentication yes (TOM-SSH-01).",
            1 if enabled else 0,
            tom=KEYS_ONLY,
        )

    def _admins(self, report: Report, sshd: SshdConfig, host: Host, admins: list[str], keys_dir: str) -> None:
        allowed = sorted(sshd.words("allowusers"))
        extra, missing = len([a for a in allowed if a not in admins]), len([a for a in admins if a not in allowed])
        report.require(
            ADMINS,
            allowed == admins,
            f"AllowUsers is not exactly the named admins ({extra} other entries, {missing} admins missing)",
        )
        report.require(ADMINS, "allowgroups" not in sshd.values, "AllowGroups is set")
        expected_file = f"{keys_dir}/%u"
        report.require(
            ADMINS,
            sshd.words("authorizedkeysfile") == [expected_file],
            f"AuthorizedKeysFile is not {expected_file}",
        )
        # Like `ls`: hidden files are no user's key file.
        files = [f for f in host.list_optional(keys_dir) or [] if not f.startswith(".")]
        unexpected = [f for f in files if f not in admins]
        report.require(ADMINS, not unexpected, f"{len(unexpected)} key files in {keys_dir} belong to no named admin")
        report.require(ADMINS, sorted(set(files) & set(admins)) == admins, "a named admin has no key file")
        for name in files:
            st = host.stat_of(f"{keys_dir}/{name}")
            # Root-owned and not writable by others: an account cannot add keys for itself.
            report.require(
                ADMINS,
                st.st_uid == 0 and not st.st_mode & 0o022,
                f"a key file in {keys_dir} is not root-owned or is group/world-writable",
            )
        report.gauge(
            "tomwerk_ssh_unexpected_key_files",
            "Files in the root-owned key directory that belong to no named admin (TOM-SSH-02).",
            len(unexpected),
            tom=ADMINS,
        )

    def _crypto(self, report: Report, sshd: SshdConfig, lists: dict[str, list[str]]) -> None:
        weak = 0
        for key, var, strong_var in ALGORITHMS:
            offered = sshd.algorithms(key)
            outside = [a for a in offered if a not in lists[strong_var]]
            weak += len(outside)
            report.require(CRYPTO, offered == lists[var], f"{key} offered differ from {var}")
            report.require(CRYPTO, not outside, f"{key}: weak or unknown {', '.join(outside)}")
        report.gauge(
            "tomwerk_ssh_weak_algorithms_offered",
            "Kex, cipher, MAC and host key algorithms sshd offers that are not in the strong lists (TOM-SSH-03).",
            weak,
            tom=CRYPTO,
        )


# --------------------------------------------------------------------- who may log in


def _pattern(pattern: str) -> re.Pattern:
    """sshd's wildcard patterns: * and ? only."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + r"\Z")


def _matches(patterns: list[str], name: str) -> bool:
    return any(_pattern(p).match(name) for p in patterns)


def _table(text: str, fields: int) -> list[list[str]]:
    rows = []
    for line in text.splitlines():
        if line.strip() and not line.startswith(("#", "+", "-")):
            row = line.split(":")
            if len(row) < fields:
                raise CheckError(f"malformed line in a {fields}-field account file")
            rows.append(row)
    return rows


def _login_allowed_accounts(sshd: SshdConfig, host: Host) -> int:
    """Accounts that pass sshd's user and group filters and have a login shell and a key."""
    users = _table(host.read(ACCOUNTS), 7)
    groups = _table(host.read(GROUP), 4)
    allow_users = [w.split("@", 1)[0] for w in sshd.words("allowusers")]
    # A host-qualified DenyUsers entry still lets the user in from elsewhere.
    deny_users = [w for w in sshd.words("denyusers") if "@" not in w]
    allow_groups, deny_groups = sshd.words("allowgroups"), sshd.words("denygroups")
    root_ok = sshd.get("permitrootlogin") not in (None, "no")
    keys_from_command = (sshd.get("authorizedkeyscommand") or "none") != "none"
    key_files = sshd.words("authorizedkeysfile")
    count = 0
    for name, _pw, uid, gid, _gecos, home, shell, *_ in users:
        member_of = [g[0] for g in groups if g[2] == gid or name in g[3].split(",")]
        if (
            _matches(deny_users, name)
            or (allow_users and not _matches(allow_users, name))
            or any(_matches(deny_groups, g) for g in member_of)
            or (allow_groups and not any(_matches(allow_groups, g) for g in member_of))
            or (uid == "0" and not root_ok)
            or os.path.basename(shell) in NO_LOGIN_SHELLS  # an empty shell field means /bin/sh
        ):
            continue
        # Keys may come from AuthorizedKeysCommand; then count the account (upper bound).
        if keys_from_command or _has_key(host, key_files, name, uid, home):
            count += 1
    return count


def _has_key(host: Host, key_files: list[str], name: str, uid: str, home: str) -> bool:
    tokens = {"%%": "%", "%u": name, "%U": uid, "%h": home}
    for pattern in key_files:
        if pattern == "none":
            continue
        path = re.sub(r"%[%uUh]", lambda m: tokens[m.group(0)], pattern)
        if not path.startswith("/"):
            path = os.path.join(home, path)
        # Paths in homes are the users' to choose: a FIFO or /dev/zero there must not hang or flood the check.
        try:
            st = host.stat(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise CheckError(f"cannot stat {path}: {exc.strerror or exc}") from None
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_KEYS_FILE_BYTES:
            continue
        text = host.read_optional(path)
        if text and any(line.strip() and not line.lstrip().startswith("#") for line in text.splitlines()):
            return True
    return False
