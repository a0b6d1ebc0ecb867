import unittest

import scalewise_policy as sw
from app import StrategyApi


def input(value, settings='{"target_per_worker": 10}'):
    window = sw.MetricWindow("queue_depth", [0], [value])
    return sw.StrategyInput(sw.Pool("p", running=2, booting=0, min=1, max=20), [window], now=0, settings=settings)


class StrategyTest(unittest.TestCase):
    def test_divides_by_the_target_and_stays_in_bounds(self):
        self.assertEqual(StrategyApi().evaluate(input(95.0)).proposal.desired, 10.0)
        self.assertEqual(StrategyApi().evaluate(input(1e6)).proposal.desired, 20.0)

    def test_bad_settings_name_the_field(self):
        with self.assertRaises(sw.PolicyError) as e:
            StrategyApi().validate_config('{"target_per_worker": 0}')
        self.assertIn("target_per_worker", e.exception.value)


if __name__ == "__main__":
    unittest.main()
