"""kplane timeline: lanes, pod life states, lease holders, and a page that needs no network."""

from __future__ import annotations

import re
from typing import Any

from kplane.cli.timeline import TimelineBuilder, pod_state, render_html


def pod(**status: Any) -> dict[str, Any]:
    return {"kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": {}, "status": status}


def feed_pod_life(b: TimelineBuilder) -> None:
    t = 1000.0
    created = pod(phase="Pending")
    b.add(rev=10, t=t, type="ADDED", kind="Pod", namespace="default", name="web", obj=created, prev=None,
          writer="kpctl (alice)", verb="create")
    scheduled = {**created, "spec": {"nodeName": "node-1"}}
    b.add(rev=11, t=t + 1, type="MODIFIED", kind="Pod", namespace="default", name="web", obj=scheduled,
          prev=created, writer="kube-scheduler", verb="create binding")
    pulling = {"kind": "Event", "reason": "Pulling", "type": "Normal", "message": "Pulling image",
               "involvedObject": {"kind": "Pod", "name": "web", "namespace": "default"}}
    b.add(rev=12, t=t + 2, type="ADDED", kind="Event", namespace="default", name="web.1", obj=pulling, prev=None,
          writer="kubelet/node-1", verb="create")
    ready = {**scheduled, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    b.add(rev=13, t=t + 5, type="MODIFIED", kind="Pod", namespace="default", name="web", obj=ready,
          prev=scheduled, writer="kubelet/node-1", verb="update status")
    b.add(rev=14, t=None, type="DELETED", kind="Pod", namespace="default", name="web", obj=ready, prev=ready,
          writer="-", verb="")


def test_pod_states_from_revisions_and_events() -> None:
    """created → scheduled → pulling (its Event) → ready, ending at the deletion."""
    b = TimelineBuilder()
    feed_pod_life(b)
    [lane] = b.lanes.values()
    assert [s for _, s in lane.states] == ["pending", "scheduled", "pulling", "ready"]
    assert [m.type for m in lane.marks] == ["ADDED", "MODIFIED", "EVENT", "MODIFIED", "DELETED"]
    assert lane.end == 1005.0  # an unattributed change takes the previous change's time
    assert (b.first_rev, b.last_rev) == (10, 14)


def test_pod_state_reads_the_object() -> None:
    """Deletion wins, then terminal phases, Ready, back-off, running, scheduled, pending."""
    assert pod_state({"metadata": {"deletionTimestamp": "x"}, "status": {"phase": "Running"}}) == "terminating"
    assert pod_state(pod(phase="Succeeded")) == "succeeded"
    assert pod_state(pod(containerStatuses=[{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}])) == "backoff"
    assert pod_state(pod(containerStatuses=[{"state": {"running": {}}}])) == "running"
    assert pod_state({"spec": {"nodeName": "n"}, "status": {}}) == "scheduled"
    assert pod_state(pod()) == "pending"


def test_lease_lane_follows_the_holder() -> None:
    """Leader election: one state per holder, renewals are marks on it."""
    b = TimelineBuilder()
    for rev, holder in ((1, "sched-a"), (2, "sched-a"), (3, "sched-b")):
        lease = {"kind": "Lease", "spec": {"holderIdentity": holder}}
        b.add(rev=rev, t=float(rev), type="MODIFIED", kind="Lease", namespace="kube-system", name="kube-scheduler",
              obj=lease, prev=None, writer=holder, verb="update")
    [lane] = b.lanes.values()
    assert [s for _, s in lane.states] == ["sched-a", "sched-b"] and len(lane.marks) == 3


def test_target_and_grouping() -> None:
    """--for keeps one object and its events; --group-by writer makes a lane per writer."""
    b = TimelineBuilder(target=("Pod", "default", "web"))
    feed_pod_life(b)
    b.add(rev=20, t=2000.0, type="ADDED", kind="Pod", namespace="default", name="other", obj=pod(), prev=None,
          writer="kpctl", verb="create")
    assert list(b.lanes) == ["Pod:default/web"]
    w = TimelineBuilder(group_by="writer")
    feed_pod_life(w)
    assert set(w.lanes) == {"writer:kpctl (alice)", "writer:kube-scheduler", "writer:kubelet/node-1", "writer:-"}
    n = TimelineBuilder(group_by="node")
    feed_pod_life(n)
    assert "node:node-1" in n.lanes and "node:(unscheduled)" in n.lanes


def test_bounds_are_reported() -> None:
    """Past --max-lanes / --max-marks changes are counted, not drawn."""
    b = TimelineBuilder(max_lanes=1, max_marks=2)
    for i in range(3):
        b.add(rev=i, t=float(i), type="ADDED", kind="ConfigMap", namespace="d", name=f"c{i}", obj={}, prev=None,
              writer="w", verb="create")
    b.add(rev=9, t=9.0, type="MODIFIED", kind="ConfigMap", namespace="d", name="c0", obj={}, prev={}, writer="w",
          verb="update")
    b.add(rev=10, t=10.0, type="MODIFIED", kind="ConfigMap", namespace="d", name="c0", obj={"a": 1}, prev={},
          writer="w", verb="update")
    assert b.dropped_lanes == 2 and b.dropped_marks == 1
    assert "left out" in render_html(b, title="t")


def test_page_is_self_contained_and_escaped() -> None:
    """No network references (only the SVG namespace), hover details escaped, one mark per change."""
    b = TimelineBuilder()
    feed_pod_life(b)
    b.add(rev=30, t=1010.0, type="ADDED", kind="ConfigMap", namespace="default", name="<script>", obj={},
          prev=None, writer="kpctl", verb="create")
    page = render_html(b, title="kplane timeline")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<script>\n(function" in page
    urls = set(re.findall(r"https?://[^\"' )]+", page))
    assert urls == {"http://www.w3.org/2000/svg"}
    assert "&lt;script&gt;" in page and 'name="<script>"' not in page
    assert page.count('class="mark') == 6
    assert "revision 11" in page and "kube-scheduler" in page
