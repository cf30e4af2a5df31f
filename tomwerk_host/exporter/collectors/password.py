"""TOM-PWD-01: stored hashes in /etc/shadow and pam_unix, against what password_policy applied.

Mirrors tests/compliance/test_password_policy.py: no empty password, every
stored (not locked) hash of an allowed type; and, since the exporter cannot
set a password to see what PAM makes of it, pam_unix's configured hash and
rounds, and no nullok. Account names and hashes never leave this module.
"""

from __future__ import annotations

import re

from ..core import CheckError, Collector, Host, Report, State

SHADOW = "/etc/shadow"
PAM_CHANGE = "/etc/pam.d/common-password"
PAM_LOGIN = "/etc/pam.d/common-auth"
TOM = "TOM-PWD-01"

# crypt(5) prefixes, as the lab's checks name them. Anything else that is not
# locked counts as des, the weakest: crypt() treats it as a DES hash.
HASH_PREFIXES = (
    ("$y$", "yescrypt"),
    ("$gy$", "gost-yescrypt"),
    ("$7$", "scrypt"),
    ("$6$", "sha512"),
    ("$5$", "sha256"),
    ("$2b$", "bcrypt"),
    ("$2y$", "bcrypt"),
    ("$2a$", "bcrypt"),
    ("$1$", "md5"),
)
# The scale of tomwerk_password_weakest_hash_strength. scrypt and gost-yescrypt
# are memory-hard like yescrypt and rank with it.
STRENGTH = {
    "empty": 0,
    "des": 1,
    "md5": 2,
    "bcrypt": 3,
    "sha256": 4,
    "sha512": 5,
    "scrypt": 6,
    "gost-yescrypt": 6,
    "yescrypt": 6,
}
# pam_unix options that choose the hash; the last one given wins.
PAM_HASH_OPTIONS = ("md5", "bigcrypt", "sha256", "sha512", "blowfish", "gost_yescrypt", "yescrypt")
# type, control ([...] may hold spaces), module, arguments; "-" marks an optional module.
PAM_LINE = re.compile(r"^-?(\w+)\s+(\[[^\]]*\]|\S+)\s+(\S+)\s*(.*)$")


def hash_type(field: str) -> str:
    """The hash in a shadow password field: 'locked' for !/* fields, 'empty' for none."""
    if field == "":
        return "empty"
    if field[0] in "!*":
        return "locked"
    for prefix, name in HASH_PREFIXES:
        if field.startswith(prefix):
            return name
    return "des"


def pam_unix_args(text: str, kind: str) -> list[list[str]]:
    """Arguments of every pam_unix line of the given type (auth, password, ...)."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        match = PAM_LINE.match(line.split("#", 1)[0].strip())
        if match and match.group(1) == kind and match.group(3).rsplit("/", 1)[-1] == "pam_unix.so":
            found.append(match.group(4).split())
    return found


class PasswordCollector(Collector):
    name = "password"
    role = "password_policy"
    toms = (TOM,)

    def check(self, state: State, host: Host) -> Report:
        wanted = state.text("password_policy_hash", ("yescrypt", "sha512"))
        rounds = (
            state.integer("password_policy_yescrypt_cost", 1, 11)
            if wanted == "yescrypt"
            else state.integer("password_policy_sha512_rounds", 1000, 999999999)
        )
        allowed = state.texts("password_policy_allowed_hashes")
        report = Report()
        self._shadow(report, host.read(SHADOW), allowed)
        self._pam(report, host.read(PAM_CHANGE), host.read(PAM_LOGIN), wanted, rounds)
        return report

    def _shadow(self, report: Report, text: str, allowed: list[str]) -> None:
        types = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split(":")
            if len(fields) < 2:
                raise CheckError(f"{SHADOW} line {number} is malformed")
            types.append(hash_type(fields[1]))
        stored = [t for t in types if t != "locked"]
        empty = stored.count("empty")
        weak = [t for t in stored if t not in ("empty", *allowed)]
        report.require(TOM, not empty, f"{empty} accounts have an empty password")
        report.require(
            TOM, not weak, f"{len(weak)} accounts have a hash weaker than allowed ({', '.join(sorted(set(weak)))})"
        )
        report.gauge(
            "tomwerk_password_empty_accounts",
            "Accounts in /etc/shadow with an empty password field (TOM-PWD-01).",
            empty,
        )
        report.gauge(
            "tomwerk_password_weak_hash_accounts",
            "Accounts whose stored hash is not of an allowed type (TOM-PWD-01); locked and empty ones not counted.",
            len(weak),
        )
        if stored:
            # Ties (yescrypt, scrypt) go to the type listed later in HASH_PREFIXES, so the choice is stable.
            order = [name for _, name in HASH_PREFIXES]
            weakest = min(stored, key=lambda t: (STRENGTH[t], -order.index(t) if t in order else 0))
            report.gauge(
                "tomwerk_password_weakest_hash_strength",
                "Weakest password hash stored in /etc/shadow (TOM-PWD-01): 0 empty, 1 des, 2 md5, 3 bcrypt, "
                "4 sha256, 5 sha512, 6 yescrypt (also scrypt, gost-yescrypt); locked accounts ignored; "
                "absent when no account has a password.",
                STRENGTH[weakest],
            )
            report.gauge(
                "tomwerk_password_weakest_hash_info",
                "Always 1; the type label names the weakest stored password hash (TOM-PWD-01); "
                "absent when no account has a password.",
                1,
                type=weakest,
            )

    def _pam(self, report: Report, common_password: str, common_auth: str, wanted: str, rounds: int) -> None:
        lines = pam_unix_args(common_password, "password")
        report.require(TOM, bool(lines), f"{PAM_CHANGE} has no pam_unix password line")
        for args in lines:
            hashes = [a for a in args if a in PAM_HASH_OPTIONS]
            used = hashes[-1] if hashes else "the built-in default"
            report.require(TOM, used == wanted, f"pam_unix hashes new passwords with {used}, not {wanted}")
            given = [a.split("=", 1)[1] for a in args if a.startswith("rounds=")]
            report.require(
                TOM,
                bool(given) and given[-1] == str(rounds),
                f"pam_unix rounds is {given[-1] if given else 'not set'}, not {rounds}",
            )
        # nullok lets an empty password log in; nullok_secure does so on "secure" terminals.
        nullok = any(a.startswith("nullok") for args in pam_unix_args(common_auth, "auth") for a in args)
        report.require(TOM, not nullok, f"pam_unix in {PAM_LOGIN} accepts empty passwords (nullok)")
