"""The report of a chaos run: a terminal summary and one self-contained HTML page (inline CSS and
SVG, nothing loaded from the network), plus ``result.json`` and ``timeline.jsonl`` beside it and,
when Chromium is installed, a PNG screenshot of the page.

The page: a verdict, the invariants and expectations (held / violated, with evidence), a table of
recovery times per node fault against the profile's floor (grace; grace + toleration; both minus
one heartbeat interval), and a chart
with one lane per node — the number of live pods on it over time as a filled step line, the
node's NotReady stretches shaded, detection (◆), taint (▲) and eviction (✕) marks — under a row of
scenario steps, with every fault drawn as a red line across all lanes.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kplane.chaos.invariants import Recovery, Result
from kplane.chaos.record import active, replay
from kplane.chaos.runner import RunResult, write_timeline
from kplane.cluster.spec import PROFILES

LABEL_W, PLOT_W, LANE_H, TOP = 150, 900, 64, 56
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _mark(held: bool | None) -> str:
    return {True: "held", False: "VIOLATED", None: "skipped"}[held]


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}s"


def floor_text(profile: str) -> tuple[str, str]:
    p = PROFILES.get(profile)
    if p is None:
        return "-", "-"
    # counted from the node's last heartbeat, which came up to one heartbeat interval before the fault
    return (f"{p.node_monitor_grace - p.heartbeat:.0f}s",
            f"{p.node_monitor_grace + p.toleration - p.heartbeat:.0f}s")


def terminal_summary(r: RunResult) -> list[str]:
    lines = [f"scenario {r.scenario.name}: {'PASSED' if r.ok else 'FAILED'} in {r.end - r.start:.1f}s "
             f"(profile {r.profile})"]
    failed = [s for s in r.steps if not s.ok]
    for s in failed:
        lines.append(f"  step [{s.index}] {s.title} failed: {s.detail}")
    lines.append("invariants:")
    for res in [*r.invariants, *r.expectations]:
        lines.append(f"  {_mark(res.held):<9} {res.name}: {res.summary}")
        if res.held is False:
            lines += [f"              {e}" for e in res.evidence[:8]]
    if r.recoveries:
        grace, floor = floor_text(r.profile)
        lines.append(f"recovery (seconds after the fault; floor: detection {grace}, eviction {floor}):")
        lines.append(f"  {'fault':<12} {'node':<10} {'detect':>7} {'taint':>7} {'evict 1st':>9} {'evict last':>10} "
                     f"{'replaced':>9} {'pods':>6}")
        for rec in r.recoveries:
            lines.append(f"  {rec.fault:<12} {rec.node:<10} {_s(rec.detection):>7} {_s(rec.taint):>7} "
                         f"{_s(rec.eviction_first):>9} {_s(rec.eviction_last):>10} {_s(rec.replacement_running):>9} "
                         f"{rec.evicted}/{rec.pods:<4}")
    for n in r.notes:
        lines.append(f"note: {n}")
    return lines


def _node_series(r: RunResult) -> dict[str, list[tuple[float, int, str]]]:
    """Per node: (time, live pods of the scenario on it, Ready status) at every change."""
    out: dict[str, list[tuple[float, int, str]]] = {}
    for e, state in replay(r.timeline):
        if e.kind != "watch" or e.resource not in ("pods", "nodes"):
            continue
        nodes = [e.name] if e.resource == "nodes" else [e.obj.get("node", "")]
        for node in nodes:
            if not node or (state.node(node) is None and node not in out):
                continue
            n = sum(1 for ns, _, p in state.pods() if ns == r.scenario.namespace and p.get("node") == node and active(p))
            ready = (state.node(node) or {}).get("ready", "Unknown")
            series = out.setdefault(node, [])
            if not series or series[-1][1:] != (n, ready):
                series.append((e.t, n, ready))
    return out


def render_html(r: RunResult) -> str:
    esc = html.escape
    t0 = r.start
    t1 = max(r.end, t0 + 1.0)
    span = t1 - t0
    scale = PLOT_W / span

    def x(t: float) -> float:
        return round(LABEL_W + (t - t0) * scale, 1)

    series = _node_series(r)
    nodes = sorted(series, key=lambda n: (n.startswith("fake-"), len(n), n))
    if len(nodes) > 40:  # fake nodes: keep the chart readable
        nodes = nodes[:40]
    height = TOP + LANE_H * max(len(nodes), 1) + 24
    peak = max((c for s in series.values() for _, c, _ in s), default=1) or 1
    parts: list[str] = []
    # time axis
    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600) if s * scale >= 70), 600)
    k = 0
    while k * step <= span and k < 400:
        px = x(t0 + k * step)
        parts.append(f'<line class="tick" x1="{px}" y1="{TOP - 8}" x2="{px}" y2="{height - 20}"/>'
                     f'<text class="tl" x="{px + 2}" y="{height - 6}">+{k * step}s</text>')
        k += 1
    # steps row
    for s in r.steps:
        w = max(x(s.t1 or s.t0) - x(s.t0), 2)
        cls = "step" if s.ok else "step bad"
        tip = f"[{s.index}] {s.title} (+{s.t0 - t0:.1f}s … +{(s.t1 or s.t0) - t0:.1f}s){': ' + s.detail if s.detail else ''}"
        parts.append(f'<rect class="{cls}" x="{x(s.t0)}" y="8" width="{w}" height="16" rx="3"><title>{esc(tip)}</title></rect>')
        if w > 40:
            parts.append(f'<text class="stl" x="{x(s.t0) + 3}" y="20">{esc(s.title[: int(w / 6)])}</text>')
    recs: dict[str, list[Recovery]] = {}
    for rec in r.recoveries:
        recs.setdefault(rec.node, []).append(rec)
    for i, node in enumerate(nodes):
        y = TOP + i * LANE_H
        base = y + LANE_H - 8
        parts.append(f'<rect x="0" y="{y}" width="{LABEL_W + PLOT_W + 20}" height="{LANE_H}" '
                     f'fill="{"#f8f9fa" if i % 2 else "#ffffff"}"/>')
        pts = series[node]
        # NotReady stretches
        for j, (ts, _, ready) in enumerate(pts):
            te = pts[j + 1][0] if j + 1 < len(pts) else t1
            if ready != "True":
                parts.append(f'<rect class="down" x="{x(ts)}" y="{y + 2}" width="{max(x(te) - x(ts), 1)}" '
                             f'height="{LANE_H - 4}"><title>{esc(node)} Ready={esc(ready)} from +{ts - t0:.1f}s</title></rect>')
        path = [f"M{x(pts[0][0])},{base}"]
        for j, (ts, count, _) in enumerate(pts):
            yy = round(base - (LANE_H - 20) * count / peak, 1)
            te = pts[j + 1][0] if j + 1 < len(pts) else t1
            path.append(f"L{x(ts)},{yy} L{x(te)},{yy}")
        path.append(f"L{x(t1)},{base} Z")
        parts.append(f'<path class="pods" d="{" ".join(path)}"/>')
        last = pts[-1][1]
        parts.append(f'<text class="lane" x="8" y="{y + 24}">{esc(node)}</text>'
                     f'<text class="sub" x="8" y="{y + 40}">{last} pod{"s" if last != 1 else ""} at the end</text>')
        for rec in recs.get(node, []):
            for label, v, shape in (("detected", rec.detection, "diamond"), ("tainted", rec.taint, "tri"),
                                    ("first eviction", rec.eviction_first, "x"), ("last eviction", rec.eviction_last, "x"),
                                    ("replacements Running", rec.replacement_running, "dot")):
                if v is None:
                    continue
                px, py = x(rec.t + v), y + 12
                tip = esc(f"{node}: {label} {v:.1f}s after {rec.fault}")
                if shape == "diamond":
                    parts.append(f'<path class="m det" d="M{px},{py - 6} l6,6 l-6,6 l-6,-6 z"><title>{tip}</title></path>')
                elif shape == "tri":
                    parts.append(f'<path class="m taint" d="M{px},{py - 6} l6,11 l-12,0 z"><title>{tip}</title></path>')
                elif shape == "x":
                    parts.append(f'<path class="m ev" d="M{px - 5},{py - 5} l10,10 m0,-10 l-10,10"><title>{tip}</title></path>')
                else:
                    parts.append(f'<circle class="m rep" cx="{px}" cy="{py}" r="5"><title>{tip}</title></circle>')
    for f in r.faults:
        px = x(f.time)
        tip = esc(f"{f.fault} {f.target} at +{f.time - t0:.1f}s (revision {f.revision}): {f.detail}")
        parts.append(f'<line class="fault" x1="{px}" y1="{TOP - 22}" x2="{px}" y2="{height - 20}"><title>{tip}</title></line>'
                     f'<text class="fl" x="{px + 3}" y="{TOP - 12}">{esc(f.fault)} {esc(f.target)}</text>')
    chart = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{LABEL_W + PLOT_W + 20}" height="{height}">'
             + "".join(parts) + "</svg>")
    grace, floor = floor_text(r.profile)

    def result_rows(results: list[Result]) -> str:
        rows = []
        for res in results:
            ev = "".join(f"<li>{esc(e)}</li>" for e in res.evidence[:12])
            rows.append(f'<tr class="{_mark(res.held).lower()}"><td class="st">{_mark(res.held)}</td>'
                        f"<td><b>{esc(res.name)}</b></td><td>{esc(res.summary)}"
                        f"{'<ul>' + ev + '</ul>' if ev else ''}</td></tr>")
        return "".join(rows)

    rec_rows = "".join(
        f"<tr><td>{esc(rec.fault)}</td><td>{esc(rec.node)}</td><td>+{rec.t - t0:.1f}s</td><td>{_s(rec.detection)}</td>"
        f"<td>{_s(rec.taint)}</td><td>{_s(rec.eviction_first)}</td><td>{_s(rec.eviction_last)}</td>"
        f"<td>{_s(rec.replacement_running)}</td><td>{rec.evicted}/{rec.pods}</td><td>{rec.replaced}</td></tr>"
        for rec in r.recoveries) or '<tr><td colspan="10">no node faults</td></tr>'
    failed_steps = "".join(f"<li>step [{s.index}] {esc(s.title)}: {esc(s.detail)}</li>" for s in r.steps if not s.ok)
    notes = "".join(f"<li>{esc(n)}</li>" for n in r.notes)
    return _PAGE.format(
        title=esc(f"chaos: {r.scenario.name}"), name=esc(r.scenario.name), desc=esc(r.scenario.description),
        verdict="PASSED" if r.ok else "FAILED", vclass="pass" if r.ok else "fail",
        meta=esc(f"profile {r.profile} · namespace {r.scenario.namespace} · {len(r.faults)} fault(s) · "
                 f"{len(r.timeline.entries)} timeline entries · {span:.1f}s"),
        failed=f"<ul class='bad'>{failed_steps}</ul>" if failed_steps else "",
        invariants=result_rows(r.invariants), expectations=result_rows(r.expectations) or
        '<tr><td colspan="3">none</td></tr>', recoveries=rec_rows, grace=grace, floor=floor, chart=chart,
        notes=f"<h2>Notes</h2><ul>{notes}</ul>" if notes else "")


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font:13px system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#202124;max-width:1120px}}
h1{{font-size:20px;margin:0 0 4px}} h2{{font-size:15px;margin:18px 0 6px}}
.sub{{color:#5f6368;margin-bottom:8px}}
.verdict{{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff;margin-left:8px;font-size:13px}}
.pass{{background:#1e8e3e}} .fail{{background:#d93025}}
table{{border-collapse:collapse;width:100%}} td,th{{padding:4px 8px;border-bottom:1px solid #eceff1;text-align:left;vertical-align:top}}
th{{color:#5f6368;font-weight:500}} tr.violated td.st{{color:#d93025;font-weight:700}} tr.held td.st{{color:#1e8e3e;font-weight:600}}
tr.skipped td.st{{color:#9aa0a6}} ul{{margin:4px 0 0 16px;padding:0}} ul.bad{{color:#d93025}}
.wrap{{overflow-x:auto;border:1px solid #dadce0;border-radius:6px;margin-top:6px}}
svg text{{font:11px system-ui,sans-serif;fill:#202124}} svg text.lane{{font-weight:600;font-size:12px}}
svg text.sub,svg text.tl{{fill:#5f6368;font-size:10px}} svg line.tick{{stroke:#eceff1}}
svg path.pods{{fill:#8ab4f8;fill-opacity:.55;stroke:#1a73e8;stroke-width:1.5}}
svg rect.down{{fill:#fce8e6}} svg line.fault{{stroke:#d93025;stroke-width:2;stroke-dasharray:4 3}}
svg text.fl{{fill:#d93025;font-weight:600}} svg rect.step{{fill:#e8f0fe;stroke:#8ab4f8}} svg rect.step.bad{{fill:#fce8e6;stroke:#d93025}}
svg text.stl{{font-size:10px}} svg .det{{fill:#f9ab00;stroke:#b06000}} svg .taint{{fill:#e8710a}}
svg .ev{{stroke:#d93025;stroke-width:2.5;fill:none}} svg .rep{{fill:#1e8e3e}}
.legend span{{margin-right:14px}}
</style></head><body>
<h1>{name}<span class="verdict {vclass}">{verdict}</span></h1>
<div class="sub">{desc}</div><div class="sub">{meta}</div>
{failed}
<h2>Invariants</h2><table>{invariants}</table>
<h2>Expectations</h2><table>{expectations}</table>
<h2>Recovery per node fault</h2>
<div class="sub">seconds after the fault; the earliest the profile allows (its waits count from the node's last
heartbeat, up to one heartbeat interval before the fault): detection {grace} (grace period), eviction {floor}
(grace + toleration)</div>
<table><tr><th>fault</th><th>node</th><th>at</th><th>detected</th><th>tainted</th><th>first evicted</th>
<th>last evicted</th><th>replacements Running</th><th>evicted/pods</th><th>replaced</th></tr>{recoveries}</table>
<h2>Timeline</h2>
<div class="legend sub"><span>▇ live pods per node</span><span style="color:#d93025">┆ fault</span>
<span>◆ detected</span><span>▲ tainted</span><span>✕ evicted (first, last)</span><span>● replacements Running</span>
<span style="background:#fce8e6">&nbsp;node not Ready&nbsp;</span></div>
<div class="wrap">{chart}</div>
{notes}
</body></html>
"""


def find_chromium() -> str | None:
    for name in CHROMIUM:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html_path: Path, png_path: Path, *, width: int = 1160, height: int = 1000) -> str | None:
    """A PNG of the page through headless Chromium; returns why not when it cannot."""
    chromium = find_chromium()
    if chromium is None:
        return "no chromium on PATH (apt-get install chromium) for a screenshot"
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--hide-scrollbars", f"--window-size={width},{height}",
           f"--screenshot={png_path}", html_path.absolute().as_uri()]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"chromium failed: {e}"
    if proc.returncode != 0 or not png_path.exists():
        return f"chromium exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}"
    return None


def write_report(r: RunResult, out_dir: Path, *, png: bool = True) -> dict[str, Any]:
    """report.html, result.json, timeline.jsonl (and report.png) under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = out_dir / "report.html"
    page.write_text(render_html(r), encoding="utf-8")
    (out_dir / "result.json").write_text(json.dumps(r.to_json(), indent=2) + "\n", encoding="utf-8")
    write_timeline(r, out_dir / "timeline.jsonl")
    written: dict[str, Any] = {"html": str(page)}
    if png:
        lanes = min(40, len({e.name for e in r.timeline.entries if e.resource == "nodes"}))
        rows = len(r.invariants) + len(r.expectations) + len(r.recoveries)
        why = screenshot(page, out_dir / "report.png", height=min(4000, 760 + 34 * rows + LANE_H * lanes))
        if why is None:
            written["png"] = str(out_dir / "report.png")
        else:
            written["png_skipped"] = why
    return written
