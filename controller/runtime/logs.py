"""Logging for the controller: every line names its target (STYLE.md 9).

Callers pass ``extra={"target": "shop/deployment/web", "incident": "c1a2…-1764"}``;
the formatter prints them on every line (``-`` when a line has none), as
text for people or as one JSON object per line for log pipelines.  Values
of ConfigMaps or Secrets never reach a log line: plans name keys, sizes and
digests only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Final

LOGGER_NAME: Final = "rollback.controller"


class TargetFormatter(logging.Formatter):
    """``TIME LEVEL [target=… incident=…] message`` or the same as a JSON object."""

    def __init__(self, json_lines: bool = False) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        target = str(getattr(record, "target", "") or "-")
        incident = str(getattr(record, "incident", "") or "-")
        message = record.getMessage()
        if record.exc_info and record.levelno >= logging.ERROR:
            message += " | " + " ".join(self.formatException(record.exc_info).split())
        if self.json_lines:
            return json.dumps(
                {
                    "time": moment,
                    "level": record.levelname.lower(),
                    "target": target,
                    "incident": incident,
                    "msg": message,
                    "thread": record.threadName,
                },
                ensure_ascii=False,
            )
        return f"{moment} {record.levelname:<7} [target={target} incident={incident}] {message}"


def setup_logging(*, json_lines: bool = False, level: int = logging.INFO) -> logging.Logger:
    """The controller's logger, writing to stderr (what a container runtime collects)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(TargetFormatter(json_lines))
    logger.addHandler(handler)
    return logger


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


__all__ = ["LOGGER_NAME", "TargetFormatter", "get_logger", "setup_logging"]
