"""The tomwerk command line."""

from __future__ import annotations

import argparse
import sys

from tomwerk import ROOT, catalogue, readme


def cmd_catalogue(args) -> int:
    toms = catalogue.load()
    text = readme.tom_map(toms)
    if args.action == "map":
        print(text)
    elif args.action == "sync-tests":
        changed = catalogue.sync_tests()
        print("tests lists updated for: " + (", ".join(changed) or "nothing"))
    elif args.action == "update-readme":
        path = ROOT / "README.md"
        path.write_text(readme.replace_map(path.read_text(encoding="utf-8"), text), encoding="utf-8")
        print(f"updated the TOM map in {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tomwerk", description="TOMs as code")
    sub = parser.add_subparsers(dest="command", required=True)
    cat = sub.add_parser("catalogue", help="the TOM catalogue (toms.yml)")
    cat.add_argument(
        "action",
        choices=["map", "sync-tests", "update-readme"],
        help="print the README's TOM map; fill each entry's tests from the pytest markers; rewrite the README map",
    )
    cat.set_defaults(func=cmd_catalogue)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
