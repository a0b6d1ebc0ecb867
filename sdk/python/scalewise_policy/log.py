"""The host's log: the one thing a policy may reach outside itself.

Inside a component, messages go to the host's log with the policy's id and
version attached (at most 64 a call). Under a test runner they are kept in
:data:`records` as ``(level, message)`` pairs, for a test to look at.
"""

from __future__ import annotations

try:
    from wit_world.imports import log as _wit_log  # type: ignore
except ImportError:
    _wit_log = None

records: list = []


def _emit(level: str, message: str) -> None:
    if _wit_log is None:
        records.append((level, str(message)))
        return
    _wit_log.log(getattr(_wit_log.Level, level.upper()), str(message))


def _reset() -> None:
    if _wit_log is None and len(records) > 1000:
        del records[:-1000]


def trace(message: str) -> None:
    _emit("trace", message)


def debug(message: str) -> None:
    _emit("debug", message)


def info(message: str) -> None:
    _emit("info", message)


def warn(message: str) -> None:
    _emit("warn", message)


def error(message: str) -> None:
    _emit("error", message)
