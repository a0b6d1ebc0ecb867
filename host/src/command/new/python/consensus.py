"""{{name}}: consensus. The mean of the proposals, weighted by each
expert's weight times its confidence."""

import math
from dataclasses import dataclass

import scalewise_policy as sw


@dataclass
class Settings:
    round_up: bool = False


def evaluate(input: sw.ConsensusInput, settings: Settings, state: None) -> sw.Combined:
    total = weight = 0.0
    for vote in input.votes:
        p = sw.proposal_of(vote)
        if p is not None:
            total += vote.weight * p.confidence * p.desired
            weight += vote.weight * p.confidence
    if weight <= 0:
        raise sw.Abstain("no expert proposed anything")
    mean = total / weight
    desired = sw.clamp(input.pool, math.ceil(mean) if settings.round_up else round(mean))
    return sw.Combined(desired, 1.0, f"weighted mean {mean:.2f} of {len(input.votes)} votes")


ConsensusApi = sw.consensus(evaluate, settings=Settings)
