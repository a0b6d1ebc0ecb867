"""scalewise policies in Python.

A policy is one function and one line that exports it::

    from dataclasses import dataclass
    import scalewise_policy as sw

    @dataclass
    class Settings:
        target_per_worker: float
        metric: str = "queue_depth"

    def evaluate(input: sw.StrategyInput, settings: Settings, state: None) -> sw.Proposal:
        depth = sw.last(sw.metric(input, settings.metric))
        if depth is None:
            raise sw.Abstain(f"no samples for {settings.metric}")
        desired = sw.clamp(input.pool, math.ceil(depth / settings.target_per_worker))
        return sw.Proposal(desired, 1.0, f"backlog {depth:g} / {settings.target_per_worker:g} per worker")

    StrategyApi = sw.strategy(evaluate, settings=Settings)

``scalewise policy build`` turns the project into a component with
componentize-py; ``python -m unittest`` runs its tests natively, calling
``StrategyApi().evaluate(...)`` with the kit's own input types.
"""

from . import log
from .roles import (
    NO_OPINION,
    Abstain,
    NoOpinion,
    PolicyError,
    consensus,
    cost_rule,
    report,
    strategy,
)
from .series import (
    Trend,
    capacity,
    clamp,
    counter_rate,
    ewma,
    last,
    linear_trend,
    mean,
    mean_since,
    metric,
    moving_average,
    percentile,
    proposal_of,
    samples,
    since,
)
from .settings import SettingsError, parse_settings
from .types import (
    Abstained,
    Action,
    Budget,
    Combined,
    ConsensusInput,
    ConsensusOutput,
    CostDecision,
    CostInput,
    CostOutput,
    Gauge,
    InstanceKind,
    MetricWindow,
    Placement,
    Pool,
    Proposal,
    Proposed,
    StrategyInput,
    StrategyOutput,
    Verdict,
    Vote,
)

__version__ = "0.2.0"
CONTRACT = "scalewise:policy@0.2.0"
