"""The kit under a plain test runner: what a policy author's tests rely on."""

import json
import unittest
from dataclasses import dataclass, field
from typing import List, Optional

import scalewise_policy as sw


@dataclass
class Step:
    above: float
    add: int


@dataclass
class Settings:
    target: float
    metric: str = "cpu"
    steps: List[Step] = field(default_factory=list)
    cap: Optional[int] = None


@dataclass
class State:
    calls: int = 0


def evaluate(input, settings, state):
    state.calls += 1
    value = sw.last(sw.metric(input, settings.metric))
    if value is None:
        raise sw.Abstain(f"no samples for {settings.metric}")
    if value < 0:
        raise sw.NoOpinion("negative load")
    sw.report("seen", value)
    sw.log.info(f"value {value}")
    return sw.Proposal(sw.clamp(input.pool, value / settings.target), 0.9, "ratio")


StrategyApi = sw.strategy(evaluate, settings=Settings, state=State)


def window(name, values, start=0, step=1000):
    return sw.MetricWindow(name, [start + i * step for i in range(len(values))], list(values))


def strategy_input(values, settings='{"target": 2}', state=None):
    return sw.StrategyInput(sw.Pool("p", 2, 0, 1, 10), [window("cpu", values)], 5000, [], settings, state)


class SettingsTest(unittest.TestCase):
    def test_errors_name_the_field(self):
        cases = {
            '{"target": "x"}': 'target: expected a number, got "x"',
            '{"tagret": 1}': "tagret: unknown field",
            "{}": "target: missing field",
            '{"target": 1, "steps": [{"above": 1, "add": 1.5}]}': "steps[0].add: expected a whole number",
            '{"target": 1, "cap": "no"}': "cap: expected a whole number",
            "[1]": "expected a table",
            "{": "not JSON",
        }
        for text, message in cases.items():
            with self.assertRaises(sw.SettingsError) as e:
                sw.parse_settings(Settings, text)
            self.assertIn(message, str(e.exception), text)
            self.assertTrue(str(e.exception).startswith("invalid settings: "))

    def test_defaults_and_nesting(self):
        s = sw.parse_settings(Settings, '{"target": 3, "steps": [{"above": 0.5, "add": 2}]}')
        self.assertEqual(s, Settings(3.0, "cpu", [Step(0.5, 2)], None))
        self.assertIsInstance(s.target, float)

    def test_validate_config_refuses_through_the_export(self):
        with self.assertRaises(sw.PolicyError) as e:
            StrategyApi().validate_config('{"target": true}')
        self.assertIn("target: expected a number", e.exception.value)
        StrategyApi().validate_config('{"target": 1}')


class GlueTest(unittest.TestCase):
    def test_state_round_trips_and_gauges_are_collected(self):
        out = StrategyApi().evaluate(strategy_input([1.0, 8.0]))
        self.assertEqual(out.proposal.desired, 4.0)
        self.assertEqual(out.gauges, [sw.Gauge("seen", 8.0)])
        self.assertEqual(json.loads(out.state), {"calls": 1})
        again = StrategyApi().evaluate(strategy_input([8.0], state=out.state))
        self.assertEqual(json.loads(again.state), {"calls": 2})
        # A state from an incompatible version (or a binary one) starts afresh.
        fresh = StrategyApi().evaluate(strategy_input([8.0], state=b'{"calls": "many"}'))
        self.assertEqual(json.loads(fresh.state), {"calls": 1})
        self.assertIn(("info", "value 8.0"), sw.log.records)

    def test_declines_carry_their_reason(self):
        with self.assertRaises(sw.PolicyError) as e:
            StrategyApi().evaluate(sw.StrategyInput(sw.Pool("p", 1, 0, 1, 3), [], 0, [], '{"target": 1}'))
        self.assertEqual(e.exception.value, "no samples for cpu")
        with self.assertRaises(sw.PolicyError) as e:
            StrategyApi().evaluate(strategy_input([-1.0]))
        self.assertEqual(e.exception.value, "no opinion: negative load")

    def test_a_wrong_shape_is_a_bug_named_as_such(self):
        bad = sw.strategy(lambda i, s, st: 42)
        with self.assertRaises(TypeError) as e:
            bad().evaluate(strategy_input([1.0], settings=""))
        self.assertIn("not a Proposal", str(e.exception))

    def test_cost_rule_and_consensus(self):
        def cost(input, settings, state):
            if input.proposed > settings["max"]:
                return sw.CostDecision(sw.Verdict.clamp(settings["max"]), 1.0, "over max")
            return sw.CostDecision(sw.Verdict.allow(), 1.0, "fine")

        rule = sw.cost_rule(cost)
        out = rule().evaluate(sw.CostInput(sw.Pool("p", 1, 0, 0, 9), 7, settings='{"max": 5}'))
        self.assertEqual(out.verdict, sw.Verdict.clamp(5))

        def combine(input, settings, state):
            ps = [p for p in map(sw.proposal_of, input.votes) if p]
            return sw.Combined(max(p.desired for p in ps), 1.0, f"{len(ps)} votes")

        votes = [sw.Vote("a", 1, sw.Proposed(sw.Proposal(3, 1, ""))), sw.Vote("b", 1, sw.Abstained("down"))]
        out = sw.consensus(combine)().evaluate(sw.ConsensusInput(sw.Pool("p", 1, 0, 0, 9), votes))
        self.assertEqual((out.desired, out.explanation), (3.0, "1 votes"))


class SeriesTest(unittest.TestCase):
    """The same figures as the Rust SDK's tests (sdk/src/series.rs)."""

    def test_averages_skip_non_finite_values(self):
        self.assertEqual(sw.mean([1.0, float("nan"), 3.0]), 2.0)
        self.assertIsNone(sw.mean([float("nan")]))
        self.assertEqual(sw.moving_average([1.0, 2.0, 3.0, 5.0], 2), 4.0)
        self.assertEqual(sw.ewma([1.0, 2.0, 3.0], 0.5), 2.25)

    def test_percentiles_interpolate(self):
        v = [10.0, 20.0, 30.0, 40.0, 50.0]
        self.assertEqual(sw.percentile(v, 50), 30.0)
        self.assertEqual(sw.percentile(v, 90), 46.0)
        self.assertEqual(sw.percentile(window("x", v), 100), 50.0)
        self.assertIsNone(sw.percentile([], 50))

    def test_trend_and_time_windows(self):
        w = window("x", [1.0, 3.0, 5.0])
        t = sw.linear_trend(w)
        self.assertAlmostEqual(t.per_second(), 2.0)
        self.assertAlmostEqual(t.at(3000), 7.0)
        self.assertIsNone(sw.linear_trend(window("x", [1.0])))
        self.assertEqual(sw.mean_since(w, 2000, 1000), 4.0)
        self.assertAlmostEqual(sw.counter_rate(window("c", [10.0, 20.0, 5.0])), 7.5)


if __name__ == "__main__":
    unittest.main()
