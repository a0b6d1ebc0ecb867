"""Settings: the JSON the operator configured, parsed into the author's dataclass.

Why a parser of its own rather than ``MySettings(**json.loads(text))``: an
operator who writes ``target = "ten"`` or ``tagret = 10`` must read which
field is wrong and why, as they do for a Rust policy (``invalid settings:
target: expected a number, got "ten"``), not a Python ``TypeError``. The
checks follow the dataclass's annotations: ``float`` (an ``int`` is
accepted), ``int``, ``str``, ``bool``, ``Optional[...]``, ``list[...]``,
``dict[str, ...]``, nested dataclasses and ``Any``. Unknown fields are refused.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any


class SettingsError(ValueError):
    """Settings the policy cannot use; the message names the field."""


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _convert(path: str, tp: Any, value: Any) -> Any:
    where = f"{path}: " if path else ""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin is typing.Union:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _convert(path, inner[0], value)
        for a in inner:
            try:
                return _convert(path, a, value)
            except SettingsError:
                pass
        raise SettingsError(f"{where}expected one of {', '.join(getattr(a, '__name__', str(a)) for a in inner)}, got {_describe(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise SettingsError(f"{where}expected a number, got {_describe(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise SettingsError(f"{where}expected a whole number, got {_describe(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise SettingsError(f"{where}expected a string, got {_describe(value)}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise SettingsError(f"{where}expected true or false, got {_describe(value)}")
    if origin in (list, typing.List) or tp is list:
        if not isinstance(value, list):
            raise SettingsError(f"{where}expected a list, got {_describe(value)}")
        item = args[0] if args else Any
        return [_convert(f"{path}[{i}]", item, v) for i, v in enumerate(value)]
    if origin in (dict, typing.Dict) or tp is dict:
        if not isinstance(value, dict):
            raise SettingsError(f"{where}expected a table, got {_describe(value)}")
        item = args[1] if len(args) == 2 else Any
        return {k: _convert(f"{path}.{k}" if path else k, item, v) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return _dataclass(path, tp, value)
    raise SettingsError(f"{where}the policy declares a type the kit cannot parse: {tp!r}")


def _dataclass(path: str, cls: Any, value: Any) -> Any:
    where = f"{path}: " if path else ""
    if not isinstance(value, dict):
        raise SettingsError(f"{where}expected a table, got {_describe(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in value if k not in fields]
    if unknown:
        expected = ", ".join(f"`{n}`" for n in fields)
        name = f"{path}.{unknown[0]}" if path else unknown[0]
        raise SettingsError(f"{name}: unknown field, expected one of {expected}")
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in value:
            kwargs[name] = _convert(sub, hints.get(name, Any), value[name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SettingsError(f"{sub}: missing field")
    return cls(**kwargs)


def parse_settings(cls: Any, text: str) -> Any:
    """Parse the settings JSON into ``cls`` (a dataclass, or ``dict`` for
    free-form settings). An empty text counts as ``{}``. Raises
    :class:`SettingsError` with the field's path, prefixed ``invalid settings:``."""
    source = text if text and text.strip() else "{}"
    try:
        value = json.loads(source)
    except json.JSONDecodeError as e:
        raise SettingsError(f"invalid settings: not JSON: {e}") from None
    if cls is None or cls is dict:
        if not isinstance(value, dict):
            raise SettingsError(f"invalid settings: expected a table, got {_describe(value)}")
        return value
    try:
        return _dataclass("", cls, value)
    except SettingsError as e:
        raise SettingsError(f"invalid settings: {e}") from None
