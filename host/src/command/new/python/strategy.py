"""{{name}}: a scaling strategy. Desired capacity is the newest sample of a
metric divided by what one worker should carry."""

import math
from dataclasses import dataclass

import scalewise_policy as sw


@dataclass
class Settings:
    target_per_worker: float
    metric: str = "queue_depth"


def validate(settings: Settings):
    if not settings.target_per_worker > 0:
        return f"target_per_worker: must be a positive number, got {settings.target_per_worker}"


def evaluate(input: sw.StrategyInput, settings: Settings, state: None) -> sw.Proposal:
    value = sw.last(sw.metric(input, settings.metric))
    if value is None:
        raise sw.Abstain(f"no samples for {settings.metric}")
    desired = sw.clamp(input.pool, math.ceil(value / settings.target_per_worker))
    return sw.Proposal(desired, 1.0, f"{settings.metric} {value:g} / {settings.target_per_worker:g} per worker")


StrategyApi = sw.strategy(evaluate, settings=Settings, validate=validate)
