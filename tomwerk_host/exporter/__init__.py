"""tomwerk exporter: every TOM of this host as Prometheus metrics.

Runs on each server as root (it reads /etc/shadow and the live sshd and
nftables configuration). See __main__.py for the CLI.
"""

from tomwerk_host import __version__

__all__ = ["__version__"]
