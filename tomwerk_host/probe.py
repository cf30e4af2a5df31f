"""tomwerk-probe [--state-dir DIR] [--tom ID ...]: this host's TOMs, each measured once, as JSON.

The exporter's collectors, run now without its cache. The exporter renders
the same measurement as metrics, the compliance checks run this command on
the host and assert on its answer, and the evidence report shows its reasons
and figures: one measurement per TOM, read three ways.

Exit status: 0 when every TOM asked for holds, 1 when one does not or when
nothing (or not every asked TOM) was measured, 2 on bad arguments. The
answer is on stdout in both of the first two cases.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from . import __version__
from .exporter.collectors import all_collectors
from .exporter.core import DEFAULT_STATE_DIR, TOM_ID, TomExporter


def measure(exporter: TomExporter, only: frozenset[str] = frozenset()) -> dict:
    """{"toms": {id: {compliant, reasons, collectors, observed}}, "collectors": {name: {active, error, ...}}}.

    observed: the figures (name, labels, value) of that TOM, as its collector filed them (Report.gauge).
    """
    toms: dict[str, dict] = {}
    collectors: dict[str, dict] = {}
    for collector, outcome in exporter.run_once():
        collectors[collector.name] = {
            "active": outcome.active,
            "error": outcome.error,
            "duration_seconds": round(outcome.duration, 3),
        }
        for tom, reasons in outcome.reasons.items():
            if only and tom not in only:
                continue
            # Should two collectors ever decide one TOM, it holds only if both say so (as in the metrics).
            entry = toms.setdefault(tom, {"compliant": True, "reasons": [], "collectors": [], "observed": []})
            entry["compliant"] = entry["compliant"] and not reasons
            entry["reasons"] += reasons
            entry["collectors"].append(collector.name)
            # A TOM's figures only; one that names no TOM is of every TOM of its collector.
            entry["observed"] += [
                {"name": s.name, "labels": dict(s.labels), "value": s.value}
                for s in outcome.samples
                if s.tom in ("", tom)
            ]
    return {"version": __version__, "toms": dict(sorted(toms.items())), "collectors": collectors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tomwerk-probe", description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="the roles' state files (default: %(default)s)")
    parser.add_argument("--tom", action="append", default=[], metavar="ID", help="only this TOM; repeat for several")
    args = parser.parse_args(argv)
    bad = [t for t in args.tom if not TOM_ID.match(t)]
    if bad:
        parser.error(f"--tom {bad[0]!r} is not a TOM id like TOM-SSH-01")
    # The reasons travel in the answer; stderr keeps only what breaks a check.
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(levelname)s %(message)s")
    result = measure(TomExporter(all_collectors(), state_dir=args.state_dir), frozenset(args.tom))
    json.dump(result, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")
    # Nothing measured (a wrong --state-dir, an asked TOM no collector decides) is no proof.
    if not result["toms"] or any(t not in result["toms"] for t in args.tom):
        return 1
    return 0 if all(entry["compliant"] for entry in result["toms"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
