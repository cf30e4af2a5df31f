"""tomwerk-anonymize inside the real rsyslog pipeline on a lab host (role log_privacy).

    .venv/bin/python bench/rsyslog_pipeline_bench.py [--host web1] [--lines 50000]

Writes --lines syslog messages with logger (IPv4, IPv6 with port, a mail address in each)
to /dev/log on the host, waits until all of them are in /var/log/syslog, and prints the
lines per second from the first write to the last line on disk (rsyslog, mmexternal with
tomwerk-anonymize, the file and the forwarding action). Exit status 1 when a line is
missing or still holds an address.
"""

from __future__ import annotations

import argparse
import secrets
import shlex
import subprocess
import sys
import time


def podman(host: str, script: str, timeout: float = 300) -> str:
    return subprocess.run(
        ["podman", "exec", host, "sh", "-c", script], capture_output=True, text=True, timeout=timeout, check=True
    ).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="web1")
    parser.add_argument("--lines", type=int, default=50_000)
    args = parser.parse_args(argv)
    token = f"bench{secrets.token_hex(4)}"
    awk = f'{{print "{token} " $1 " client 192.0.2." $1%256 " to=<u" $1 "@example.org> [2001:db8::" $1%9999 "]:443"}}'
    start = time.monotonic()
    podman(args.host, f"seq {args.lines} | awk {shlex.quote(awk)} | logger -t tomwerk-bench")
    while True:
        count = int(podman(args.host, f"grep -c '^.* tomwerk-bench: {token} ' /var/log/syslog || true") or 0)
        if count >= args.lines or time.monotonic() - start > 600:
            break
        time.sleep(0.2)
    elapsed = time.monotonic() - start
    leaks = podman(
        args.host, f"grep '{token} ' /var/log/syslog | grep -cE '192\\.0\\.2\\.|@example\\.org|2001:db8' || true"
    )
    leaks = int(leaks or 0)
    print(f"rsyslog pipeline on {args.host}: {count} of {args.lines} lines in {elapsed:.2f} s")
    print(f"  {count / elapsed:,.0f} lines/s end to end; lines still holding an address: {leaks}")
    return 0 if count == args.lines and leaks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
