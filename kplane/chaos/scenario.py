"""Chaos scenario files: schema and strict validation (every problem, each with its field path).

A scenario is YAML::

    name: node-loss-deployment            # required: [a-z0-9-]
    description: Kill a node under a Deployment; its replicas come back elsewhere.
    namespace: chaos-node-loss            # default chaos-<name>; created if missing, deleted after
    requires: {nodes: 3, profile: fast}   # fewer Ready nodes: the run stops before any fault
                                          # (also control-plane-replicas: N — standbys to take over)
    bounds: {converge: 60s, restore: 60s, settle: 10s}
    invariants: [replicas-restored, ...]  # default: all (INVARIANTS)
    steps:
    - apply: {file: web.yaml}             # or {manifest: {...}} / {manifest: [{...}, ...]}
    - wait: {for: available, target: deployment/web, timeout: 60s}
    - kill-node: {nodeOf: deployment/web, as: victim}
    - wait: {for: evicted, node: $victim, timeout: 60s}
    - expect: {evicted: {node: $victim, within: 30s}}

Steps (each a mapping with one action key, plus an optional ``name``):

- ``apply: {file: PATH | manifest: OBJ|[OBJ]}`` — create or update (paths relative to the scenario);
- ``scale: {target: deployment/NAME, replicas: N}``; ``set-image: {target, container, image}``;
- ``wait: {for: COND, target|node, timeout}`` — COND: ``available`` / ``rolled-out``
  (deployment, replicaset, daemonset), ``ready`` / ``not-ready`` / ``tainted`` / ``untainted`` /
  ``evicted`` (node: every pod bound to it at its last fault is deleted or terminating);
- ``kill-node`` / ``freeze-node`` / ``thaw-node`` / ``restart-node``: ``NODE`` or ``{node: NODE}``
  or ``{nodeOf: deployment/NAME}`` (the node running most of its pods), ``as: VAR`` names the node
  for later steps (``$VAR``);
- ``kill: {component: C, leader: BOOL}``, ``kill-etcd: {}``, ``restart: {component: C}``;
- ``sleep: DURATION``;
- ``expect:`` one of ``{no-evictions: {target?}}`` (no pod deleted since the run started),
  ``{evicted: {node, within}}``, ``{max-pods: {target, max}}`` (never more active pods),
  ``{pods: {target, count}}`` (exactly this many Running and Ready now).

Durations: ``5s``, ``1m30s``, ``500ms`` or a number of seconds.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kplane.durations import parse_duration

INVARIANTS = ("replicas-restored", "no-duplicate-pods", "allocatable", "daemonset-coverage", "no-lost-writes",
              "converged")
NODE_FAULTS = ("kill-node", "freeze-node", "thaw-node", "restart-node")
COMPONENT_FAULTS = ("kill", "kill-etcd", "restart")
ACTIONS = ("apply", "scale", "set-image", "wait", *NODE_FAULTS, *COMPONENT_FAULTS, "sleep", "expect")
WORKLOAD_CONDITIONS = ("available", "rolled-out")
NODE_CONDITIONS = ("ready", "not-ready", "tainted", "untainted", "evicted")
EXPECTATIONS = ("no-evictions", "evicted", "max-pods", "pods")
WORKLOAD_KINDS = {"deployment": "deployments", "deploy": "deployments", "deployments": "deployments",
                  "replicaset": "replicasets", "rs": "replicasets", "replicasets": "replicasets",
                  "daemonset": "daemonsets", "ds": "daemonsets", "daemonsets": "daemonsets"}
COMPONENTS = ("etcd", "apiserver", "scheduler", "controller-manager", "fake-nodes")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ScenarioError(Exception):
    """A scenario that cannot run; ``errors`` holds one ``path: problem`` line per problem."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source} is not a valid scenario:\n" + "\n".join(f"* {e}" for e in errors))


@dataclass(frozen=True)
class Bounds:
    converge: float = 60.0  # the control plane converges within this after every fault
    restore: float = 60.0  # every Deployment/ReplicaSet has its desired replicas back within this
    settle: float = 10.0  # DaemonSet coverage is checked once nodes have been quiet this long


@dataclass
class Step:
    index: int
    action: str
    args: dict[str, Any]
    name: str = ""

    @property
    def path(self) -> str:
        return f"steps[{self.index}]"

    def title(self) -> str:
        if self.name:
            return self.name
        a, g = self.action, self.args
        if a == "apply":
            return f"apply {Path(g['file']).name}" if "file" in g else "apply " + ", ".join(
                f"{str(o.get('kind', '?')).lower()}/{(o.get('metadata') or {}).get('name', '?')}" for o in g["manifest"])
        if a == "scale":
            return f"scale {g['target']} to {g['replicas']}"
        if a == "set-image":
            return f"set image {g['target']} {g['container']}={g['image']}"
        if a == "wait":
            return f"wait until {g.get('target') or 'node ' + str(g.get('node'))} {g['for']} (≤{g['timeout']:.0f}s)"
        if a in NODE_FAULTS:
            node = g.get("node") or f"the node of {g.get('nodeOf')}"
            return f"{a} {node}" + (f" as ${g['as']}" if "as" in g else "")
        if a in ("kill", "restart"):
            return f"{a} {g['component']}" + (" (leader)" if g.get("leader") else "")
        if a == "sleep":
            return f"sleep {g['duration']:g}s"
        if a == "expect":
            rest = " ".join(f"{k}={v:g}s" if k == "within" else f"{k}={v}" for k, v in g.items() if k != "expect")
            return f"expect {g['expect']} {rest}".strip()
        return a


@dataclass
class Scenario:
    name: str
    description: str
    namespace: str
    steps: list[Step]
    bounds: Bounds = field(default_factory=Bounds)
    invariants: tuple[str, ...] = INVARIANTS
    requires_nodes: int = 1
    requires_profile: str = ""
    # schedulers and controller-managers each (`kplane up --control-plane-replicas N`): a leader
    # kill needs a standby to take over
    requires_control_plane_replicas: int = 1
    source: Path | None = None


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f', did you mean "{close[0]}"?' if close else f" (one of: {', '.join(choices)})"


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.vars: set[str] = set()

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def mapping(self, value: Any, path: str, known: tuple[str, ...]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.err(path, f"expected a mapping, got {_type(value)}")
            return None
        for k in value:
            if k not in known:
                self.err(f"{path}.{k}", f'unknown field "{k}"{_suggest(str(k), known)}')
        return value

    def duration(self, value: Any, path: str) -> float | None:
        if isinstance(value, bool):
            self.err(path, f"expected a duration like 30s, got {_type(value)}")
            return None
        if isinstance(value, int | float):
            if value < 0:
                self.err(path, "must not be negative")
                return None
            return float(value)
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError:
                pass
        self.err(path, f'invalid duration {value!r} (like "30s", "1m30s", "500ms" or seconds)')
        return None

    def string(self, value: Any, path: str) -> str | None:
        if not isinstance(value, str) or not value:
            self.err(path, f"expected a non-empty string, got {_type(value)}")
            return None
        return value

    def integer(self, value: Any, path: str, minimum: int = 0) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.err(path, f"expected an integer, got {_type(value)}")
            return None
        if value < minimum:
            self.err(path, f"must be at least {minimum}")
            return None
        return value

    def target(self, value: Any, path: str, kinds: dict[str, str] = WORKLOAD_KINDS) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        kind, _, name = text.partition("/")
        if not name or kind.lower() not in kinds or not _NAME.match(name):
            self.err(path, f'expected KIND/NAME with KIND one of deployment, replicaset, daemonset, got "{text}"')
            return None
        return f"{kinds[kind.lower()]}/{name}"

    def node_ref(self, value: Any, path: str) -> str | None:
        text = self.string(value, path)
        if text is None:
            return None
        if text.startswith("$"):
            if text[1:] not in self.vars:
                defined = ", ".join(f"${v}" for v in sorted(self.vars)) or "none yet"
                self.err(path, f'"{text}" is not defined by an earlier step\'s "as" (defined: {defined})')
                return None
        elif not _NAME.match(text):
            self.err(path, f'"{text}" is not a node name')
            return None
        return text


def _type(value: Any) -> str:
    if value is None:
        return "nothing"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(value), type(value).__name__)


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file (raises ScenarioError naming every problem)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(str(path), [f"cannot read: {e.strerror or e}"]) from None
    return parse_scenario(text, source=str(path), base=path.parent)


def parse_scenario(text: str, *, source: str = "scenario", base: Path | None = None) -> Scenario:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ScenarioError(source, [f"(file): {where}{getattr(e, 'problem', None) or e}"]) from None
    return validate_scenario(doc, source=source, base=base)


def validate_scenario(doc: Any, *, source: str = "scenario", base: Path | None = None) -> Scenario:
    c = _Checker()
    top = c.mapping(doc, "(scenario)", ("name", "description", "namespace", "requires", "bounds", "invariants",
                                        "steps"))
    if top is None:
        raise ScenarioError(source, c.errors)
    name = c.string(top.get("name"), "name") or ""
    if name and not _NAME.match(name):
        c.err("name", f'"{name}" must be lowercase letters, digits and "-"')
    description = top.get("description", "")
    if not isinstance(description, str):
        c.err("description", f"expected a string, got {_type(description)}")
        description = ""
    namespace = top.get("namespace", f"chaos-{name}"[:63] if name else "chaos")
    if not isinstance(namespace, str) or not _NAME.match(namespace):
        c.err("namespace", f"{namespace!r} is not a namespace name")
        namespace = "chaos"
    requires_nodes, requires_profile, requires_replicas = 1, "", 1
    if "requires" in top:
        req = c.mapping(top["requires"], "requires", ("nodes", "profile", "control-plane-replicas"))
        if req is not None:
            if "nodes" in req:
                requires_nodes = c.integer(req["nodes"], "requires.nodes", 1) or 1
            if "control-plane-replicas" in req:
                requires_replicas = c.integer(req["control-plane-replicas"], "requires.control-plane-replicas", 1) or 1
            if "profile" in req:
                requires_profile = c.string(req["profile"], "requires.profile") or ""
                if requires_profile and requires_profile not in ("default", "fast"):
                    c.err("requires.profile", f'unknown profile "{requires_profile}" (default, fast)')
    bounds = Bounds()
    if "bounds" in top:
        b = c.mapping(top["bounds"], "bounds", ("converge", "restore", "settle"))
        if b is not None:
            vals = {k: c.duration(v, f"bounds.{k}") for k, v in b.items() if k in ("converge", "restore", "settle")}
            bounds = Bounds(**{k: v for k, v in vals.items() if v is not None})
    invariants = INVARIANTS
    if "invariants" in top:
        inv = top["invariants"]
        if not isinstance(inv, list) or not all(isinstance(i, str) for i in inv):
            c.err("invariants", "expected a list of invariant names")
        else:
            for i, item in enumerate(inv):
                if item not in INVARIANTS:
                    c.err(f"invariants[{i}]", f'unknown invariant "{item}"{_suggest(item, INVARIANTS)}')
            invariants = tuple(i for i in inv if i in INVARIANTS)
    steps: list[Step] = []
    raw_steps = top.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        c.err("steps", "expected a non-empty list of steps")
    else:
        for i, raw in enumerate(raw_steps):
            step = _step(c, raw, i, base)
            if step is not None:
                steps.append(step)
    if c.errors:
        raise ScenarioError(source, c.errors)
    return Scenario(name=name, description=description, namespace=namespace, steps=steps, bounds=bounds,
                    invariants=invariants, requires_nodes=requires_nodes, requires_profile=requires_profile,
                    requires_control_plane_replicas=requires_replicas,
                    source=Path(source) if base is not None else None)


def _step(c: _Checker, raw: Any, i: int, base: Path | None) -> Step | None:
    path = f"steps[{i}]"
    if not isinstance(raw, dict):
        c.err(path, f"expected a mapping with one action ({', '.join(ACTIONS)}), got {_type(raw)}")
        return None
    label = raw.get("name", "")
    if not isinstance(label, str):
        c.err(f"{path}.name", f"expected a string, got {_type(label)}")
        label = ""
    actions = [k for k in raw if k != "name"]
    if len(actions) != 1:
        if not actions:
            c.err(path, f"no action (one of: {', '.join(ACTIONS)})")
        else:
            c.err(path, f"one action per step, got {', '.join(map(str, actions))}")
        return None
    action = str(actions[0])
    if action not in ACTIONS:
        c.err(f"{path}.{action}", f'unknown step "{action}"{_suggest(action, ACTIONS)}')
        return None
    p = f"{path}.{action}"
    value = raw[action]
    before = len(c.errors)
    args: dict[str, Any] = {}
    if action == "apply":
        m = c.mapping(value, p, ("file", "manifest"))
        if m is not None:
            if ("file" in m) == ("manifest" in m):
                c.err(p, 'give exactly one of "file" or "manifest"')
            elif "file" in m:
                f = c.string(m["file"], f"{p}.file")
                if f is not None:
                    fp = (base / f) if base is not None and not Path(f).is_absolute() else Path(f)
                    if base is not None and not fp.is_file():
                        c.err(f"{p}.file", f'no such file "{fp}"')
                    args["file"] = str(fp)
            else:
                man = m["manifest"]
                items = man if isinstance(man, list) else [man]
                for j, obj in enumerate(items):
                    q = f"{p}.manifest" + (f"[{j}]" if isinstance(man, list) else "")
                    if not isinstance(obj, dict):
                        c.err(q, f"expected an object, got {_type(obj)}")
                        continue
                    for key in ("apiVersion", "kind"):
                        if not isinstance(obj.get(key), str):
                            c.err(f"{q}.{key}", "required")
                    if not isinstance((obj.get("metadata") or {}).get("name"), str):
                        c.err(f"{q}.metadata.name", "required")
                args["manifest"] = items
    elif action == "scale":
        m = c.mapping(value, p, ("target", "replicas"))
        if m is not None:
            args["target"] = c.target(m.get("target"), f"{p}.target")
            args["replicas"] = c.integer(m.get("replicas"), f"{p}.replicas")
    elif action == "set-image":
        m = c.mapping(value, p, ("target", "container", "image"))
        if m is not None:
            args["target"] = c.target(m.get("target"), f"{p}.target")
            args["container"] = c.string(m.get("container"), f"{p}.container")
            args["image"] = c.string(m.get("image"), f"{p}.image")
    elif action == "wait":
        m = c.mapping(value, p, ("for", "target", "node", "timeout"))
        if m is not None:
            cond = c.string(m.get("for"), f"{p}.for")
            args["for"] = cond
            args["timeout"] = c.duration(m.get("timeout", "60s"), f"{p}.timeout")
            if cond in WORKLOAD_CONDITIONS:
                args["target"] = c.target(m.get("target"), f"{p}.target")
                if "node" in m:
                    c.err(f"{p}.node", f'"{cond}" waits for a target, not a node')
            elif cond in NODE_CONDITIONS:
                args["node"] = c.node_ref(m.get("node"), f"{p}.node")
                if "target" in m:
                    c.err(f"{p}.target", f'"{cond}" waits for a node, not a target')
            elif cond is not None:
                c.err(f"{p}.for", f'unknown condition "{cond}"{_suggest(cond, WORKLOAD_CONDITIONS + NODE_CONDITIONS)}')
    elif action in NODE_FAULTS:
        if isinstance(value, str):
            value = {"node": value}
        m = c.mapping(value, p, ("node", "nodeOf", "as"))
        if m is not None:
            if ("node" in m) == ("nodeOf" in m):
                c.err(p, 'give exactly one of "node" or "nodeOf"')
            elif "node" in m:
                args["node"] = c.node_ref(m["node"], f"{p}.node")
            else:
                args["nodeOf"] = c.target(m["nodeOf"], f"{p}.nodeOf")
            if "as" in m:
                var = m["as"]
                if not isinstance(var, str) or not _VAR.match(var):
                    c.err(f"{p}.as", f"{var!r} is not a variable name (letters, digits, _)")
                else:
                    args["as"] = var
                    c.vars.add(var)
    elif action in ("kill", "restart"):
        if isinstance(value, str):
            value = {"component": value}
        m = c.mapping(value, p, ("component", "leader") if action == "kill" else ("component",))
        if m is not None:
            comp = c.string(m.get("component"), f"{p}.component")
            if comp is not None and comp not in COMPONENTS:
                c.err(f"{p}.component", f'unknown component "{comp}"{_suggest(comp, COMPONENTS)}')
            args["component"] = comp
            leader = m.get("leader", False)
            if not isinstance(leader, bool):
                c.err(f"{p}.leader", f"expected true or false, got {_type(leader)}")
            elif leader and comp not in ("scheduler", "controller-manager"):
                c.err(f"{p}.leader", "only the scheduler and the controller-manager elect a leader")
            if action == "kill":
                args["leader"] = bool(leader)
    elif action == "kill-etcd":
        if value not in (None, {}):
            c.err(p, "takes no arguments (write kill-etcd: {})")
    elif action == "sleep":
        args["duration"] = c.duration(value, p)
    elif action == "expect":
        m = c.mapping(value, p, EXPECTATIONS)
        if m is not None:
            if len(m) != 1:
                c.err(p, f"one expectation per step ({', '.join(EXPECTATIONS)})")
            else:
                kind, body = next(iter(m.items()))
                q = f"{p}.{kind}"
                args["expect"] = kind
                if kind == "no-evictions":
                    b = c.mapping(body if body is not None else {}, q, ("target",))
                    if b is not None and "target" in b:
                        args["target"] = c.target(b["target"], f"{q}.target")
                elif kind == "evicted":
                    b = c.mapping(body, q, ("node", "within"))
                    if b is not None:
                        args["node"] = c.node_ref(b.get("node"), f"{q}.node")
                        args["within"] = c.duration(b.get("within"), f"{q}.within")
                elif kind == "max-pods":
                    b = c.mapping(body, q, ("target", "max"))
                    if b is not None:
                        args["target"] = c.target(b.get("target"), f"{q}.target")
                        args["max"] = c.integer(b.get("max"), f"{q}.max")
                elif kind == "pods":
                    b = c.mapping(body, q, ("target", "count"))
                    if b is not None:
                        args["target"] = c.target(b.get("target"), f"{q}.target")
                        args["count"] = c.integer(b.get("count"), f"{q}.count")
    if len(c.errors) != before:
        return None
    return Step(index=i, action=action, args=args, name=label)
