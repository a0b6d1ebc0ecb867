//! The search: Latin-hypercube samples of each family's ranges, then local
//! refinement around the best, scored by the objective under the
//! constraints; and the Pareto front.
//!
//! Why this method: the spaces are small (a handful of settings), one
//! evaluation is a whole simulator run (a second or so), and the budget is
//! a few hundred runs. A Latin hypercube covers every range evenly with few
//! points (each range cut into as many strata as points, one point per
//! stratum); refinement then spends the rest of the budget near what
//! worked, with steps that shrink each round. It is deterministic for a
//! seed, needs no gradient, and is simple enough to trust.

use toml::Value;

use super::spec::Domain;

/// SplitMix64: small, fast, and good enough to spread samples.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// Roughly normal (the sum of four uniforms, centred and scaled).
    pub fn normal(&mut self) -> f64 {
        ((0..4).map(|_| self.unit()).sum::<f64>() - 2.0) * 3f64.sqrt()
    }
}

/// The value at position `u` in [0, 1) of a domain.
pub fn at(domain: &Domain, u: f64) -> Value {
    match domain {
        Domain::Float(a, b) => Value::Float(round(a + (b - a) * u)),
        Domain::Int(a, b) => Value::Integer((*a + ((b - a + 1) as f64 * u).floor() as i64).min(*b)),
        Domain::Choice(c) => c[((c.len() as f64 * u) as usize).min(c.len() - 1)].clone(),
    }
}

/// Six significant digits: configs that read well, and equal points equal.
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let scale = 10f64.powi(5 - x.abs().log10().floor() as i32);
    (x * scale).round() / scale
}

/// `n` Latin-hypercube points over `domains`.
pub fn latin_hypercube(domains: &[Domain], n: usize, rng: &mut Rng) -> Vec<Vec<Value>> {
    let columns: Vec<Vec<Value>> = domains
        .iter()
        .map(|d| {
            let mut strata: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                strata.swap(i, rng.below(i + 1));
            }
            strata.into_iter().map(|s| at(d, (s as f64 + rng.unit()) / n as f64)).collect()
        })
        .collect();
    (0..n).map(|i| columns.iter().map(|c| c[i].clone()).collect()).collect()
}

/// A neighbour of `point`: each number moved by a normal step of `radius`
/// times its range, clamped; each choice changed with probability `radius`.
pub fn neighbour(domains: &[Domain], point: &[Value], radius: f64, rng: &mut Rng) -> Vec<Value> {
    domains
        .iter()
        .zip(point)
        .map(|(d, v)| match (d, v) {
            (Domain::Float(a, b), v) => {
                let x = v.as_float().or_else(|| v.as_integer().map(|i| i as f64)).unwrap_or(*a);
                Value::Float(round((x + rng.normal() * radius * (b - a)).clamp(*a, *b)))
            }
            (Domain::Int(a, b), v) => {
                let x = v.as_integer().unwrap_or(*a) as f64;
                let step = rng.normal() * radius * (b - a) as f64;
                Value::Integer(((x + step).round() as i64).clamp(*a, *b))
            }
            (Domain::Choice(c), _) if rng.unit() < radius => c[rng.below(c.len())].clone(),
            (Domain::Choice(_), v) => v.clone(),
        })
        .collect()
}

/// The figures a candidate is judged by, on one part of the history.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Scores {
    pub theta_u: f64,
    pub theta_o: f64,
    pub tau_u: f64,
    /// Percent of the load.
    pub unserved: f64,
    pub cost: f64,
    pub cost_ratio: f64,
}

/// Bounds on θ_U, unserved and τ_U, resolved to numbers for one part.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Bounds {
    pub theta_u: Option<f64>,
    pub unserved: Option<f64>,
    pub tau_u: Option<f64>,
}

impl Bounds {
    /// How far `s` is past the bounds, in percentage points summed; 0 when
    /// it meets them all.
    pub fn violation(&self, s: &Scores) -> f64 {
        let over = |bound: Option<f64>, x: f64| bound.map_or(0.0, |b| (x - b).max(0.0));
        over(self.theta_u, s.theta_u) + over(self.unserved, s.unserved) + over(self.tau_u, s.tau_u)
    }

    /// What `s` misses, in words, or nothing.
    pub fn missed(&self, s: &Scores) -> Vec<String> {
        let mut out = Vec::new();
        for (name, bound, x) in [("θ_U", self.theta_u, s.theta_u), ("unserved", self.unserved, s.unserved), ("τ_U", self.tau_u, s.tau_u)] {
            if let Some(b) = bound.filter(|b| x > *b) {
                out.push(format!("{name} {x:.2} % is above the bound {b:.2} %"));
            }
        }
        out
    }
}

/// Rank key: feasible candidates by the objective, then infeasible ones by
/// how far they miss (so the search moves toward feasibility).
pub fn rank_key(objective: f64, violation: f64) -> (bool, f64) {
    if violation <= 0.0 { (false, objective) } else { (true, violation) }
}

/// Indices of the points no other point beats on both `x` and `y` (lower
/// is better), sorted by `x`.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).filter(|&i| points[i].0.is_finite() && points[i].1.is_finite()).collect();
    order.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0).then(points[a].1.total_cmp(&points[b].1)));
    let mut front = Vec::new();
    let mut best_y = f64::INFINITY;
    for i in order {
        if points[i].1 < best_y {
            front.push(i);
            best_y = points[i].1;
        }
    }
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_latin_hypercube_puts_one_point_in_each_stratum_of_every_range() {
        let domains = [Domain::Float(0.0, 1.0), Domain::Int(0, 9)];
        let points = latin_hypercube(&domains, 10, &mut Rng::new(7));
        let mut strata: Vec<usize> = points.iter().map(|p| (p[0].as_float().unwrap() * 10.0) as usize).collect();
        strata.sort();
        assert_eq!(strata, (0..10).collect::<Vec<_>>());
        let mut ints: Vec<i64> = points.iter().map(|p| p[1].as_integer().unwrap()).collect();
        ints.sort();
        assert_eq!(ints, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn neighbours_stay_in_their_ranges() {
        let domains = [Domain::Float(0.5, 0.9), Domain::Int(0, 600), Domain::Choice(vec![Value::Boolean(true), Value::Boolean(false)])];
        let mut rng = Rng::new(1);
        let start = vec![Value::Float(0.9), Value::Integer(0), Value::Boolean(true)];
        for _ in 0..1000 {
            let n = neighbour(&domains, &start, 0.5, &mut rng);
            assert!((0.5..=0.9).contains(&n[0].as_float().unwrap()));
            assert!((0..=600).contains(&n[1].as_integer().unwrap()));
            assert!(n[2].as_bool().is_some());
        }
    }

    #[test]
    fn the_front_keeps_exactly_the_undominated_points() {
        let points = [(1.0, 5.0), (2.0, 3.0), (2.5, 4.0), (3.0, 1.0), (4.0, 1.0), (f64::NAN, 0.0)];
        assert_eq!(pareto_front(&points), vec![0, 1, 3]);
    }

    #[test]
    fn feasible_candidates_rank_before_any_infeasible_one() {
        let b = Bounds { theta_u: Some(5.0), unserved: None, tau_u: None };
        let s = |theta_u, theta_o| Scores { theta_u, theta_o, tau_u: 0.0, unserved: 0.0, cost: 0.0, cost_ratio: 1.0 };
        let (good, bad) = (s(4.0, 90.0), s(5.1, 10.0));
        assert!(rank_key(good.theta_o, b.violation(&good)) < rank_key(bad.theta_o, b.violation(&bad)));
        assert_eq!(b.missed(&bad), vec!["θ_U 5.10 % is above the bound 5.00 %"]);
    }
}
