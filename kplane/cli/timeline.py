"""`kplane timeline`: the change stream drawn as one self-contained HTML page.

One lane per object (or per node, or per writer), time running left to right, every revision a
mark coloured by who wrote it; hovering a mark shows the revision, time, writer, verb and what
changed. Two kinds of lane tell more than their marks:

* a **Pod** lane is coloured by the pod's life — pending → scheduled → pulling → running →
  ready → terminating → deleted — read from the pod's own revisions (nodeName, containers
  running, the Ready condition, deletionTimestamp) and from its Events (Pulling, Started,
  BackOff, Killing: drawn as diamonds, warnings in red);
* a **Lease** lane is coloured by holder, so a leader-election hand-over between two schedulers
  (or a node lease going quiet) is a change of colour.

The page is static HTML with inline CSS, SVG and a little JavaScript (hover details and a zoom
slider that re-positions marks from their `data-t` attributes); it loads nothing from the
network and reads the same without JavaScript (native SVG `<title>` tooltips at the default zoom).

Data comes from the Changes RPC (`kplane events`' stream), read once; only a summary line and a
derived state per change are kept, not objects. `--max-lanes` and `--max-marks` bound the page.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from kplane.cli import changes as render

POD_STATES = ("pending", "scheduled", "pulling", "running", "ready", "backoff", "terminating", "succeeded",
              "failed")
STATE_COLORS = {"pending": "#c9ccd1", "scheduled": "#8ab4f8", "pulling": "#b39ddb", "running": "#81c995",
                "ready": "#1e8e3e", "backoff": "#f28b82", "terminating": "#fbbc04", "succeeded": "#5f6368",
                "failed": "#d93025"}
PALETTE = ("#1a73e8", "#e8710a", "#9334e6", "#12b5cb", "#d01884", "#188038", "#a142f4", "#f9ab00", "#5f6368",
           "#c5221f", "#0b8043", "#185abc")
EVENT_STATES = {"Pulling": "pulling", "Started": "running", "BackOff": "backoff", "Killing": "terminating"}


@dataclass(slots=True)
class Mark:
    rev: int
    t: float
    type: str  # ADDED / MODIFIED / DELETED / EVENT
    writer: str
    verb: str
    summary: str
    label: str = ""
    warning: bool = False


@dataclass
class Lane:
    key: str
    title: str
    kind: str
    marks: list[Mark] = field(default_factory=list)
    # (time, state) transitions: pod phases or lease holders
    states: list[tuple[float, str]] = field(default_factory=list)
    start: float | None = None
    end: float | None = None  # deletion time


def pod_state(obj: dict[str, Any]) -> str:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if meta.get("deletionTimestamp"):
        return "terminating"
    phase = status.get("phase")
    if phase == "Succeeded":
        return "succeeded"
    if phase == "Failed":
        return "failed"
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or [] if isinstance(c, dict)}
    if conditions.get("Ready") == "True":
        return "ready"
    states = [cs.get("state") or {} for cs in status.get("containerStatuses") or [] if isinstance(cs, dict)]
    if any("waiting" in s and (s["waiting"] or {}).get("reason") in ("CrashLoopBackOff", "ImagePullBackOff",
                                                                      "ErrImagePull") for s in states):
        return "backoff"
    if phase == "Running" or any("running" in s for s in states):
        return "running"
    if spec.get("nodeName"):
        return "scheduled"
    return "pending"


class TimelineBuilder:
    """Folds changes (in revision order) into lanes."""

    def __init__(self, *, group_by: str = "object", target: tuple[str, str, str] | None = None,
                 max_lanes: int = 300, max_marks: int = 50_000) -> None:
        self.group_by = group_by
        self.target = target  # (kind, namespace, name): only this object and its events
        self.max_lanes = max_lanes
        self.max_marks = max_marks
        self.lanes: dict[str, Lane] = {}
        self.dropped_lanes = 0
        self.dropped_marks = 0
        self.marks = 0
        self.clock: float | None = None  # the latest writer time seen (for unattributed changes)
        self.last_t: float | None = None
        self.first_t: float | None = None
        self.first_rev = 0
        self.last_rev = 0
        self.writers: dict[str, str] = {}

    def writer_color(self, writer: str) -> str:
        if writer not in self.writers:
            self.writers[writer] = PALETTE[len(self.writers) % len(PALETTE)]
        return self.writers[writer]

    def _lane(self, key: str, title: str, kind: str) -> Lane | None:
        lane = self.lanes.get(key)
        if lane is None:
            if len(self.lanes) >= self.max_lanes:
                self.dropped_lanes += 1
                return None
            lane = self.lanes[key] = Lane(key, title, kind)
        return lane

    def add(self, *, rev: int, t: float | None, type: str, kind: str, namespace: str, name: str,
            obj: dict[str, Any], prev: dict[str, Any] | None, writer: str, verb: str) -> None:
        """One change. `t` None (not written through the API) takes the previous change's time."""
        if t is None:
            t = self.clock if self.clock is not None else 0.0
        self.clock = t
        where = f"{namespace}/{name}" if namespace else name
        if kind == "Event":
            self._event(rev, t, type, obj, writer, verb)
            return
        if self.target is not None and (kind, namespace, name) != self.target:
            return
        key, title, lane_kind, label = self._key(kind, namespace, name, where, obj, writer)
        lane = self._lane(key, title, lane_kind)
        if lane is None:
            return
        if lane.start is None:
            lane.start = t
        summary = render.summarize(type, prev, obj)
        self._mark(lane, Mark(rev, t, type, writer, verb, summary, label))
        if type == "DELETED":
            if self.group_by == "object":
                lane.end = t
            return
        if self.group_by != "object":
            return
        if kind == "Pod":
            state = pod_state(obj)
            if not lane.states or lane.states[-1][1] != state:
                lane.states.append((t, state))
        elif kind == "Lease":
            holder = str((obj.get("spec") or {}).get("holderIdentity") or "(none)")
            if not lane.states or lane.states[-1][1] != holder:
                lane.states.append((t, holder))

    def _key(self, kind: str, namespace: str, name: str, where: str, obj: dict[str, Any],
             writer: str) -> tuple[str, str, str, str]:
        if self.group_by == "writer":
            return f"writer:{writer}", writer, "Writer", f"{kind} {where}"
        if self.group_by == "node":
            node = ""
            if kind == "Pod":
                node = str((obj.get("spec") or {}).get("nodeName") or "(unscheduled)")
            elif kind == "Node" or (kind == "Lease" and namespace == "kube-node-lease"):
                node = name
            if node:
                return f"node:{node}", f"node {node}", "Node", f"{kind} {where}"
            return "control-plane", "control plane & other objects", "Other", f"{kind} {where}"
        return f"{kind}:{namespace}/{name}", f"{kind} {where}", kind, ""

    def _event(self, rev: int, t: float, type: str, obj: dict[str, Any], writer: str, verb: str) -> None:
        if type == "DELETED":
            return  # an Event expiring says nothing about its object
        involved = obj.get("involvedObject") or {}
        kind, name, ns = str(involved.get("kind") or ""), str(involved.get("name") or ""), \
            str(involved.get("namespace") or "")
        if self.target is not None and (kind, ns, name) != self.target:
            return
        where = f"{ns}/{name}" if ns else name
        if self.group_by == "object":
            key, title, lane_kind = f"{kind}:{ns}/{name}", f"{kind} {where}", kind
        else:
            key, title, lane_kind, _ = self._key(kind, ns, name, where, {}, writer)
            if self.group_by == "node" and kind == "Pod":
                # the pod's lane is its node's: find it among the lanes that already hold the pod
                lane_for_pod = next((lane.key for lane in self.lanes.values()
                                     if any(m.label == f"Pod {where}" for m in lane.marks[-50:])), None)
                key = lane_for_pod or "node:(unscheduled)"
                title = key.replace("node:", "node ")
        lane = self._lane(key, title, lane_kind)
        if lane is None:
            return
        if lane.start is None:
            lane.start = t
        reason = str(obj.get("reason") or "")
        summary = render.summarize("ADDED", None, obj)
        warning = obj.get("type") == "Warning"
        self._mark(lane, Mark(rev, t, "EVENT", writer, verb, summary, reason if self.group_by == "object"
                              else f"{kind} {where}: {reason}", warning))
        state = EVENT_STATES.get(reason)
        if self.group_by == "object" and kind == "Pod" and state is not None:
            current = lane.states[-1][1] if lane.states else "pending"
            # events refine the pod's own states, never step back from ready or terminating
            if current in ("pending", "scheduled", "pulling", "running", "backoff") and current != state:
                lane.states.append((t, state))

    def _mark(self, lane: Lane, mark: Mark) -> None:
        if self.marks >= self.max_marks:
            self.dropped_marks += 1
            return
        self.marks += 1
        self.writer_color(mark.writer)
        lane.marks.append(mark)
        if self.first_t is None:
            self.first_t, self.first_rev = mark.t, mark.rev
        self.last_t, self.last_rev = mark.t, mark.rev


# -- rendering -------------------------------------------------------------------------------------

LABEL_W = 300
LANE_H = 30
AXIS_H = 34
PLOT_W = 1400


def _fmt_clock(t: float) -> str:
    moment = datetime.fromtimestamp(t, UTC).astimezone()
    return moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _holder_color(holder: str, palette: dict[str, str]) -> str:
    if holder not in palette:
        palette[holder] = PALETTE[(len(palette) + 3) % len(PALETTE)] if holder != "(none)" else "#e0e0e0"
    return palette[holder]


def render_html(b: TimelineBuilder, *, title: str) -> str:
    t0 = b.first_t or 0.0
    t1 = max(b.last_t or t0, t0)
    span = max(t1 - t0, 1.0)
    scale = PLOT_W / span  # px per second at zoom 1
    lanes = sorted(b.lanes.values(), key=lambda lane: (lane.start if lane.start is not None else t0, lane.key))
    height = AXIS_H + LANE_H * max(len(lanes), 1) + 10
    holders: dict[str, str] = {}
    parts: list[str] = []

    def x(t: float) -> float:
        return round(LABEL_W + (t - t0) * scale, 2)

    def esc(text: str) -> str:
        return html.escape(text, quote=True)

    for i, lane in enumerate(lanes):
        y = AXIS_H + i * LANE_H
        mid = y + LANE_H / 2
        parts.append(f'<rect class="band" x="0" y="{y}" width="100%" height="{LANE_H}" '
                     f'fill="{"#f8f9fa" if i % 2 else "#ffffff"}"/>')
        parts.append(f'<text class="lane" x="8" y="{mid + 4}"><title>{esc(lane.title)}</title>'
                     f'{esc(lane.title[:42])}</text>')
        start = lane.start if lane.start is not None else t0
        end = lane.end if lane.end is not None else t1
        parts.append(f'<line class="life" data-t0="{start - t0}" data-t1="{end - t0}" x1="{x(start)}" y1="{mid}" '
                     f'x2="{x(end)}" y2="{mid}"/>')
        for j, (ts, state) in enumerate(lane.states):
            te = lane.states[j + 1][0] if j + 1 < len(lane.states) else end
            pod = lane.kind == "Pod"
            color = STATE_COLORS.get(state, "#c9ccd1") if pod else _holder_color(state, holders)
            what = state if pod else f"held by {state}"
            tip = f"{lane.title}: {what} from {_fmt_clock(ts)}"
            parts.append(f'<rect class="state" data-t0="{ts - t0}" data-t1="{te - t0}" x="{x(ts)}" y="{y + 7}" '
                         f'width="{max(x(te) - x(ts), 2)}" height="{LANE_H - 14}" rx="3" fill="{color}" '
                         f'fill-opacity="{1 if pod else 0.3}" data-tip="{esc(tip)}"><title>{esc(tip)}</title></rect>')
            if not pod and state != "(none)":
                parts.append(f'<text class="holder" data-t="{ts - t0}" x="{x(ts) + 4}" y="{mid + 4}">'
                             f'{esc(state[:40])}</text>')
        for m in lane.marks:
            tip = (f"revision {m.rev} · {_fmt_clock(m.t)}\n{m.type.lower() if m.type != 'EVENT' else 'event'}"
                   f"{' ' + m.label if m.label else ''}\nby {m.writer}{': ' + m.verb if m.verb else ''}\n{m.summary}")
            color = b.writers.get(m.writer, "#5f6368")
            attrs = f'data-t="{m.t - t0}" data-tip="{esc(tip)}"'
            if m.type == "EVENT":
                fill = "#d93025" if m.warning else "#ffffff"
                px = x(m.t)
                parts.append(f'<path class="mark event" {attrs} d="M{px},{mid - 7} l6,7 l-6,7 l-6,-7 z" '
                             f'fill="{fill}" stroke="{color}"><title>{esc(tip)}</title></path>')
            elif m.type == "DELETED":
                px = x(m.t)
                parts.append(f'<path class="mark del" {attrs} d="M{px - 6},{mid - 6} l12,12 m0,-12 l-12,12" '
                             f'stroke="{color}"><title>{esc(tip)}</title></path>')
            else:
                r = 6 if m.type == "ADDED" else 4
                parts.append(f'<circle class="mark" {attrs} cx="{x(m.t)}" cy="{mid}" r="{r}" fill="{color}">'
                             f'<title>{esc(tip)}</title></circle>')
    legend = []
    for writer, color in b.writers.items():
        legend.append(f'<span class="key"><i style="background:{color}"></i>{esc(writer)}</span>')
    states_legend = [f'<span class="key"><i class="sq" style="background:{c}"></i>{s}</span>'
                     for s, c in STATE_COLORS.items()]
    notes = []
    if b.dropped_lanes:
        notes.append(f"{b.dropped_lanes} changes in further lanes were left out (--max-lanes)")
    if b.dropped_marks:
        notes.append(f"{b.dropped_marks} marks were left out (--max-marks)")
    summary = (f"revisions {b.first_rev}–{b.last_rev} · {_fmt_clock(t0)} – {_fmt_clock(t1)} · {len(lanes)} lanes · "
               f"{b.marks} marks") if b.marks else "no changes in this range"
    data = json.dumps({"t0": t0, "span": span, "plotW": PLOT_W, "labelW": LABEL_W})
    return _PAGE.format(title=esc(title), summary=esc(summary), notes=esc("; ".join(notes)),
                        writers="".join(legend), states="".join(states_legend), height=height,
                        width=LABEL_W + PLOT_W + 40, body="\n".join(parts), data=data,
                        axis=_axis_svg(t0, span, scale))


def _axis_svg(t0: float, span: float, scale: float) -> str:
    step = next((s for s in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
                 if s * scale >= 90), 7200.0)
    out = []
    first = math.ceil(t0 / step) * step  # ticks on round times
    k = 0
    while first + k * step <= t0 + span + 1e-9 and k < 400:
        t = first + k * step
        px = round(LABEL_W + (t - t0) * scale, 2)
        out.append(f'<line class="tick" x1="{px}" y1="{AXIS_H - 6}" x2="{px}" y2="100%"/>'
                   f'<text class="ticklabel" x="{px + 3}" y="{AXIS_H - 12}">{_fmt_clock(t)}</text>')
        k += 1
    return "".join(out)


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font:13px system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#202124}}
h1{{font-size:18px;margin:0 0 4px}} .sub{{color:#5f6368;margin-bottom:8px}} .notes{{color:#b06000}}
.legend{{margin:6px 0;line-height:22px}} .key{{margin-right:14px;white-space:nowrap}}
.key i{{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px;vertical-align:middle}}
.key i.sq{{border-radius:2px}}
.wrap{{overflow-x:auto;border:1px solid #dadce0;border-radius:6px}}
svg text{{font:12px system-ui,sans-serif;fill:#202124}} svg text.lane{{font-weight:500}}
svg text.holder{{font-size:10px;fill:#202124}} svg text.ticklabel{{font-size:10px;fill:#5f6368}}
svg line.tick{{stroke:#eceff1}} svg line.life{{stroke:#9aa0a6;stroke-width:1.5}}
svg .mark{{cursor:pointer;stroke-width:1.5}} svg .mark:hover{{stroke:#000;stroke-width:2.5}}
svg path.del{{stroke-width:3;fill:none}}
#tip{{position:fixed;pointer-events:none;background:#202124;color:#fff;padding:6px 8px;border-radius:4px;
white-space:pre;font:12px ui-monospace,monospace;display:none;max-width:640px;z-index:9}}
.controls{{margin:6px 0}}
</style></head><body>
<h1>{title}</h1>
<div class="sub">{summary}</div><div class="notes">{notes}</div>
<div class="legend"><b>writers</b> &nbsp;{writers}</div>
<div class="legend"><b>pod states</b> &nbsp;{states} &nbsp; <b>marks</b> &nbsp;
<span class="key">● change (big: created)</span><span class="key">◇ event (red: warning)</span>
<span class="key">✕ deleted</span></div>
<div class="controls">zoom <input id="zoom" type="range" min="0" max="60" value="0"> <span id="zl">1×</span></div>
<div class="wrap"><svg id="tl" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">
<g id="axis">{axis}</g>
{body}
</svg></div>
<div id="tip"></div>
<script>
(function(){{
const D={data};
const svg=document.getElementById('tl'), tip=document.getElementById('tip');
function fmt(t){{const d=new Date(t*1000);return d.toTimeString().slice(0,8)+'.'+String(d.getMilliseconds()).padStart(3,'0');}}
function layout(z){{
  const s=D.plotW*z/D.span, X=t=>D.labelW+t*s;
  svg.setAttribute('width',D.labelW+D.plotW*z+40);
  svg.querySelectorAll('circle[data-t]').forEach(e=>e.setAttribute('cx',X(+e.dataset.t)));
  svg.querySelectorAll('text[data-t]').forEach(e=>e.setAttribute('x',X(+e.dataset.t)+4));
  svg.querySelectorAll('path[data-t]').forEach(e=>{{const px=X(+e.dataset.t);
    e.setAttribute('d',e.getAttribute('d').replace(/^M[-0-9.]+/, 'M'+(e.classList.contains('del')?px-6:px)));}});
  svg.querySelectorAll('rect[data-t0]').forEach(e=>{{const a=X(+e.dataset.t0),b=X(+e.dataset.t1);
    e.setAttribute('x',a);e.setAttribute('width',Math.max(b-a,2));}});
  svg.querySelectorAll('line[data-t0]').forEach(e=>{{e.setAttribute('x1',X(+e.dataset.t0));e.setAttribute('x2',X(+e.dataset.t1));}});
  const steps=[0.01,0.02,0.05,0.1,0.2,0.5,1,2,5,10,15,30,60,120,300,600,900,1800,3600,7200];
  const step=steps.find(v=>v*s>=90)||7200, first=Math.ceil(D.t0/step)*step; let h='';
  for(let k=0;first+k*step<=D.t0+D.span+1e-9&&k<2000;k++){{const t=first+k*step,px=X(t-D.t0);
    h+=`<line class="tick" x1="${{px}}" y1="28" x2="${{px}}" y2="100%"/><text class="ticklabel" x="${{px+3}}" y="22">${{fmt(t)}}</text>`;}}
  document.getElementById('axis').innerHTML=h;
}}
const zoom=document.getElementById('zoom');
zoom.addEventListener('input',()=>{{const z=Math.pow(1.15,+zoom.value);document.getElementById('zl').textContent=z.toFixed(1)+'×';layout(z);}});
svg.addEventListener('mousemove',ev=>{{const e=ev.target.closest('[data-tip]');
  if(!e){{tip.style.display='none';return;}}
  tip.textContent=e.dataset.tip;tip.style.display='block';
  tip.style.left=Math.min(ev.clientX+14,window.innerWidth-tip.offsetWidth-8)+'px';tip.style.top=(ev.clientY+14)+'px';}});
svg.addEventListener('mouseleave',()=>{{tip.style.display='none';}});
svg.querySelectorAll('title').forEach(t=>t.remove());
}})();
</script></body></html>
"""


# -- the command -----------------------------------------------------------------------------------


def feed(builder: TimelineBuilder, changes: Iterable[Any]) -> None:
    """Fold Change messages (kplane.api.pb.api_pb2.Change) into `builder`."""
    from kplane.cli.history import ChangeDecoder

    decoder = ChangeDecoder()
    for change in changes:
        add_change(builder, change, decoder)


def add_change(builder: TimelineBuilder, change: Any, decoder: Any) -> None:
    obj, prev = decoder.pair(change)
    writer = change.writer
    moment = render.time_of(writer.time.seconds, writer.time.nanos)
    builder.add(rev=change.revision, t=moment.timestamp() if moment else None, type=change.type,
                kind=str(obj.get("kind") or change.ref.resource), namespace=change.ref.namespace,
                name=change.ref.name, obj=obj, prev=prev, writer=render.writer_name(writer.manager, writer.user),
                verb=render.verb_text(writer.verb, writer.subresource))


@click.command("timeline")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="the HTML file to write")
@click.option("--since-revision", type=click.IntRange(min=0), default=0, metavar="N",
              help="changes after revision N (default: from the oldest retained revision)")
@click.option("--for", "for_object", default="", metavar="KIND/NAME",
              help="one object and its Events (namespace from -n)")
@click.option("--kind", "kinds", multiple=True, help="only these kinds (repeatable)")
@click.option("--group-by", type=click.Choice(["object", "node", "writer"]), default="object", show_default=True,
              help="one lane per object, per node (pods, node leases, nodes) or per writer")
@click.option("--max-lanes", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--max-marks", type=click.IntRange(min=1), default=50_000, show_default=True)
@click.option("--server", "-s", envvar="KPLANE_SERVER", help="apiserver address HOST:PORT")
@click.option("--kplane-config", "config_path", envvar="KPLANE_CONFIG", help="client config file")
@click.option("-n", "--namespace", default=None, help="only this namespace (and the --for object's)")
@click.option("--request-timeout", default=30.0, type=float)
def timeline(out_path: Path, since_revision: int, for_object: str, kinds: tuple[str, ...], group_by: str,
             max_lanes: int, max_marks: int, server: str | None, config_path: str | None, namespace: str | None,
             request_timeout: float) -> None:
    """Draw the change stream as an HTML timeline: lanes per object, marks per revision.

    \b
    kplane timeline --out cluster.html
    kplane timeline --for pod/web-1 -n default --out web-1.html
    kplane timeline --kind pods --kind leases --group-by node --out nodes.html
    """
    from kplane.cli.history import ChangeDecoder, Conn, parse_target, run

    @run
    async def main() -> None:
        from kplane.api.resources import resolve

        conn = Conn(server, config_path, namespace, request_timeout)
        resources = [resolve(k) for k in kinds]
        target = None
        title = "kplane timeline"
        async with conn.client() as client:
            ns_filter = namespace or ""
            if for_object:
                rt, name = parse_target((for_object,))
                ns = conn.ns if rt.namespaced else ""
                target = (rt.kind, ns, name)
                title = f"kplane timeline: {rt.kind} {ns + '/' if ns else ''}{name}"
                resources = [rt, resolve("events")]
                ns_filter = ns
            builder = TimelineBuilder(group_by=group_by, target=target, max_lanes=max_lanes, max_marks=max_marks)
            decoder = ChangeDecoder()
            async for change in client.changes(since_revision=since_revision, resources=resources,
                                               namespace=ns_filter):
                add_change(builder, change, decoder)
        out_path.write_text(render_html(builder, title=title), encoding="utf-8")
        click.echo(f"wrote {out_path} ({len(builder.lanes)} lanes, {builder.marks} marks, revisions "
                   f"{builder.first_rev}–{builder.last_rev})")

    main()
