"""tomwerk exporter: every TOM of this host as Prometheus metrics.

Runs on each server as root (it reads /etc/shadow and the live sshd and
nftables configuration) with only Python 3.11's standard library and
Debian 12's python3-prometheus-client (0.16). See __main__.py for the CLI.
"""

__version__ = "0.1.0"
