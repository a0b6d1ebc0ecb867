import unittest

import scalewise_policy as sw
from app import CostRuleApi


class CostRuleTest(unittest.TestCase):
    def test_clamps_to_what_the_cap_pays_for(self):
        input = sw.CostInput(
            sw.Pool("p", running=2, booting=0, min=0, max=50),
            proposed=10,
            kind="m5",
            catalog=[sw.InstanceKind("m5", on_demand_hourly=0.5)],
            settings='{"max_hourly": 3}',
        )
        self.assertEqual(CostRuleApi().evaluate(input).verdict, sw.Verdict.clamp(6))


if __name__ == "__main__":
    unittest.main()
