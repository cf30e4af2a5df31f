"""tomwerk-antivirus-scan: one scheduled ClamAV scan of the paths that hold customer data (TOM-AV-01).

    tomwerk-antivirus-scan --result FILE PATH...   scan with clamd (clamdscan --fdpass) and record the result
    tomwerk-antivirus-scan --locate ID PATH...     print the file whose path id a finding names

The result file (JSON, read by the tomwerk exporter) holds the time of the
last completed scan, the files scanned, the errors and the findings. A finding
names the signature, the scanned path it lies under and a path id (the first
16 hex digits of the SHA-256 of the full path), never the full path: file and
mailbox names can be personal data. `--locate` finds the file for a path id.

Every finding and each scan's summary go to syslog (ident tomwerk-antivirus).
A scan that cannot run (clamd down) keeps the last completed scan and records
the failure; the exit code is 1 then, 0 for every completed scan, findings or not.
Only the Python standard library: this runs on the hosts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import syslog
import tempfile
import time

FOUND = re.compile(r"^(?P<path>/.*): (?P<signature>[^\s:]+) FOUND$")
ERROR = re.compile(r"^(?P<path>/.*): (?P<reason>.*) ERROR$")


def path_id(path: str) -> str:
    return hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def walk(roots: list[str]) -> tuple[list[tuple[str, str]], list[str], int]:
    """(root, file) for each regular file under the roots, the roots that are missing, names skipped."""
    files, missing, skipped = [], [], 0
    for root in roots:
        if not os.path.lexists(root):
            missing.append(root)
            continue
        if os.path.isfile(root):
            files.append((root, root))
            continue
        for directory, _dirs, names in os.walk(root, followlinks=False):
            for name in names:
                full = os.path.join(directory, name)
                if "\n" in full:  # clamdscan's file list is one path per line
                    skipped += 1
                    continue
                try:
                    if stat.S_ISREG(os.lstat(full).st_mode):
                        files.append((root, full))
                except OSError:
                    skipped += 1
    return files, missing, skipped


def root_of(path: str, roots: list[str]) -> str:
    best = ""
    for root in roots:
        if (path == root or path.startswith(root.rstrip("/") + "/")) and len(root) > len(best):
            best = root
    return best or "?"


def load(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save(path: str, data: dict) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".scan-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def log(priority: int, message: str) -> None:
    syslog.syslog(priority, message)
    if sys.stdout.isatty():  # under systemd, syslog alone (no second copy from stdout)
        print(message, flush=True)


def scan(result_file: str, roots: list[str]) -> int:
    syslog.openlog("tomwerk-antivirus", 0, syslog.LOG_DAEMON)
    started = time.time()
    previous = load(result_file)
    files, missing, skipped = walk(roots)
    findings: list[dict] = []
    errors = skipped
    failure = None
    if files:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", errors="surrogateescape", suffix=".list") as listing:
            listing.write("".join(f"{full}\n" for _root, full in files))
            listing.flush()
            # --fdpass: clamdscan (root) opens each file and hands clamd the descriptor.
            proc = subprocess.run(
                ["clamdscan", "--fdpass", "--no-summary", "--infected", f"--file-list={listing.name}"],
                capture_output=True,
                text=True,
                errors="surrogateescape",
                check=False,
            )
        for line in proc.stdout.splitlines() + proc.stderr.splitlines():
            found = FOUND.match(line)
            if found:
                path = found.group("path")
                findings.append(
                    {"root": root_of(path, roots), "signature": found.group("signature"), "path_id": path_id(path)}
                )
            elif ERROR.match(line):
                errors += 1
        if proc.returncode not in (0, 1) and not findings and errors == skipped:
            failure = " ".join((proc.stderr or proc.stdout or f"clamdscan exited with {proc.returncode}").split())[:300]
    finished = time.time()
    if failure:
        previous.update(last_failure_timestamp=finished, last_failure=failure)
        save(result_file, previous)
        log(syslog.LOG_ERR, f"scan failed, last completed scan kept: {failure}")
        return 1
    result = {
        "last_started_timestamp": started,
        "last_completed_timestamp": finished,
        "duration_seconds": round(finished - started, 3),
        "paths": roots,
        "missing_paths": missing,
        "files_scanned": len(files) - (errors - skipped),
        "errors": errors,
        "infected_files": len(findings),
        "infected": findings,
        "last_failure_timestamp": previous.get("last_failure_timestamp"),
        "last_failure": previous.get("last_failure"),
    }
    save(result_file, result)
    for finding in findings:
        log(
            syslog.LOG_WARNING,
            f"finding: signature={finding['signature']} under={finding['root']} path_id={finding['path_id']}",
        )
    log(
        syslog.LOG_WARNING if findings else syslog.LOG_INFO,
        f"scan completed: files={result['files_scanned']} infected={len(findings)} errors={errors} "
        f"missing_paths={len(missing)} seconds={result['duration_seconds']}",
    )
    return 0


def locate(wanted: str, roots: list[str]) -> int:
    files, _missing, _skipped = walk(roots)
    hits = [full for _root, full in files if path_id(full) == wanted]
    for full in hits:
        print(full)
    return 0 if hits else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tomwerk-antivirus-scan", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--result", help="result file to write")
    mode.add_argument("--locate", metavar="ID", help="print the file with this path id")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    roots = [os.path.normpath(p) for p in args.paths]
    if args.locate:
        return locate(args.locate, roots)
    return scan(args.result, roots)


if __name__ == "__main__":
    sys.exit(main())
