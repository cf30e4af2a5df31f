"""`tomwerk audit` without the lab: its reading of ansible-runner's events, and bad input."""

from __future__ import annotations

from tomwerk import audit, catalogue, cli

TOMS = catalogue.load()


def ok(host: str, role: str, task: str, changed: bool, diff=None) -> dict:
    res = {"changed": changed, **({"diff": diff} if diff is not None else {})}
    return {"event": "runner_on_ok", "event_data": {"host": host, "role": role, "task": task, "res": res}}


def stats(**per_host: dict) -> dict:
    data: dict[str, dict] = {key: {} for key in audit.STAT_KEYS}
    for host, counts in per_host.items():
        for key, value in counts.items():
            data[key][host] = value
    return {"event": "playbook_on_stats", "event_data": data}


def test_a_changed_task_is_drift_of_the_toms_its_role_serves():
    collector = audit.Collector(audit.toms_by_role(TOMS))
    diff = {"before": "PasswordAuthentication yes\n", "after": "PasswordAuthentication no\n",
            "before_header": "/etc/ssh/sshd_config", "after_header": "sshd_config.j2"}  # fmt: skip
    line = collector.feed(ok("web1", "ssh_access", "Configure sshd", True, diff))
    assert collector.feed(ok("web1", "firewall", "Write the ruleset", False)) is None
    collector.feed(stats(web1={"ok": 10, "changed": 1}, mail1={"ok": 9}))

    assert line == "would change: web1  ssh_access : Configure sshd  (TOM-SSH-01, TOM-SSH-02, TOM-SSH-03)"
    (change,) = collector.changes
    assert "-PasswordAuthentication yes" in change["diff"] and "+PasswordAuthentication no" in change["diff"]
    assert collector.toms() == {"TOM-SSH-01": ["web1"], "TOM-SSH-02": ["web1"], "TOM-SSH-03": ["web1"]}
    assert collector.stats["web1"]["changed"] == 1 and collector.stats["mail1"]["changed"] == 0


def test_failures_count_but_ignored_errors_do_not():
    collector = audit.Collector(audit.toms_by_role(TOMS))
    failed = {"event": "runner_on_failed", "event_data": {"host": "web1", "role": "dnssec", "task": "Wait",
              "res": {"msg": "Command would have run if not in check mode"}}}  # fmt: skip
    ignored = {"event": "runner_on_failed", "event_data": {"host": "web1", "task": "x", "ignore_errors": True,
               "res": {"msg": "fine"}}}  # fmt: skip
    assert collector.feed(failed).startswith("FAILED: web1  dnssec : Wait: Command would have run")
    assert collector.feed(ignored) is None
    assert [f["toms"] for f in collector.failures] == [["TOM-DNS-01"]]


def test_summary_names_each_host_and_each_drifting_tom():
    result = {
        "hosts": {"web1": dict.fromkeys(("ok", "changed", "failed", "unreachable", "skipped"), 0) | {"changed": 2}},
        "toms": {"TOM-SSH-01": ["web1"]},
        "changes": [{}, {}],
    }
    assert audit.summary_lines(result) == [
        "tomwerk audit:   web1  changed=2 failed=0 unreachable=0 ok=0",
        "tomwerk audit: would change TOM-SSH-01 on web1",
        "tomwerk audit: 1 hosts, 1 would change, 0 failed; 2 task(s) would change something",
    ]


def test_a_broken_inventory_is_refused_before_ansible_runs(tmp_path, capsys):
    empty = tmp_path / "hosts.yml"
    empty.write_text("")
    assert cli.main(["audit", "--inventory", str(empty), "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().out.strip() == f"tomwerk audit: {empty}: the inventory names no hosts"
    assert not (tmp_path / "out").exists()


def test_a_limit_that_matches_no_host_is_refused(tmp_path, capsys):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    alpha:\n      ansible_connection: local\n")
    assert cli.main(["audit", "--inventory", str(inventory), "--limit", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "--limit nope matches no host" in capsys.readouterr().out
