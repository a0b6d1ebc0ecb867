"""A Python policy that misbehaves on request, by pool id, and behaves
otherwise: each way is a case of tests/e2e/languages.rs."""

import scalewise_policy as sw


def evaluate(input, settings, state):
    how = input.pool.id
    if how == "raise":
        return 1 / 0
    if how == "loop":
        while True:
            pass
    if how == "alloc":
        hoard = []
        while True:
            hoard.append(bytearray(1 << 20))
    if how == "shape":
        return {"desired": 3}
    if how == "import":
        import no_such_module  # noqa: F401
    return sw.Proposal(float(input.pool.running), 1.0, "hostile: behaving")


StrategyApi = sw.strategy(evaluate)
