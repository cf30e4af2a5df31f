"""lab/phase-times.py: the end of a CI log says what each Molecule step cost."""

from __future__ import annotations

import importlib.util

from tomwerk import ROOT

SPEC = importlib.util.spec_from_file_location("phase_times", ROOT / "lab" / "phase-times.py")
PHASES = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(PHASES)

# As Molecule prints them: colours, and the Ansible output in a box.
LOG = """\x1b[36mINFO    \x1b[0m \x1b[32mlab\x1b[0m ➜ \x1b[33mconverge\x1b[0m: \x1b[36mExecuting\x1b[0m
  \x1b[2m│\x1b[0m ROLES RECAP
  \x1b[2m│\x1b[0m   ********************************************************************
  \x1b[2m│\x1b[0m ssh_access --------------------------------------------------------------
  \x1b[2m│\x1b[0m   71.24s
  \x1b[2m│\x1b[0m antivirus ---------------------------------------------------------------
  \x1b[2m│\x1b[0m   204.50s
  \x1b[2m│\x1b[0m total -------------------------------------------------------------------
  \x1b[2m│\x1b[0m   275.74s
\x1b[36mINFO    \x1b[0m \x1b[32mlab\x1b[0m ➜ \x1b[33mconverge\x1b[0m: \x1b[32mExecuted: Successful\x1b[0m
\x1b[36mINFO    \x1b[0m \x1b[32mlab\x1b[0m ➜ \x1b[33midempotence\x1b[0m: \x1b[36mExecuting\x1b[0m
"""


def test_steps_roles_and_a_cut_off_step_are_summed_up():
    tally = PHASES.Tally()
    for line in LOG.splitlines(keepends=True):
        tally.feed(line)
    summary = tally.summary().splitlines()
    assert [s.split()[0] for s in summary[1:3]] == ["converge", "idempotence"]
    assert "still running" not in summary[1]
    assert "still running" in summary[2]
    assert summary[3] == "  costliest roles in converge: antivirus 3m24s, ssh_access 1m11s"
