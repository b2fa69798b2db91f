"""kplane.logs: JSON lines carrying `component`, stdlib logging routed through structlog."""

from __future__ import annotations

import json
import logging

import pytest
import structlog

from kplane.logs import configure_logging, get_logger, parse_level, use_json


@pytest.fixture(autouse=True)
def _reset_logging():  # type: ignore[no-untyped-def]
    yield
    structlog.reset_defaults()
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.setLevel(logging.WARNING)


def test_json_lines_carry_component(capsys: pytest.CaptureFixture[str]) -> None:
    """structlog and stdlib (e.g. grpc's) records both come out as JSON with `component`."""
    configure_logging("scheduler", fmt="json", level="info")
    get_logger(pod="default/web-1").info("bound", node="node-1", resourceVersion="42")
    logging.getLogger("grpc._cython.cygrpc").warning("channel %s closed", "x")
    get_logger().debug("hidden")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    first, second = lines
    assert first["event"] == "bound" and first["component"] == "scheduler" and first["level"] == "info"
    assert first["pod"] == "default/web-1" and first["node"] == "node-1" and "timestamp" in first
    assert second["event"] == "channel x closed" and second["component"] == "scheduler"
    assert second["level"] == "warning" and second["logger"] == "grpc._cython.cygrpc"


def test_auto_means_json_off_a_terminal() -> None:
    """`auto` picks JSON when stderr is not a TTY and console when it is."""

    class Tty:
        def isatty(self) -> bool:
            return True

    assert use_json("auto", object())
    assert not use_json("auto", Tty())
    assert use_json("json", Tty()) and not use_json("console", object())
    with pytest.raises(ValueError):
        use_json("xml")


def test_levels() -> None:
    """Level names are case-insensitive and `warn` is an alias."""
    assert parse_level("WARN") == logging.WARNING
    with pytest.raises(ValueError):
        parse_level("loud")
