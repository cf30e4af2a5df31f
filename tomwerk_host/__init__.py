"""tomwerk's host side: every program that runs on a managed server, in one package.

Built into one zipapp (`tomwerk pack --host`) and installed by the role
tomwerk_host; each tool is a command name linked to it (see __main__.py).
Runs on Debian 12's Python 3.11 and Debian 13's 3.13 with the standard library
and Debian's python3-* packages only (the exporter needs python3-prometheus-client).
"""

__version__ = "0.1.0"
