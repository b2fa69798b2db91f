"""The launcher console: prefixes, rendering of structlog/zap JSON lines, level filtering."""

from __future__ import annotations

import io
import json

from kplane.cluster.console import Console, level_number, render_fields


def console(fmt: str = "console") -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(out, fmt=fmt, names=["etcd", "apiserver"]), out


def test_structlog_line_is_rendered_with_padded_prefix() -> None:
    """A component's JSON line becomes `name | time level event key=value` without colours off a TTY."""
    c, out = console()
    c.component_line(
        "apiserver",
        json.dumps(
            {
                "event": "serving",
                "level": "info",
                "component": "apiserver",
                "timestamp": "2026-11-21T22:01:40.123456Z",
                "address": "127.0.0.1:6443",
                "note": "two words",
            }
        ),
    )
    line = out.getvalue()
    assert line.startswith("apiserver | ")
    assert "\x1b[" not in line
    assert line.rstrip().endswith('info  serving address=127.0.0.1:6443 note="two words"')


def test_etcd_info_is_hidden_and_warnings_shown() -> None:
    """With console_level warning, zap info lines stay in the log file only; warnings show."""
    c, out = console()
    zap = {"level": "info", "ts": "2026-11-21T22:01:40.123Z", "caller": "x.go:1", "msg": "ready"}
    c.component_line("etcd", json.dumps(zap), "warning")
    assert out.getvalue() == ""
    c.component_line("etcd", json.dumps({**zap, "level": "warn", "msg": "slow fdatasync"}), "warning")
    assert out.getvalue().startswith("etcd      | ") and "warn  slow fdatasync" in out.getvalue()
    assert "caller" not in out.getvalue()


def test_non_json_lines_pass_through() -> None:
    """Tracebacks and other plain lines are shown as written, whatever the level filter."""
    c, out = console()
    c.component_line("apiserver", "Traceback (most recent call last):\n", "error")
    assert out.getvalue() == "apiserver | Traceback (most recent call last):\n"


def test_json_mode_adds_component() -> None:
    """In JSON mode lines stay JSON and gain `component`; plain lines are wrapped."""
    c, out = console("json")
    c.component_line("etcd", json.dumps({"level": "warn", "msg": "x"}))
    c.component_line("etcd", "plain")
    c.say("ready", pid=3)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert docs[0] == {"level": "warn", "msg": "x", "component": "etcd"}
    assert docs[1] == {"component": "etcd", "event": "plain"}
    assert docs[2]["component"] == "kplane" and docs[2]["event"] == "ready" and docs[2]["pid"] == 3


def test_levels() -> None:
    """structlog and zap level names map onto one scale."""
    assert level_number("warn") == level_number("warning") == 30
    assert level_number("DPANIC") == 50
    assert level_number(None) is None
    assert render_fields({"event": "e"}) == (None, "e")
