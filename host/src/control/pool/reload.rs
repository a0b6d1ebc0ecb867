//! A config reload reaching a running pool: what it changed, in words, and
//! what of the pool's memory the new settings keep or invalidate. Kept
//! apart from the loop because it runs between two ticks and touches
//! everything the loop owns.

use super::{Advisor, PoolLoop, PoolPlan, PoolSettings};

impl PoolLoop {
    /// Take a reload's settings, keeping the pool's memory (cooldowns,
    /// stabilization, the books, a hold, a pause) except what the change
    /// invalidates: the state of a policy the pool no longer uses, and a
    /// pending approval the new settings would not ask for. Says what it
    /// forgot.
    pub(super) fn reconfigure(&mut self, next: PoolSettings) -> Vec<String> {
        let plan = &next.plan;
        let used: std::collections::BTreeSet<&str> = plan.policies().collect();
        let mut forgot = Vec::new();
        let dropped: Vec<String> = self.memory.states.keys().filter(|k| !used.contains(k.as_str())).cloned().collect();
        for id in dropped {
            self.memory.states.remove(&id);
            forgot.push(format!("the state of `{id}`, which the pool no longer uses"));
        }
        if let Some(p) = &self.pending {
            let objected = p.reason.is_some() && next.advisor.as_ref().is_some_and(|a| a.reviews(p.from, p.to));
            let asked = objected || next.approval_above.is_some_and(|n| p.from.abs_diff(p.to) > n);
            if !asked || p.to < plan.min || p.to > plan.max {
                forgot.push(format!("the pending approval #{} ({} → {}), which the new settings would not ask for", p.seq, p.from, p.to));
                self.pending = None;
            }
        }
        // The target and the lease gate are the pool's own; the advisor
        // keeps what it heard and its calls this hour.
        let mut next = next;
        if let (Some(new), Some(old)) = (next.advisor.as_mut(), self.s.advisor.as_ref()) {
            new.adopt(old);
        }
        self.s = PoolSettings { target: self.s.target.clone(), leader: self.s.leader.clone(), ..next };
        tracing::info!(pool = %self.s.plan.id, forgot = ?forgot, "reconfigured by a config reload");
        forgot
    }
}

/// What a reload changed in how a pool decides, in words.
pub(super) fn changes(old: &PoolSettings, new: &PoolSettings) -> Vec<String> {
    let (a, b) = (&old.plan, &new.plan);
    let mut out = Vec::new();
    if (a.min, a.max) != (b.min, b.max) {
        out.push(format!("bounds {}..{} -> {}..{}", a.min, a.max, b.min, b.max));
    }
    if old.interval != new.interval {
        out.push(format!("interval {} -> {} ms", old.interval.as_millis(), new.interval.as_millis()));
    }
    let set = |p: &PoolPlan| p.describe();
    if set(a) != set(b) {
        out.push(format!("{} -> {}", set(a), set(b)));
    }
    if a.candidate.as_deref().map(set) != b.candidate.as_deref().map(set) {
        out.push(format!("candidate {} -> {}", a.candidate.as_deref().map_or("none".into(), set), b.candidate.as_deref().map_or("none".into(), set)));
    }
    if a.guardrails != b.guardrails {
        out.push("guardrails".into());
    }
    if a.cost != b.cost || a.limits != b.limits {
        out.push("cost or limits".into());
    }
    if (old.dry_run, old.approval_above, old.approval_ttl) != (new.dry_run, new.approval_above, new.approval_ttl) {
        out.push("dry run or approval".into());
    }
    if old.advisor.as_ref().map(Advisor::describe) != new.advisor.as_ref().map(Advisor::describe) {
        out.push(format!("advisor {} -> {}", old.advisor.as_ref().map_or("none".into(), Advisor::describe), new.advisor.as_ref().map_or("none".into(), Advisor::describe)));
    }
    if old.metrics.iter().map(|m| (&m.name, &m.query, m.window, m.step)).ne(new.metrics.iter().map(|m| (&m.name, &m.query, m.window, m.step))) {
        out.push("metrics".into());
    }
    out
}
