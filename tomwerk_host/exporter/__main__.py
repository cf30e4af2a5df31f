"""tomwerk-exporter --listen-address ADDR --port 9840 --state-dir /etc/tomwerk/state --min-interval 30
[--tls-cert host.crt --tls-key host.key --tls-client-ca ca.crt --tls-allowed-client monitor1 ...]"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from prometheus_client import CollectorRegistry, generate_latest

from . import __version__
from .collectors import all_collectors
from .core import DEFAULT_MIN_INTERVAL, DEFAULT_STATE_DIR, TlsSettings, TomExporter, make_http_server

DEFAULT_PORT = 9840


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tomwerk-exporter", description="Serve this host's TOMs (technical measures) as Prometheus metrics."
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
    tls = parser.add_argument_group("mutual TLS (TOM-TLS-04): all four, or none for plain HTTP")
    tls.add_argument("--tls-cert", help="this host's certificate (PEM)")
    tls.add_argument("--tls-key", help="its private key (PEM)")
    tls.add_argument("--tls-client-ca", help="CA that signs the scrapers' certificates (PEM)")
    tls.add_argument(
        "--tls-allowed-client",
        action="append",
        default=[],
        metavar="NAME",
        help="a DNS name in a client certificate that may scrape; repeat for each scraper",
    )
    parser.add_argument("--once", action="store_true", help="print the metrics once to stdout and exit")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error("--port must be 0..65535")
    if args.min_interval < 0:
        parser.error("--min-interval must not be negative")
    given = [args.tls_cert, args.tls_key, args.tls_client_ca, args.tls_allowed_client]
    if any(given) and not all(given):
        parser.error("--tls-cert, --tls-key, --tls-client-ca and --tls-allowed-client go together")
    return args


def tls_settings(args: argparse.Namespace) -> TlsSettings | None:
    if not args.tls_cert:
        return None
    return TlsSettings(args.tls_cert, args.tls_key, args.tls_client_ca, frozenset(args.tls_allowed_client))


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
    tls = tls_settings(args)
    server = make_http_server(registry, args.listen_address, args.port, tls)
    # systemd stops the service with SIGTERM; leave serve_forever cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    host, port = server.server_address[:2]
    logging.getLogger("tomwerk_exporter").info(
        "listening on %s:%d, %s (state dir %s, checks at most every %g s)",
        host,
        port,
        f"HTTPS for {', '.join(sorted(tls.allowed_clients))}" if tls else "plain HTTP",
        args.state_dir,
        args.min_interval,
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
