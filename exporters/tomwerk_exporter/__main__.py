"""python3 -m tomwerk_exporter --listen-address ADDR --port 9840 --state-dir /etc/tomwerk/state --min-interval 30"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from prometheus_client import CollectorRegistry, generate_latest

from . import __version__
from .collectors import all_collectors
from .core import DEFAULT_MIN_INTERVAL, DEFAULT_STATE_DIR, TomExporter, make_http_server

DEFAULT_PORT = 9840


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tomwerk_exporter", description="Serve this host's TOMs (technical measures) as Prometheus metrics."
    )
    # Loopback by default: the deploying role names the address the monitoring server reaches.
    parser.add_argument("--listen-address", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="TCP port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, help="where the roles write their state files (default: %(default)s)"
    )
    parser.add_argument(
        "--min-interval",
        type=float,
        default=DEFAULT_MIN_INTERVAL,
        help="seconds a check result is served from cache before the check runs again (default: %(default)s)",
    )
    parser.add_argument("--once", action="store_true", help="print the metrics once to stdout and exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    if args.min_interval < 0:
        parser.error("--min-interval must not be negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # stderr goes to the journal, which adds time and unit: one plain line per event.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")
    exporter = TomExporter(all_collectors(), state_dir=args.state_dir, min_interval=args.min_interval)
    # An own registry: only the TOM metrics, and nothing runs a check at registration.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    if args.once:
        sys.stdout.write(generate_latest(registry).decode())
        return 0
    server = make_http_server(registry, args.listen_address, args.port)
    # systemd stops the service with SIGTERM; leave serve_forever cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]
    logging.getLogger("tomwerk_exporter").info(
        "listening on %s:%d (state dir %s, checks at most every %g s)", host, port, args.state_dir, args.min_interval
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
