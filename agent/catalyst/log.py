"""Logging: one line per event with structured ``key=value`` fields, to the trading log.

``log.info("order submitted", extra={"fields": {"symbol": "ACME", "qty": 10}})`` writes
``2026-11-23T15:31:00+00:00 INFO catalyst.cycle order submitted symbol=ACME qty=10``.
Known secrets are masked on every line as a second line of defence. If the log file cannot be
opened or written (disk full, permissions), lines go to stderr instead: a logging failure never
stops trading or the kill switch.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable
from pathlib import Path


class FieldsFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            line += " " + " ".join(f"{k}={_value(v)}" for k, v in fields.items())
        return line


def _value(v: object) -> str:
    text = str(v)
    return f'"{text}"' if (" " in text or not text) else text


class RedactFilter(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for s in self.secrets:
                message = message.replace(s, "***")
            record.msg, record.args = message, None
            fields = getattr(record, "fields", None)
            if isinstance(fields, dict):
                record.fields = {k: self._mask(v) for k, v in fields.items()}
        return True

    def _mask(self, v: object) -> object:
        text = str(v)
        for s in self.secrets:
            if s in text:
                text = text.replace(s, "***")
                v = text
        return v


class SafeFileHandler(logging.FileHandler):
    """A file handler that falls back to stderr instead of raising when the disk is full."""

    def handleError(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"[log file unwritable] {self.format(record)}\n")


def setup_logging(log_file: Path | None, secrets: Iterable[str] = (), level: int = logging.INFO,
                  echo: bool = False) -> logging.Logger:
    root = logging.getLogger("catalyst")
    root.setLevel(level)
    root.propagate = False
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    formatter = FieldsFormatter()
    redact = RedactFilter(secrets)
    handlers: list[logging.Handler] = []
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            handlers.append(SafeFileHandler(log_file, encoding="utf-8"))
        except OSError as exc:
            sys.stderr.write(f"catalyst: cannot open log file {log_file} ({exc.strerror}); logging to stderr\n")
            echo = True
    if echo:
        handlers.append(logging.StreamHandler(sys.stderr))
    for h in handlers:
        h.setFormatter(formatter)
        h.addFilter(redact)
        root.addHandler(h)
    return root


def fields(**kv: object) -> dict[str, dict[str, object]]:
    """``log.info("msg", extra=fields(symbol="ACME"))``"""
    return {"fields": kv}
