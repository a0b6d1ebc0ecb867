#!/usr/bin/env python3
"""How much of a trace's over-provisioning any autoscaler must pay.

Usage: scripts/noise-floor.py TRACE.csv [--boot 5] [--peak 100] [--from 0.6]

With a boot delay, capacity must be decided `boot + 1` steps before it
serves. What it cannot know then is each step's own noise around the
coming minutes' level. This prints, on the part of the trace from `--from`
(the held-back part of `scalewise tune`), the elasticity figures θ_U and
θ_O (SPEC RG, demand = ceil(load / capacity), capacity set so the busiest
step needs `--peak` instances) of rules that scale to

- the maximum demand of the last k steps (what the HPA-like rule's
  scale-down window amounts to),
- the mean of the last w steps times q, and
- the mean of the coming 15 steps times q, known in advance: no real
  policy can do this, so its θ_O at a given θ_U bounds what any policy
  that cannot see each step's noise can reach.

The fleet model is simplified (a launch serves boot + 1 steps later, a
removal at once) and so the figures are close to, not equal to, the
simulator's; compare rows with each other.
"""
import argparse
import math


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("trace")
    ap.add_argument("--boot", type=int, default=5)
    ap.add_argument("--peak", type=int, default=100)
    ap.add_argument("--from", dest="start", type=float, default=0.6)
    a = ap.parse_args()
    load = []
    for line in open(a.trace):
        try:
            load.append(max(0.0, float(line.strip().split(",")[-1])))
        except ValueError:
            pass
    n = len(load)
    capacity = max(load) / a.peak
    demand = [math.ceil(x / capacity - 1e-12) for x in load]
    start = int(n * a.start)

    def score(desired):
        running, pending = demand[0], {}
        supply = [0] * n
        for t in range(n):
            running += pending.pop(t, 0)
            supply[t] = running
            want, booting = desired(t), sum(pending.values())
            if want > running + booting:
                pending[t + 1 + a.boot] = pending.get(t + 1 + a.boot, 0) + want - running - booting
            elif want < running + booting:
                running -= min(running + booting - want, running)
        under = sum(max(demand[t] - supply[t], 0) / max(demand[t], 1) for t in range(start, n))
        over = sum(max(supply[t] - demand[t], 0) / max(demand[t], 1) for t in range(start, n))
        return 100 * under / (n - start), 100 * over / (n - start)

    print(f"{a.trace}: {n} steps, scored from step {start}, boot {a.boot}")
    print(f"  {'rule':<44} {'θ_U %':>7} {'θ_O %':>8}")
    for k in (3, 5, 10):
        print(f"  {'max of the last %d steps' % k:<44} {'%7.2f %8.2f' % score(lambda t, k=k: max(demand[max(0, t - k):t + 1]))}")
    for w, q in ((15, 1.2), (30, 1.2), (30, 1.3)):
        def mean(t, w=w, q=q):
            win = demand[max(0, t - w):t + 1]
            return math.ceil(sum(win) / len(win) * q)
        print(f"  {'mean of the last %d × %.1f' % (w, q):<44} {'%7.2f %8.2f' % score(mean)}")
    for q in (1.1, 1.2, 1.3):
        def future(t, q=q):
            win = demand[t + a.boot + 1:t + a.boot + 16] or demand[-1:]
            return math.ceil(sum(win) / len(win) * q)
        print(f"  {'coming 15 steps mean × %.1f (clairvoyant)' % q:<44} {'%7.2f %8.2f' % score(future)}")


if __name__ == "__main__":
    main()
