"""{{name}}: a cost rule. Clamps a proposed capacity to what an hourly
spending cap pays for, at the pool's instance kind's on-demand price."""

import math
from dataclasses import dataclass

import scalewise_policy as sw


@dataclass
class Settings:
    max_hourly: float


def evaluate(input: sw.CostInput, settings: Settings, state: None) -> sw.CostDecision:
    if input.kind is None:
        raise sw.Abstain("the pool names no instance kind")
    price = next((k.on_demand_hourly for k in input.catalog if k.name == input.kind), None)
    if price is None:
        raise sw.Abstain(f"{input.kind} is not in the catalog")
    cost = price * input.proposed
    if cost <= settings.max_hourly:
        return sw.CostDecision(sw.Verdict.allow(), cost, f"{input.proposed} x {input.kind} costs {cost:g}/h")
    affordable = math.floor(settings.max_hourly / price) if price > 0 else input.proposed
    return sw.CostDecision(sw.Verdict.clamp(affordable), price * affordable, f"{cost:g}/h is over {settings.max_hourly:g}/h: {affordable}")


CostRuleApi = sw.cost_rule(evaluate, settings=Settings)
