"""The three roles, and the glue that turns a function into a component export.

A policy author writes one plain function, ``evaluate(input, settings,
state)``, and hands it to :func:`strategy`, :func:`cost_rule` or
:func:`consensus`. What comes back is the class componentize-py looks for
(``StrategyApi``, ``CostRuleApi``, ``ConsensusApi``): assign it under that
name in ``app.py``. The glue does the untyped part the same way in a test
and in the component, as the Rust SDK does:

- parse the settings JSON into the author's dataclass, once per distinct
  text (a warm instance sees the same text every call), with an error that
  names the field;
- decode the state the host kept from the last call into the author's
  state dataclass (a fresh one when there is none, or when it was written
  by an incompatible version), and encode it again after the call;
- collect the gauges reported during the call;
- check the shape of what ``evaluate`` returned, so a wrong shape is a
  clear error naming what was expected, not a crash in the host's bindings.

Errors: raising :class:`Abstain` (or returning nothing useful) declines to
answer with a reason; :class:`NoOpinion` abstains on purpose (counted as a
decline, not a fault); :class:`SettingsError` refuses the settings. Any
other exception is a bug in the policy: it is left to propagate, so the
component traps, the host reports the traceback's last line and keeps the
last good version serving.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import traceback
from typing import Any, Callable, Optional

from . import log
from .settings import SettingsError, parse_settings
from .types import (
    Combined,
    ConsensusOutput,
    CostDecision,
    CostOutput,
    Gauge,
    Placement,
    Proposal,
    StrategyOutput,
    Verdict,
)

try:  # Only inside a component build: the host's own types.
    from wit_world.imports import types as _wit  # type: ignore
    from componentize_py_types import Err as _Err  # type: ignore
except ImportError:  # Under a test runner.
    _wit = None

    class _Err(Exception):  # type: ignore[no-redef]
        """The error a call returns (natively: raised)."""

        def __init__(self, value: str):
            super().__init__(value)
            self.value = value


PolicyError = _Err
"""What a natively called ``evaluate``/``validate_config`` raises when the
policy declines; its ``value`` is the message the host would see."""

NO_OPINION = "no opinion: "


class Abstain(Exception):
    """Raise to decline this call with a reason (no samples yet, say)."""


class NoOpinion(Abstain):
    """Raise to abstain on purpose: this policy has nothing to say here."""

    def __str__(self) -> str:
        return NO_OPINION + super().__str__()


# --- gauges -----------------------------------------------------------------

_reported: list = []


def report(name: str, value: float) -> None:
    """Report ``value`` as gauge ``name`` for this call (exported by the host
    as ``scalewise_policy_gauge``). The last value of a name wins; NaN is dropped."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return
    for g in _reported:
        if g.name == name:
            g.value = float(value)
            return
    _reported.append(Gauge(str(name), float(value)))


def _take_gauges() -> list:
    out = list(_reported)
    _reported.clear()
    return out


# --- state ------------------------------------------------------------------


def _decode_state(cls: Any, raw: Optional[bytes]) -> Any:
    if cls is None:
        return None
    fresh = cls() if callable(cls) else None
    if not raw or raw[:1] == b"\0":  # absent, or a binary state of another version
        return fresh
    try:
        value = json.loads(bytes(raw))
    except (ValueError, UnicodeDecodeError):
        return fresh
    if cls is dict:
        return value if isinstance(value, dict) else {}
    try:
        return parse_settings(cls, json.dumps(value))
    except SettingsError:
        return fresh  # written by an incompatible version: start afresh


def _encode_state(cls: Any, state: Any) -> Optional[bytes]:
    if cls is None:
        return None
    if dataclasses.is_dataclass(state):
        state = dataclasses.asdict(state)
    return json.dumps(state, separators=(",", ":")).encode()


# --- the glue ---------------------------------------------------------------


def _say_bug(e: BaseException) -> None:
    """Print the line the host reports when the call traps: the exception
    and where in the policy's own code it was raised."""
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "scalewise_policy" not in f.filename]
    where = ""
    if frames:
        f = frames[-1]
        where = f" (at {f.filename.rsplit('/', 1)[-1]}:{f.lineno}, in {f.name})"
    message = str(e)
    if len(message) > 300:
        message = message[:297] + "..."
    print(f"policy error: {type(e).__name__}: {message}{where}", file=sys.stderr)


class _Role:
    """What the three export classes share."""

    _settings_cls: Any = dict
    _state_cls: Any = None
    _check: Optional[Callable] = None
    _cache: tuple = (None, None)

    @classmethod
    def _settings(cls, text: str) -> Any:
        key, parsed = cls._cache
        if key == text and key is not None:
            return parsed
        parsed = parse_settings(cls._settings_cls, text)
        cls._cache = (text, parsed)
        return parsed

    def validate_config(self, settings: str) -> None:
        def check() -> None:
            parsed = self._settings(settings)
            problem = type(self)._check(parsed) if self._check is not None else None
            if problem:
                raise SettingsError(str(problem))

        _guarded(check)

    def _call(self, input: Any, build: Callable) -> Any:
        def call() -> Any:
            settings = self._settings(input.settings)
            state = _decode_state(self._state_cls, input.state)
            _take_gauges()
            result = type(self)._evaluate(input, settings, state)
            return build(result, _take_gauges(), _encode_state(self._state_cls, state))

        try:
            return _guarded(call)
        finally:
            log._reset()


def _guarded(work: Callable) -> Any:
    """Run ``work``: a decline becomes the call's error; anything else is a
    bug, said on stderr (inside a component) and left to trap."""
    try:
        return work()
    except (SettingsError, Abstain) as e:
        raise _Err(str(e)) from None
    except BaseException as e:
        if _wit is not None:
            _say_bug(e)
        raise


def _shape(value: Any, fields: tuple, what: str) -> None:
    missing = [f for f in fields if not hasattr(value, f)]
    if missing:
        raise TypeError(f"evaluate returned {type(value).__name__}, not {what} (missing {', '.join(missing)})")


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"evaluate returned {name} = {value!r}, not a number")
    return float(value)


def _wit_placement(p: Optional[Placement]):
    if p is None:
        return None
    return _wit.Placement(p.kind, int(p.on_demand), int(p.spot))


def _wit_verdict(v: Verdict):
    if v.kind == "allow":
        return _wit.Verdict_Allow()
    if v.kind == "clamp":
        return _wit.Verdict_Clamp(int(v.value))
    return _wit.Verdict_Deny()


def _make(base_name: str, base: type, evaluate: Callable, settings: Any, state: Any, validate: Optional[Callable]) -> type:
    attrs = {
        "_evaluate": staticmethod(evaluate),
        "_settings_cls": settings if settings is not None else dict,
        "_state_cls": state,
        "_check": staticmethod(validate) if validate else None,
        "_cache": (None, None),
        "__doc__": evaluate.__doc__,
    }
    return type(base_name, (base,), attrs)


class _Strategy(_Role):
    def evaluate(self, input: Any) -> Any:
        def build(p: Any, gauges: list, state: Optional[bytes]) -> Any:
            _shape(p, ("desired", "confidence", "reason"), "a Proposal(desired, confidence, reason)")
            desired, confidence = _number(p.desired, "desired"), _number(p.confidence, "confidence")
            if _wit is None:
                return StrategyOutput(Proposal(desired, confidence, str(p.reason)), gauges, state)
            return _wit.StrategyOutput(
                _wit.Proposal(desired, confidence, str(p.reason)), [_wit.Gauge(g.name, g.value) for g in gauges], state
            )

        return self._call(input, build)


class _CostRule(_Role):
    def evaluate(self, input: Any) -> Any:
        def build(d: Any, _gauges: list, state: Optional[bytes]) -> Any:
            _shape(d, ("verdict", "cost_per_hour", "reason"), "a CostDecision(verdict, cost_per_hour, reason)")
            if not isinstance(d.verdict, Verdict):
                raise TypeError(f"evaluate returned verdict = {d.verdict!r}, not Verdict.allow(), Verdict.clamp(n) or Verdict.deny()")
            cost = _number(d.cost_per_hour, "cost_per_hour")
            placement = getattr(d, "placement", None)
            if _wit is None:
                return CostOutput(d.verdict, cost, str(d.reason), placement, state)
            return _wit.CostOutput(_wit_verdict(d.verdict), cost, str(d.reason), _wit_placement(placement), state)

        return self._call(input, build)


class _Consensus(_Role):
    def evaluate(self, input: Any) -> Any:
        def build(c: Any, _gauges: list, state: Optional[bytes]) -> Any:
            _shape(c, ("desired", "confidence", "explanation"), "a Combined(desired, confidence, explanation)")
            desired, confidence = _number(c.desired, "desired"), _number(c.confidence, "confidence")
            if _wit is None:
                return ConsensusOutput(desired, confidence, str(c.explanation), state)
            return _wit.ConsensusOutput(desired, confidence, str(c.explanation), state)

        return self._call(input, build)


def strategy(evaluate: Callable, settings: Any = None, state: Any = None, validate: Optional[Callable] = None) -> type:
    """The ``StrategyApi`` export for ``evaluate(input, settings, state) -> Proposal``.

    ``settings``: a dataclass the configured settings are parsed into (or
    ``None`` for a plain dict). ``state``: a dataclass with defaults for what
    the policy remembers (mutate it in place), or ``None`` for no state.
    ``validate(settings)``: extra checks; return an error message, or ``None``.
    """
    return _make("StrategyApi", _Strategy, evaluate, settings, state, validate)


def cost_rule(evaluate: Callable, settings: Any = None, state: Any = None, validate: Optional[Callable] = None) -> type:
    """The ``CostRuleApi`` export for ``evaluate(input, settings, state) -> CostDecision``."""
    return _make("CostRuleApi", _CostRule, evaluate, settings, state, validate)


def consensus(evaluate: Callable, settings: Any = None, state: Any = None, validate: Optional[Callable] = None) -> type:
    """The ``ConsensusApi`` export for ``evaluate(input, settings, state) -> Combined``."""
    return _make("ConsensusApi", _Consensus, evaluate, settings, state, validate)


__all__ = [
    "Abstain",
    "CostDecision",
    "Combined",
    "NoOpinion",
    "PolicyError",
    "consensus",
    "cost_rule",
    "report",
    "strategy",
]
