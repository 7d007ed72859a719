"""structlog set-up for every hotline process: console lines, or JSON lines for collectors."""

from __future__ import annotations

import logging
import sys

import structlog

from agent_console.pii import MaskingFilter, mask_log_values


class _Stderr:
    """Whatever sys.stderr is at write time (test runners swap and close it; a bound copy would break)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure_logging(level: str = "info", json_output: bool = False, process: str = "") -> None:
    lvl = getattr(logging, level.upper(), logging.INFO)
    logging.basicConfig(level=lvl, stream=sys.stderr, format="%(message)s")
    for handler in logging.getLogger().handlers:  # ID-card, phone and case numbers never reach a log line
        if not any(isinstance(f, MaskingFilter) for f in handler.filters):
            handler.addFilter(MaskingFilter())
    for noisy in ("httpx", "httpcore"):  # one line per worker event batch otherwise
        logging.getLogger(noisy).setLevel(max(lvl, logging.WARNING))
    processors = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_log_values,
    ]
    if process:
        structlog.contextvars.bind_contextvars(proc=process)
    renderer = structlog.processors.JSONRenderer(ensure_ascii=False) if json_output else \
        structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(_Stderr()),
        cache_logger_on_first_use=True,
    )
