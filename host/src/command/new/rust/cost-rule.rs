//! {{name}}: a cost rule. Clamps a proposed capacity to what an hourly
//! spending cap pays for, at the pool's instance kind's on-demand price.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The most this pool may cost per hour.
    pub max_hourly: f64,
}

pub struct Policy;

impl CostRule for Policy {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if !(s.max_hourly.is_finite() && s.max_hourly >= 0.0) {
            return Err(format!("max_hourly: must be zero or more, got {}", s.max_hourly));
        }
        Ok(())
    }

    fn evaluate(input: &CostInput, s: &Settings, _: &mut ()) -> Result<CostDecision, String> {
        let kind = input.kind.as_deref().ok_or("the pool names no instance kind")?;
        let price = input.catalog.iter().find(|k| k.name == kind).map(|k| k.on_demand_hourly).ok_or_else(|| format!("{kind} is not in the catalog"))?;
        let cost = price * input.proposed as f64;
        if cost <= s.max_hourly {
            return Ok(CostDecision::new(Verdict::Allow, cost, format!("{} x {kind} costs {}/h, within {}/h", input.proposed, num(cost), num(s.max_hourly))));
        }
        let affordable = if price > 0.0 { (s.max_hourly / price).floor() as u32 } else { input.proposed };
        Ok(CostDecision::new(Verdict::Clamp(affordable), price * affordable as f64, format!("{} x {kind} would cost {}/h, over {}/h: {affordable}", input.proposed, num(cost), num(s.max_hourly))))
    }
}

export_cost_rule!(Policy);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::run_cost_rule;

    #[test]
    fn clamps_to_what_the_cap_pays_for() {
        let input = CostInput {
            pool: Pool { id: "p".into(), running: 2, booting: 0, min: 0, max: 50 },
            proposed: 10,
            kind: Some("m5".into()),
            catalog: vec![InstanceKind { name: "m5".into(), on_demand_hourly: 0.5, ..Default::default() }],
            settings: r#"{"max_hourly": 3}"#.into(),
            ..Default::default()
        };
        assert_eq!(run_cost_rule::<Policy>(&input).unwrap().verdict, Verdict::Clamp(6));
    }
}
