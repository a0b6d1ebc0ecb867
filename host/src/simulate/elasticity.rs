//! The SPEC Research Group's elasticity metrics, accumulated step by step.
//!
//! Demand `d_t` is the number of instances the load needs,
//! `ceil(load_t / capacity)`; supply `s_t` is the instances running (booted,
//! not draining). Over `T` steps (Herbst et al., "Elasticity in Cloud
//! Computing: What It Is, and What It Is Not", ICAC 2013; Bauer et al.,
//! "Chamulteon", and the metric definitions in TPDS 2019):
//!
//! - accuracy θ_U = 100/T · Σ max(d_t − s_t, 0) / max(d_t, ε), and θ_O the
//!   same with (s_t − d_t): how far off, relative to demand, on average (%);
//! - timeshare τ_U = 100/T · #{t : s_t < d_t}, τ_O likewise (% of time);
//! - instability k = 100/(T−1) · Σ_{t≥2} min(|sgn Δs_t − sgn Δd_t|, 1): the
//!   share of steps in which supply and demand do not move the same way (%);
//! - jitter j = (E_S − E_D) / T, where E_S and E_D count the steps in which
//!   supply and demand change: positive when supply oscillates more than
//!   demand, negative when it fails to follow (adaptations per step).
//!
//! ε is one instance: demand is a whole number of instances, and dividing by
//! it when it is zero would make one idle instance count as infinitely much.
//! All sums are running ones, so a trace of any length costs constant memory.

use serde::Serialize;

/// The ε in the accuracy metrics, in instances.
const EPSILON: f64 = 1.0;

#[derive(Debug, Clone, Default)]
pub struct Elasticity {
    steps: u64,
    under: f64,
    over: f64,
    under_steps: u64,
    over_steps: u64,
    unstable: u64,
    supply_changes: u64,
    demand_changes: u64,
    previous: Option<(u32, u32)>,
    load: f64,
    unserved: f64,
}

/// The metrics of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ElasticityMetrics {
    pub steps: u64,
    pub theta_u: f64,
    pub theta_o: f64,
    pub tau_u: f64,
    pub tau_o: f64,
    pub instability: f64,
    pub jitter: f64,
    /// The SLO proxy: the fraction of all load that found no capacity.
    pub unserved: f64,
}

impl Elasticity {
    /// One step: demand and supply in instances, the load, and how much
    /// load the running instances could take at most.
    pub fn observe(&mut self, demand: u32, supply: u32, load: f64, can_serve: f64) {
        let (d, s) = (demand as f64, supply as f64);
        self.steps += 1;
        self.under += (d - s).max(0.0) / d.max(EPSILON);
        self.over += (s - d).max(0.0) / d.max(EPSILON);
        self.under_steps += (supply < demand) as u64;
        self.over_steps += (supply > demand) as u64;
        if let Some((pd, ps)) = self.previous {
            let sd = (demand as i64 - pd as i64).signum();
            let ss = (supply as i64 - ps as i64).signum();
            self.unstable += (sd != ss) as u64;
            self.demand_changes += (sd != 0) as u64;
            self.supply_changes += (ss != 0) as u64;
        }
        self.previous = Some((demand, supply));
        self.load += load;
        self.unserved += (load - can_serve).max(0.0);
    }

    pub fn finish(&self) -> ElasticityMetrics {
        let t = self.steps.max(1) as f64;
        ElasticityMetrics {
            steps: self.steps,
            theta_u: 100.0 * self.under / t,
            theta_o: 100.0 * self.over / t,
            tau_u: 100.0 * self.under_steps as f64 / t,
            tau_o: 100.0 * self.over_steps as f64 / t,
            instability: if self.steps > 1 { 100.0 * self.unstable as f64 / (self.steps - 1) as f64 } else { 0.0 },
            jitter: (self.supply_changes as f64 - self.demand_changes as f64) / t,
            unserved: if self.load > 0.0 { self.unserved / self.load } else { 0.0 },
        }
    }
}

/// Instances the load needs: `ceil(load / capacity)`.
pub fn demand(load: f64, capacity: f64) -> u32 {
    (load / capacity).ceil().clamp(0.0, u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(d: &[u32], s: &[u32]) -> ElasticityMetrics {
        let mut e = Elasticity::default();
        for (&d, &s) in d.iter().zip(s) {
            e.observe(d, s, d as f64 * 10.0, s as f64 * 10.0);
        }
        e.finish()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfect_supply_scores_zero() {
        let m = run(&[1, 2, 3, 2], &[1, 2, 3, 2]);
        assert_eq!((m.theta_u, m.theta_o, m.tau_u, m.tau_o, m.instability, m.jitter, m.unserved), (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn hand_computed_case() {
        // d: 2 4 4 1, s: 2 2 5 3.
        // under: t2 (4-2)/4 = 0.5 → θ_U = 100·0.5/4 = 12.5; τ_U = 25.
        // over: t3 (5-4)/4 = 0.25, t4 (3-1)/1 = 2 → θ_O = 100·2.25/4 = 56.25; τ_O = 50.
        // Δd signs: +, 0, −; Δs signs: 0, +, − → unlike at t2 and t3: k = 100·2/3.
        // E_D = 2, E_S = 2 → j = 0.
        // Load 20,40,40,10 vs served 20,20,50,30: unserved 20 of 110.
        let m = run(&[2, 4, 4, 1], &[2, 2, 5, 3]);
        assert!(close(m.theta_u, 12.5) && close(m.theta_o, 56.25), "{m:?}");
        assert!(close(m.tau_u, 25.0) && close(m.tau_o, 50.0));
        assert!(close(m.instability, 200.0 / 3.0));
        assert!(close(m.jitter, 0.0));
        assert!(close(m.unserved, 20.0 / 110.0));
    }

    #[test]
    fn jitter_sign_tells_oscillation_from_inertia() {
        // Flat demand, supply flapping: three changes in four steps.
        assert!(close(run(&[2, 2, 2, 2], &[2, 3, 2, 3]).jitter, 0.75));
        // Demand moving, supply flat: the supply does not follow.
        assert!(close(run(&[1, 2, 3, 4], &[2, 2, 2, 2]).jitter, -0.75));
    }

    #[test]
    fn idle_capacity_at_zero_demand_counts_against_epsilon() {
        let m = run(&[0, 0], &[1, 1]);
        assert!(close(m.theta_o, 100.0), "one idle instance per step over ε = 1: {m:?}");
        assert_eq!(demand(0.0, 5.0), 0);
        assert_eq!(demand(10.0, 5.0), 2);
        assert_eq!(demand(10.1, 5.0), 3);
    }
}
