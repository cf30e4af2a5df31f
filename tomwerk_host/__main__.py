"""One entry point for every host tool, chosen by the command's name or the first argument.

tomwerk-backup run ...                 (a link named tomwerk-<tool> to the zipapp)
python3 tomwerk-host.pyz backup run ...
python3 -m tomwerk_host backup run ...
"""

from __future__ import annotations

import importlib
import os
import sys

# tool -> module whose main(argv) runs it. Imported on demand: only the
# exporter needs python3-prometheus-client, the others the standard library.
TOOLS = {
    "access-log": "tomwerk_host.access_journal",
    "anonymize": "tomwerk_host.anonymize",
    "antivirus-scan": "tomwerk_host.antivirus_scan",
    "alert-sink": "tomwerk_host.alert_sink",
    "backup": "tomwerk_host.backup",
    "exporter": "tomwerk_host.exporter.__main__",
    "log-privacy": "tomwerk_host.log_privacy",
    "probe": "tomwerk_host.probe",
    "retention": "tomwerk_host.retention",
    "updates-status": "tomwerk_host.updates_status",
}
PREFIX = "tomwerk-"


def usage() -> str:
    return f"usage: tomwerk-<tool> ARGS, or tomwerk-host TOOL ARGS; tools: {', '.join(sorted(TOOLS))}"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    name = os.path.basename(argv[0])
    tool = name[len(PREFIX) :] if name.startswith(PREFIX) else ""
    if tool not in TOOLS:
        if len(argv) < 2 or argv[1] in ("-h", "--help"):
            print(usage(), file=sys.stderr if len(argv) < 2 else sys.stdout)
            return 2 if len(argv) < 2 else 0
        if argv[1] == "--version":
            from tomwerk_host import __version__

            print(__version__)
            return 0
        tool, argv = argv[1], argv[1:]
        if tool not in TOOLS:
            print(f"tomwerk-host: unknown tool {tool!r}; {usage()}", file=sys.stderr)
            return 2
    sys.argv = [PREFIX + tool, *argv[1:]]
    return importlib.import_module(TOOLS[tool]).main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
