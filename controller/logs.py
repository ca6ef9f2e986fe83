"""Structured logs: ``extra={"blog": ..., "path": ..., ...}`` on every record.

Text for people (the extras appended as ``key=value``), one JSON object per
line for machines (``--log-format json``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD}


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        extras = " ".join(f"{k}={v}" for k, v in _extras(record).items())
        text = f"{text} {extras}" if extras else text
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": record.created,
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
            "thread": record.threadName,
            **_extras(record),
        }
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


def configure(level: int, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # transitions logs every machine it builds at INFO: noise, not operations.
    logging.getLogger("transitions").setLevel(max(level, logging.WARNING))
    # The Dropbox SDK logs every request at INFO and warns about refreshes it
    # cannot do; the source reports each failure once, with the blog, itself.
    logging.getLogger("dropbox").setLevel(
        logging.DEBUG if level <= logging.DEBUG else logging.ERROR
    )
