"""The chaos report: terminal summary and the self-contained HTML page, from a recorded run."""

from __future__ import annotations

import json
from pathlib import Path

from test_chaos_invariants import NS, node_loss

from kplane.chaos import invariants as inv
from kplane.chaos.faults import FaultRecord
from kplane.chaos.report import render_html, terminal_summary, write_report
from kplane.chaos.runner import RunResult, StepOutcome
from kplane.chaos.scenario import parse_scenario


def recorded(ok: bool = True) -> RunResult:
    b = node_loss(replaced_at=22.0)
    sc = parse_scenario(f"name: node-loss\nnamespace: {NS}\ndescription: a <b>node</b> dies\nsteps:\n- sleep: 1s\n")
    r = RunResult(scenario=sc, profile="fast", start=0.0, end=30.0, timeline=b.tl)
    r.steps = [StepOutcome(0, "kill-node node-1", "kill-node", 10.0, 10.2, ok=ok, detail="" if ok else "boom")]
    r.faults = [FaultRecord(10.0, "kill-node", "node-1", 104, "SIGKILL kubelet (pid 1)", [1])]
    r.invariants = inv.check_all(b.tl, NS, converge=30, restore=30, settle=5, enabled=("replicas-restored",
                                                                                     "no-duplicate-pods"))
    r.recoveries = inv.recovery_times(b.tl)
    return r


def test_terminal_summary_lists_invariants_and_recovery() -> None:
    """PASSED/FAILED, one line per invariant, and the recovery row against the profile's floor."""
    lines = terminal_summary(recorded())
    assert lines[0] == "scenario node-loss: PASSED in 30.0s (profile fast)"
    assert any(line.startswith("  held      replicas-restored:") for line in lines)
    assert "recovery (seconds after the fault; floor: detection 4s, eviction 9s):" in lines
    row = next(line for line in lines if line.startswith("  kill-node"))
    assert row.split()[:7] == ["kill-node", "node-1", "5.0s", "5.5s", "10.5s", "10.5s", "12.0s"]
    failed = terminal_summary(recorded(ok=False))
    assert failed[0].startswith("scenario node-loss: FAILED") and "  step [0] kill-node node-1 failed: boom" in failed


def test_html_is_self_contained_with_lanes_and_markers() -> None:
    """The page escapes text, loads nothing from the network, and draws node lanes, the fault,
    detection/taint/eviction marks and the recovery table."""
    page = render_html(recorded())
    assert "<b>node</b>" not in page and "a &lt;b&gt;node&lt;/b&gt; dies" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert page.count('<text class="lane"') == 3  # node-1..3
    assert 'class="fault"' in page and "kill-node node-1 at +10.0s (revision 104)" in page
    for what in ("detected 5.0s", "tainted 5.5s", "first eviction 10.5s", "replacements Running 12.0s"):
        assert f"node-1: {what} after kill-node" in page
    assert "<td>kill-node</td><td>node-1</td><td>+10.0s</td><td>5.0s</td><td>5.5s</td>" in page
    assert 'class="verdict pass"' in page


def test_write_report_files(tmp_path: Path) -> None:
    """report.html, result.json and timeline.jsonl are written; the timeline round-trips."""
    r = recorded()
    written = write_report(r, tmp_path, png=False)
    assert Path(written["html"]).read_text().startswith("<!DOCTYPE html>")
    doc = json.loads((tmp_path / "result.json").read_text())
    assert doc["ok"] is True and doc["grace"] == 5.0 and doc["recoveries"][0]["detection"] == 5.0
    lines = (tmp_path / "timeline.jsonl").read_text().splitlines()
    assert len(lines) == len(r.timeline.entries) and json.loads(lines[0])["kind"] == "watch"
