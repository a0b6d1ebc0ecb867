"""The contract's nouns, as dataclasses.

Why mirror the generated bindings instead of using them: the bindings
exist only inside a component build, and a policy's tests run under a plain
test runner. Inside the component, the host's values arrive as the
bindings' own dataclasses, which have exactly these field names, so a
policy reads ``input.pool.running`` or ``window.values`` the same way in a
test and in production, and the kit never copies an input to convert it.

Time is milliseconds since the Unix epoch (an ``int``); capacities are
whole instances (``int``); everything measured is a ``float``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Union


@dataclass
class MetricWindow:
    """A named series of samples, oldest first: ``times[i]`` is when
    ``values[i]`` was observed."""

    name: str
    times: List[int] = field(default_factory=list)
    values: List[float] = field(default_factory=list)


@dataclass
class Pool:
    """The pool being scaled, as the provider reports it."""

    id: str
    running: int
    booting: int = 0
    min: int = 0
    max: int = 0


@dataclass
class Action:
    """A scaling action the host took recently, newest last."""

    at: int
    from_: int
    to: int
    reason: str = ""


@dataclass
class Proposal:
    """What a strategy wants: a capacity, how sure it is (0 to 1), and why."""

    desired: float
    confidence: float
    reason: str


@dataclass
class Proposed:
    """A ballot that proposes (``value`` is a :class:`Proposal`)."""

    value: Proposal


@dataclass
class Abstained:
    """A ballot that abstains (``value`` is the cause)."""

    value: str


Ballot = Union[Proposed, Abstained]


@dataclass
class Vote:
    expert: str
    weight: float
    ballot: Ballot


@dataclass
class InstanceKind:
    """An instance kind with its prices (per instance-hour) and size."""

    name: str
    provider: str = ""
    region: str = ""
    on_demand_hourly: float = 0.0
    spot_hourly: Optional[float] = None
    reserved_hourly: Optional[float] = None
    vcpus: float = 0.0
    memory_gib: float = 0.0
    gpus: int = 0


@dataclass
class Placement:
    """How a capacity is bought: which kind, how many on demand and on spot."""

    kind: Optional[str]
    on_demand: int
    spot: int


@dataclass
class Gauge:
    name: str
    value: float


@dataclass
class Budget:
    limit: float
    period_hours: float
    spent: float
    elapsed_hours: float


class Verdict:
    """What a cost rule says: :meth:`allow`, :meth:`clamp` to a capacity, or :meth:`deny`."""

    __slots__ = ("kind", "value")

    def __init__(self, kind: str, value: Optional[int] = None):
        self.kind = kind
        self.value = value

    @classmethod
    def allow(cls) -> "Verdict":
        return cls("allow")

    @classmethod
    def clamp(cls, capacity: int) -> "Verdict":
        return cls("clamp", int(capacity))

    @classmethod
    def deny(cls) -> "Verdict":
        return cls("deny")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verdict) and (self.kind, self.value) == (other.kind, other.value)

    def __repr__(self) -> str:
        return f"Verdict.{self.kind}({'' if self.value is None else self.value})"


@dataclass
class StrategyInput:
    pool: Pool
    metrics: List[MetricWindow] = field(default_factory=list)
    now: int = 0
    recent_actions: List[Action] = field(default_factory=list)
    settings: str = ""
    state: Optional[bytes] = None


@dataclass
class StrategyOutput:
    proposal: Proposal
    gauges: List[Gauge]
    state: Optional[bytes]


@dataclass
class CostInput:
    pool: Pool
    proposed: int
    kind: Optional[str] = None
    catalog: List[InstanceKind] = field(default_factory=list)
    budget: Optional[Budget] = None
    placement: Optional[Placement] = None
    metrics: List[MetricWindow] = field(default_factory=list)
    now: int = 0
    settings: str = ""
    state: Optional[bytes] = None


@dataclass
class CostDecision:
    """What a cost rule's ``evaluate`` returns; ``placement=None`` keeps the
    previous rule's choice."""

    verdict: Verdict
    cost_per_hour: float
    reason: str
    placement: Optional[Placement] = None


@dataclass
class CostOutput:
    verdict: Verdict
    cost_per_hour: float
    reason: str
    placement: Optional[Placement]
    state: Optional[bytes]


@dataclass
class ConsensusInput:
    pool: Pool
    votes: List[Vote] = field(default_factory=list)
    now: int = 0
    settings: str = ""
    state: Optional[bytes] = None


@dataclass
class Combined:
    """What a consensus's ``evaluate`` returns."""

    desired: float
    confidence: float
    explanation: str


@dataclass
class ConsensusOutput:
    desired: float
    confidence: float
    explanation: str
    state: Optional[bytes]
