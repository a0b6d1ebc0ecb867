import unittest

import scalewise_policy as sw
from app import ConsensusApi


def vote(desired, weight):
    return sw.Vote("e", weight, sw.Proposed(sw.Proposal(desired, 1.0, "")))


class ConsensusTest(unittest.TestCase):
    def test_weights_the_votes(self):
        input = sw.ConsensusInput(sw.Pool("p", running=2, booting=0, min=0, max=50), [vote(2.0, 1.0), vote(8.0, 2.0)])
        self.assertEqual(ConsensusApi().evaluate(input).desired, 6.0)


if __name__ == "__main__":
    unittest.main()
