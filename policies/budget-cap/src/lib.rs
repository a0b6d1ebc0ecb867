//! Budget cap: keep a pool's spend inside an hourly cap and a period budget.
//!
//! The affordable hourly rate is the lower of `max_hourly` (if set) and what
//! remains of the period's budget spread over the hours left in the period.
//! A scale-down is always allowed, since it only saves money. A scale-up that
//! the rate cannot pay for is clamped to the most members it can pay for, or
//! denied when that is no more than the pool already runs.
//!
//! A member is priced by the placement an earlier rule chose (its instance
//! kind, and its spot share at the spot price: put `spot-mix` before this
//! rule), else by the pool's kind, on demand or (`spot = true`) at spot.
//! The period is whatever the host's budget says: a rolling number of hours,
//! or the calendar month (`budget_period = "month"` in the pool's cost).

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// A hard cap on the pool's cost per hour.
    #[serde(default)]
    pub max_hourly: Option<f64>,
    /// Price members at the spot price where the catalog has one.
    #[serde(default)]
    pub spot: bool,
}

pub struct BudgetCap;

impl BudgetCap {
    /// The price of one member per hour, averaged over the placement.
    fn hourly_price(input: &CostInput, s: &Settings) -> Result<f64, String> {
        let kind = input.instance_kind().ok_or_else(|| match input.placement.as_ref().and_then(|p| p.kind.as_ref()).or(input.kind.as_ref()) {
            Some(name) => format!("instance kind `{name}` is not in the price catalog"),
            None => "the pool names no instance kind and the catalog has more than one".to_string(),
        })?;
        let spot = kind.spot_hourly.unwrap_or(kind.on_demand_hourly);
        Ok(match &input.placement {
            Some(p) if p.total() > 0 => {
                let share = f64::from(p.spot) / f64::from(p.total());
                share * spot + (1.0 - share) * kind.on_demand_hourly
            }
            _ if s.spot => spot,
            _ => kind.on_demand_hourly,
        })
    }

    fn affordable_hourly(input: &CostInput, s: &Settings) -> Option<(f64, String)> {
        let from_budget = input.budget.filter(|b| b.period_hours > 0.0).map(|b| {
            let hours_left = (b.period_hours - b.elapsed_hours).max(1.0 / 60.0);
            let rate = (b.limit - b.spent).max(0.0) / hours_left;
            (rate, format!("{} left of {} over {}h", fixed(b.limit - b.spent, 2), fixed(b.limit, 2), fixed(hours_left, 1)))
        });
        let from_cap = s.max_hourly.map(|cap| (cap, format!("cap {}/h", fixed(cap, 2))));
        match (from_budget, from_cap) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }
}

impl CostRule for BudgetCap {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        match s.max_hourly {
            Some(cap) if !(cap.is_finite() && cap >= 0.0) => Err(format!("max_hourly: must be zero or more, got {cap}")),
            _ => Ok(()),
        }
    }

    fn evaluate(input: &CostInput, s: &Settings, _: &mut ()) -> Result<CostDecision, String> {
        let price = Self::hourly_price(input, s)?;
        let current = input.pool.capacity();
        let cost = |n: u32| f64::from(n) * price;
        let decision = |verdict, n: u32, reason: String| CostDecision::new(verdict, cost(n), reason);
        let Some((rate, why)) = Self::affordable_hourly(input, s) else {
            return Ok(decision(Verdict::Allow, input.proposed, "no budget or cap configured".into()));
        };
        if input.proposed <= current || cost(input.proposed) <= rate + 1e-9 {
            return Ok(decision(Verdict::Allow, input.proposed, format!("{}/h within {}/h ({why})", fixed(cost(input.proposed), 2), fixed(rate, 2))));
        }
        let affordable = if price > 0.0 { (rate / price + 1e-9).floor() as u32 } else { u32::MAX };
        if affordable <= current {
            return Ok(decision(Verdict::Deny, current, format!("{} members cost {}/h, over {}/h ({why})", input.proposed, fixed(cost(input.proposed), 2), fixed(rate, 2))));
        }
        Ok(decision(Verdict::Clamp(affordable), affordable, format!("{} members cost {}/h; {affordable} fit {}/h ({why})", input.proposed, fixed(cost(input.proposed), 2), fixed(rate, 2))))
    }
}

export_cost_rule!(BudgetCap);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_cost_rule;

    fn run(proposed: u32, budget: Option<Budget>, settings: &str) -> Result<CostOutput, String> {
        run_cost_rule::<BudgetCap>(&CostInput {
            pool: Pool { id: "p".into(), running: 4, booting: 0, min: 1, max: 100 },
            proposed,
            kind: Some("m".into()),
            catalog: vec![InstanceKind {
                name: "m".into(),
                on_demand_hourly: 0.5,
                spot_hourly: Some(0.2),
                vcpus: 2.0,
                memory_gib: 8.0,
                ..Default::default()
            }],
            budget,
            settings: settings.into(),
            ..Default::default()
        })
    }

    #[test]
    fn hourly_cap_clamps_and_denies() {
        let s = r#"{"max_hourly": 5.0}"#;
        assert_eq!(run(8, None, s).unwrap().verdict, Verdict::Allow);
        let out = run(20, None, s).unwrap();
        assert_eq!(out.verdict, Verdict::Clamp(10));
        assert_eq!(out.cost_per_hour, 5.0);
        assert_eq!(run(20, None, r#"{"max_hourly": 1.0}"#).unwrap().verdict, Verdict::Deny);
        assert_eq!(run(2, None, r#"{"max_hourly": 0.1}"#).unwrap().verdict, Verdict::Allow, "scale-down");
    }

    #[test]
    fn period_budget_spreads_what_is_left() {
        // 100 left over 20 hours: 5/h, at 0.5/h per member: 10 members.
        let b = Budget { limit: 300.0, period_hours: 720.0, spent: 200.0, elapsed_hours: 700.0 };
        assert_eq!(run(30, Some(b), "{}").unwrap().verdict, Verdict::Clamp(10));
        // Spot prices stretch it to 25.
        assert_eq!(run(30, Some(b), r#"{"spot": true}"#).unwrap().verdict, Verdict::Clamp(25));
    }

    #[test]
    fn an_earlier_placement_sets_the_price() {
        let b = Budget { limit: 300.0, period_hours: 720.0, spent: 200.0, elapsed_hours: 700.0 };
        let mut input = CostInput {
            pool: Pool { id: "p".into(), running: 4, booting: 0, min: 1, max: 100 },
            proposed: 30,
            kind: Some("m".into()),
            catalog: vec![InstanceKind { name: "m".into(), on_demand_hourly: 0.5, spot_hourly: Some(0.1), ..Default::default() }],
            budget: Some(b),
            placement: Some(Placement { kind: Some("m".into()), on_demand: 10, spot: 20 }),
            settings: "{}".into(),
            ..Default::default()
        };
        // A member costs (10 × 0.5 + 20 × 0.1) / 30 = 0.2333/h; 5/h buys 21.
        assert_eq!(run_cost_rule::<BudgetCap>(&input).unwrap().verdict, Verdict::Clamp(21));
        input.placement = Some(Placement { kind: Some("other".into()), on_demand: 30, spot: 0 });
        assert!(run_cost_rule::<BudgetCap>(&input).unwrap_err().contains("`other`"));
    }

    #[test]
    fn unknown_kind_is_an_error() {
        let mut input = CostInput { proposed: 1, kind: Some("nope".into()), ..Default::default() };
        input.settings = "{}".into();
        assert!(run_cost_rule::<BudgetCap>(&input).unwrap_err().contains("`nope`"));
    }
}
