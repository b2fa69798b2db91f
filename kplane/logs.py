"""structlog setup shared by every kplane component.

Call :func:`configure_logging` once, first thing in a component's ``main``::

    configure_logging("apiserver", fmt=args.log_format)
    log = get_logger()
    log.info("serving", address="127.0.0.1:6443")

Lines go to stderr: one JSON object per line when stderr is not a terminal (or ``fmt="json"``),
the coloured console renderer otherwise. Every line carries ``component``. The standard library's
``logging`` (and so gRPC's Python-side logs, aetcd's, asyncio's) is routed through the same
formatter, so a component's stderr holds one format only. ``kplane up`` starts components with
``--log-format json`` and renders their lines itself.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")

_LEVEL_ALIASES = {"warn": "warning", "fatal": "critical"}


def parse_level(level: str) -> int:
    """Return the stdlib level number for a level name such as ``info`` or ``WARN``."""
    name = level.strip().lower()
    name = _LEVEL_ALIASES.get(name, name)
    if name not in LOG_LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LOG_LEVELS)}")
    return int(getattr(logging, name.upper()))


def use_json(fmt: str, stream: Any = None) -> bool:
    """Whether ``fmt`` means JSON lines on ``stream`` (default: stderr)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(LOG_FORMATS)}")
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def _component_adder(component: str) -> Processor:
    def add_component(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("component", component)
        return event_dict

    return add_component


def configure_logging(component: str, fmt: str = "auto", level: str = "info") -> None:
    """Configure structlog and stdlib logging for the process ``component``."""
    as_json = use_json(fmt)
    level_no = parse_level(level)
    stream = sys.stderr

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        _component_adder(component),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )

    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if as_json:
        final += [
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
    else:
        isatty = getattr(stream, "isatty", None)
        colors = bool(callable(isatty) and isatty())
        final.append(
            structlog.dev.ConsoleRenderer(
                colors=colors,
                exception_formatter=(
                    structlog.dev.RichTracebackFormatter(show_locals=False, width=100)
                    if colors
                    else structlog.dev.plain_traceback
                ),
            )
        )

    foreign: list[Processor] = [
        *shared,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
    ]
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=foreign, processors=final)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level_no)
    logging.captureWarnings(True)


def get_logger(**bound: Any) -> structlog.stdlib.BoundLogger:
    """Return a structlog logger with ``bound`` key/values on every line it writes."""
    # Lazy: binding here would freeze the configuration in force at import time.
    logger: structlog.stdlib.BoundLogger = structlog.get_logger(**bound)
    return logger
