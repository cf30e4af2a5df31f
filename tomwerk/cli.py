"""The tomwerk command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tomwerk import ROOT, __version__, catalogue, readme, roledoc, runbooks


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
        changed = roledoc.write_all(toms)
        print("role READMEs rewritten: " + (", ".join(changed) or "none (all current)"))
        from tomwerk import check_inventory

        print(f"{check_inventory.SITE_VALIDATION.relative_to(ROOT)}: "
              + ("rewritten" if check_inventory.write_site_validation() else "current"))  # fmt: skip
        written = runbooks.write(toms)
        print("runbooks rewritten: " + (", ".join(str(p.relative_to(ROOT)) for p in written) or "none (all current)"))
    return 0


def cmd_verify(args) -> int:
    from tomwerk.verify import verify

    hosts = [h for h in (args.hosts or "").split(",") if h] or None
    suites = args.suite or [str(ROOT / "tests" / "compliance")]
    run = verify(args.inventory, hosts=hosts, out=args.out, suite=suites, pytest_args=args.pytest_args, jobs=args.jobs)
    return run.exit_code


def cmd_audit(args) -> int:
    from tomwerk.audit import audit

    run = audit(args.inventory, limit=args.limit, tags=args.tags, out=args.out, playbook=args.playbook)
    return run.exit_code


def cmd_check_inventory(args) -> int:
    from tomwerk import check_inventory

    try:
        hosts, found = check_inventory.run(args.inventory, args.release, args.vault_password_file)
    except RuntimeError as exc:
        print(f"tomwerk check-inventory: {exc}", file=sys.stderr)
        return 2
    for problem in found:
        print(f"{problem.host}: {problem.task}: {problem.message}")
    bad = len({p.host for p in found})
    print(f"tomwerk check-inventory: {hosts} hosts, {bad} with bad input, {len(found)} problems")
    return 1 if found else 0


def cmd_report(args) -> int:
    from tomwerk.report import ReportError, write_reports

    try:
        paths = write_reports(args.result, lang=args.lang, formats=args.format.split(","), out=args.out, name=args.name)
    except ReportError as exc:
        print(f"tomwerk report: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def cmd_snapshot(args) -> int:
    from tomwerk import snapshot

    connection = {}
    for item in args.set:
        name, _, value = item.partition("=")
        connection[name] = {"true": True, "false": False}.get(value.lower(), value)
    print(f"wrote {snapshot.write(args.inventory, args.out, connection)}")
    return 0


def cmd_pack(args) -> int:
    from tomwerk import pack

    if args.host:
        import tomwerk_host  # the installed package: the collection's roles need no source tree

        package = Path(tomwerk_host.__file__).parent
        target = pack.pack_zipapp(package, args.out, "tomwerk_host.__main__:main")
    else:
        target = pack.pack(args.out)
    print(f"wrote {target}")
    return 0


def _inventory_command(sub, name: str, func, **kwargs) -> argparse.ArgumentParser:
    """The subcommand name, run by func, that works on the hosts of --inventory (verify, audit, check)."""
    verb = name.split("-")[0]
    parser = sub.add_parser(name, **kwargs)
    parser.add_argument("--inventory", required=True, help=f"Ansible inventory to {verb} (file or directory)")
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tomwerk", description="TOMs as code")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--project",
        help="the tomwerk project to work on: a checkout with toms.yml, roles and checks "
        "(default: $TOMWERK_PROJECT, this package's source tree, or the nearest above the working directory; "
        f"now {ROOT})",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cat = sub.add_parser("catalogue", help="the TOM catalogue (toms.yml)")
    cat.add_argument(
        "action",
        nargs="?",
        default="map",
        choices=["map", "sync-tests", "update-readme"],
        help="print the README's TOM map; fill each entry's tests from the pytest markers; "
        "rewrite the README map, the role READMEs and the alert runbooks",
    )
    cat.set_defaults(func=cmd_catalogue)

    ver = _inventory_command(
        sub,
        "verify",
        cmd_verify,
        help="run the compliance checks against an inventory; write OUT/<UTC time>/result.json",
        description="Exit 0: every check passed; 1: some check failed; 2: the run itself failed.",
    )
    ver.add_argument("--hosts", help="only these hosts, comma-separated (e.g. web1,mail1)")
    ver.add_argument("--out", default="results", help="where run directories go (default: results)")
    ver.add_argument(
        "--suite",
        action="append",
        help=f"a check suite; repeat for several (default: {ROOT / 'tests' / 'compliance'})",
    )
    ver.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="check this many hosts at a time (a pytest per job, each with its share of the hosts); checks "
        "across hosts and those marked serial run afterwards, alone (default: 1, everything in order)",
    )
    ver.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --  (e.g. -- -k ssh)")

    aud = _inventory_command(
        sub,
        "audit",
        cmd_audit,
        help="what a converge would change, in check mode (--check --diff); changes nothing",
        description="Exit 0: nothing would change; 1: drift (a converge would change something); "
        "2: the audit failed (a task failed, a host unreachable, bad input).",
    )
    aud.add_argument("--limit", help="only these hosts or groups (Ansible pattern, e.g. web1,mail1)")
    aud.add_argument("--tags", help="only tasks with these tags")
    aud.add_argument("--out", default="results", help="where the audit directory goes (default: results)")
    aud.add_argument("--playbook", default=str(ROOT / "playbooks" / "site.yml"), help="default: %(default)s")

    chk = _inventory_command(
        sub,
        "check-inventory",
        cmd_check_inventory,
        help="run every role's input checks for every host of an inventory; contacts no host, changes nothing",
        description="Exit 0: the input is good; 1: bad input (one line per problem, naming the variable); "
        "2: the inventory or the run itself failed.",
    )
    chk.add_argument(
        "--release", type=int, choices=(12, 13), default=13,
        help="Debian release the release-aware checks assume, unless a host sets tomwerk_debian_release "
        "(default: %(default)s)",
    )  # fmt: skip
    chk.add_argument("--vault-password-file", help="for vault-encrypted variables (or ANSIBLE_VAULT_PASSWORD_FILE)")

    rep = sub.add_parser("report", help="turn a verification result into an evidence report (HTML, Markdown, PDF)")
    rep.add_argument(
        "--result", default="results/latest/result.json", help="result.json of a run (default: %(default)s)"
    )
    rep.add_argument("--lang", choices=["de", "en"], default="de", help="report language (default: de)")
    rep.add_argument(
        "--format",
        default="html,md",
        help="comma-separated: html, md, pdf, png (pdf and png print the HTML with headless Chromium; "
        "png is the first screen) (default: %(default)s)",
    )
    rep.add_argument("--out", help="output directory (default: the result's directory)")
    rep.add_argument("--name", help="file name without extension (default: report.<lang>)")
    rep.set_defaults(func=cmd_report)

    snap = sub.add_parser(
        "snapshot",
        help="render an inventory into one static YAML inventory (for the admin host's scheduled verification)",
    )
    snap.add_argument("--inventory", required=True, help="the controller's inventory")
    snap.add_argument("--out", required=True, help="file to write")
    snap.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE",
        help="connection variable for all hosts, e.g. ansible_user=tomwerk-verify (repeatable; true/false: bools)",
    )  # fmt: skip
    snap.set_defaults(func=cmd_snapshot)

    pk = sub.add_parser("pack", help="reproducible tarball of the check suite, or zipapp of the host tools")
    pk.add_argument("--out", required=True)
    pk.add_argument(
        "--host", action="store_true", help="every host tool as one zipapp (tomwerk_host; run as tomwerk-<tool> links)"
    )
    pk.set_defaults(func=cmd_pack)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tomwerk.inventory import InventoryError

    args = build_parser().parse_args(argv)
    if args.project and Path(args.project).resolve() != ROOT:
        # The project decides module-level paths at import: start again with it.
        os.environ["TOMWERK_PROJECT"] = str(Path(args.project).resolve())
        rest = list(sys.argv[1:] if argv is None else argv)
        os.execv(sys.executable, [sys.executable, "-m", "tomwerk", *rest])  # noqa: S606 (our own interpreter)
    if not (ROOT / "toms.yml").is_file():
        print(
            f"tomwerk {args.command}: no tomwerk project at {ROOT} (no toms.yml): "
            "run it inside a tomwerk checkout, or pass --project DIR",
            file=sys.stderr,
        )
        return 2
    try:
        return args.func(args)
    except (InventoryError, catalogue.CatalogueError) as exc:
        # Bad input the user can fix: one line and exit 2, never a traceback.
        print(f"tomwerk {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
