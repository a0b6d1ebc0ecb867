//! Spot mix: an on-demand base plus a spot share of the rest, as in an EC2
//! Auto Scaling group's mixed-instances policy, and back to on demand when
//! spot capacity keeps being taken away.
//!
//! Of the members the verdict leaves, the first `on_demand_base` are on
//! demand; of the rest, `spot_percent` (rounded) are spot. The price of the
//! mix is the cost per hour, and the placement tells the provider how to buy
//! it (the kind is the one an earlier `price-catalog` chose, else the pool's).
//!
//! Interruptions: the rule reads the mean of a metric of spot interruptions
//! per spot instance-hour (`interruption_metric`; the simulator supplies
//! `spot_interruption_rate`, a live pool gets it from Prometheus or a push).
//! Above `max_interruption_rate` it buys everything on demand, and stays
//! there until the rate falls below `recover_below` (half the maximum by
//! default): without that gap it would flap between the two each time the
//! rate wobbles around the limit. The fallback is kept in the rule's state,
//! so a restart or a hot swap does not forget it. No interruption data: the
//! rule keeps its last mode and says the data is missing.

use scalewise_sdk::prelude::*;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Members always bought on demand.
    #[serde(default)]
    pub on_demand_base: u32,
    /// Percent of the members above the base bought as spot.
    #[serde(default = "default_percent")]
    pub spot_percent: f64,
    /// The metric of spot interruptions per spot instance-hour.
    #[serde(default = "default_metric")]
    pub interruption_metric: String,
    /// Above this rate, buy on demand only.
    #[serde(default = "default_max_rate")]
    pub max_interruption_rate: f64,
    /// Back to spot below this rate; half of the maximum if unset.
    #[serde(default)]
    pub recover_below: Option<f64>,
}

fn default_percent() -> f64 {
    70.0
}
fn default_metric() -> String {
    "spot_interruption_rate".into()
}
fn default_max_rate() -> f64 {
    0.05
}

impl Default for Settings {
    fn default() -> Self {
        Self { on_demand_base: 0, spot_percent: default_percent(), interruption_metric: default_metric(), max_interruption_rate: default_max_rate(), recover_below: None }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct State {
    /// Buying on demand only because interruptions ran high.
    pub fallback: bool,
}

pub struct SpotMix;

impl CostRule for SpotMix {
    type Settings = Settings;
    type State = State;

    fn validate(s: &Settings) -> Result<(), String> {
        if !(0.0..=100.0).contains(&s.spot_percent) {
            return Err(format!("spot_percent: must be in [0, 100], got {}", s.spot_percent));
        }
        if !(s.max_interruption_rate.is_finite() && s.max_interruption_rate >= 0.0) {
            return Err(format!("max_interruption_rate: must be a rate ≥ 0, got {}", s.max_interruption_rate));
        }
        if let Some(r) = s.recover_below
            && !(r.is_finite() && r >= 0.0 && r <= s.max_interruption_rate)
        {
            return Err(format!("recover_below: must be between 0 and max_interruption_rate ({}), got {r}", s.max_interruption_rate));
        }
        Ok(())
    }

    fn evaluate(input: &CostInput, s: &Settings, state: &mut State) -> Result<CostDecision, String> {
        let members = input.proposed;
        let kind = input.instance_kind().ok_or("no instance kind to price: name the pool's `cost.kind`, or put price-catalog before this rule")?;
        let kind_name = Some(kind.name.clone());
        let rate = input.metric(&s.interruption_metric).and_then(|m| series::mean(m.values()));
        let recover = s.recover_below.unwrap_or(s.max_interruption_rate / 2.0);
        let rate_note = match rate {
            Some(r) if r > s.max_interruption_rate => {
                state.fallback = true;
                format!("spot interruptions {r:.3}/h over {:.3}/h: on demand only", s.max_interruption_rate)
            }
            Some(r) if state.fallback && r >= recover => format!("spot interruptions {r:.3}/h not yet below {recover:.3}/h: still on demand only"),
            Some(r) => {
                state.fallback = false;
                format!("spot interruptions {r:.3}/h")
            }
            None => format!("no `{}` data{}", s.interruption_metric, if state.fallback { ": still on demand only" } else { "" }),
        };
        let Some(spot_price) = kind.spot_hourly else {
            let cost = f64::from(members) * kind.on_demand_hourly;
            return Ok(CostDecision { placement: Some(Placement::on_demand(kind_name, members)), ..CostDecision::new(Verdict::Allow, cost, format!("{} has no spot price: {members} on demand", kind.label())) });
        };
        let spot = if state.fallback { 0 } else { (f64::from(members.saturating_sub(s.on_demand_base)) * s.spot_percent / 100.0).round() as u32 };
        let on_demand = members - spot;
        let cost = f64::from(on_demand) * kind.on_demand_hourly + f64::from(spot) * spot_price;
        let reason = format!("{on_demand} on demand + {spot} spot of {} at {cost:.2}/h; {rate_note}", kind.label());
        Ok(CostDecision { placement: Some(Placement { kind: kind_name, on_demand, spot }), ..CostDecision::new(Verdict::Allow, cost, reason) })
    }
}

export_cost_rule!(SpotMix);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::{run_cost_rule, validate_cost_rule};

    fn input(proposed: u32, rate: Option<f64>, settings: &str, state: Option<Vec<u8>>) -> CostInput {
        CostInput {
            pool: Pool { id: "p".into(), running: 2, booting: 0, min: 0, max: 50 },
            proposed,
            kind: Some("m".into()),
            catalog: vec![InstanceKind { name: "m".into(), on_demand_hourly: 1.0, spot_hourly: Some(0.3), ..Default::default() }],
            metrics: rate.map(|r| MetricWindow::new("spot_interruption_rate", vec![Sample { at: 0, value: r }])).into_iter().collect(),
            settings: settings.into(),
            state,
            ..Default::default()
        }
    }

    #[test]
    fn a_base_on_demand_and_a_share_of_the_rest_on_spot() {
        let out = run_cost_rule::<SpotMix>(&input(12, Some(0.01), r#"{"on_demand_base": 2, "spot_percent": 70}"#, None)).unwrap();
        let p = out.placement.unwrap();
        // 10 above the base, 7 of them spot.
        assert_eq!((p.on_demand, p.spot), (5, 7));
        assert!((out.cost_per_hour - (5.0 + 7.0 * 0.3)).abs() < 1e-9);
        assert!(out.reason.starts_with("5 on demand + 7 spot of m"), "{}", out.reason);
    }

    #[test]
    fn high_interruptions_fall_back_until_well_below_the_limit() {
        let s = r#"{"max_interruption_rate": 0.1}"#;
        let step = |rate, state| run_cost_rule::<SpotMix>(&input(10, rate, s, state)).unwrap();
        let calm = step(Some(0.02), None);
        assert_eq!(calm.placement.as_ref().unwrap().spot, 7);
        let storm = step(Some(0.3), calm.state);
        assert_eq!(storm.placement.as_ref().unwrap().spot, 0);
        assert!(storm.reason.contains("on demand only"), "{}", storm.reason);
        // 0.07 is under the limit but not under half of it: stay on demand.
        let wobble = step(Some(0.07), storm.state);
        assert_eq!(wobble.placement.as_ref().unwrap().spot, 0);
        // Missing data keeps the mode.
        let blind = step(None, wobble.state);
        assert_eq!(blind.placement.as_ref().unwrap().spot, 0);
        assert!(blind.reason.contains("no `spot_interruption_rate` data"), "{}", blind.reason);
        let back = step(Some(0.04), blind.state);
        assert_eq!(back.placement.as_ref().unwrap().spot, 7);
    }

    #[test]
    fn a_kind_without_spot_is_all_on_demand_and_bad_settings_are_named() {
        let mut i = input(4, None, "{}", None);
        i.catalog[0].spot_hourly = None;
        let out = run_cost_rule::<SpotMix>(&i).unwrap();
        assert_eq!(out.placement.unwrap().on_demand, 4);
        assert!(validate_cost_rule::<SpotMix>(r#"{"spot_percent": 120}"#).unwrap_err().starts_with("spot_percent"));
        assert!(validate_cost_rule::<SpotMix>(r#"{"max_interruption_rate": 0.1, "recover_below": 0.2}"#).unwrap_err().starts_with("recover_below"));
    }
}
