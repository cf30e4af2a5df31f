#!/usr/bin/env python3
"""Print the failed and errored tests of a JUnit file, one line each.

CI shows only the tail of a long Molecule run; this puts the names of the
failing checks (and the first line of why) at the very end of the log.
"""

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def main(path: str) -> int:
    junit = Path(path)
    if not junit.exists():
        print(f"no JUnit file at {junit}: the verify step did not get to run pytest")
        return 0
    bad = []
    # Our own pytest wrote this file a moment ago: trusted input.
    for case in ET.parse(junit).iter("testcase"):  # noqa: S314
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                why = (node.get("message") or node.text or "").strip().splitlines()
                name = f"{case.get('classname')}::{case.get('name')}"
                bad.append(f"{kind.upper():7} {name}: {why[0][:300] if why else ''}")
    print(f"{len(bad)} failing lab checks in {junit}:")
    for line in bad:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "results/lab-junit.xml"))
