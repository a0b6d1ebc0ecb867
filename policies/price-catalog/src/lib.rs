//! Price catalog: right-size a pool's members and compare providers.
//!
//! The pool's catalog lists instance kinds per provider and region with
//! their on-demand, spot and reserved prices and their vCPUs, memory and
//! GPUs. This rule keeps the kinds that hold one member's needs (`needs`),
//! within the allowed providers and regions, and places the capacity on the
//! cheapest of them by the chosen price (`pricing`). Ties go to the smaller
//! kind, then the name, so the choice is stable from tick to tick.
//!
//! It never changes how many members: its verdict is `allow`, with a
//! placement naming the kind (the provider launches it; `spot-mix` and
//! `budget-cap` after it price by it). Its reason compares providers: the
//! cheapest fitting kind of each, and how much dearer it is.
//!
//! No kind fits: an error naming the needs, so the host treats it as a
//! broken cost rule (no scale-up) and the operator sees why.

use scalewise_sdk::prelude::*;

/// What one member needs.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Needs {
    #[serde(default)]
    pub vcpus: f64,
    #[serde(default)]
    pub memory_gib: f64,
    #[serde(default)]
    pub gpus: u32,
}

/// Which price ranks the kinds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pricing {
    #[default]
    OnDemand,
    /// The spot price, or on demand where a kind has none.
    Spot,
    /// The reserved price, or on demand where a kind has none.
    Reserved,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub needs: Needs,
    /// Providers allowed; empty: any.
    #[serde(default)]
    pub providers: Vec<String>,
    /// Regions allowed; empty: any.
    #[serde(default)]
    pub regions: Vec<String>,
    #[serde(default)]
    pub pricing: Pricing,
}

impl Pricing {
    fn price(self, k: &InstanceKind) -> f64 {
        match self {
            Pricing::OnDemand => k.on_demand_hourly,
            Pricing::Spot => k.spot_hourly.unwrap_or(k.on_demand_hourly),
            Pricing::Reserved => k.reserved_hourly.unwrap_or(k.on_demand_hourly),
        }
    }
}

impl Needs {
    fn held_by(&self, k: &InstanceKind) -> bool {
        k.vcpus >= self.vcpus && k.memory_gib >= self.memory_gib && k.gpus >= self.gpus
    }

    fn words(&self) -> String {
        let mut w = format!("{} vCPU, {} GiB", self.vcpus, self.memory_gib);
        if self.gpus > 0 {
            w += &format!(", {} GPU", self.gpus);
        }
        w
    }
}

/// The kinds that fit, cheapest first (then smaller, then by name).
pub fn ranked<'a>(catalog: &'a [InstanceKind], s: &Settings) -> Vec<&'a InstanceKind> {
    let allowed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    let mut fit: Vec<&InstanceKind> = catalog
        .iter()
        .filter(|k| s.needs.held_by(k) && allowed(&s.providers, &k.provider) && allowed(&s.regions, &k.region))
        .collect();
    fit.sort_by(|a, b| {
        let key = |k: &InstanceKind| (s.pricing.price(k), k.vcpus, k.memory_gib);
        key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal).then_with(|| a.name.cmp(&b.name))
    });
    fit
}

pub struct PriceCatalog;

impl CostRule for PriceCatalog {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        let n = s.needs;
        let size = |x: f64| x.is_finite() && x >= 0.0;
        if !(size(n.vcpus) && size(n.memory_gib)) {
            return Err(format!("needs: vcpus and memory_gib must be numbers ≥ 0, got {} and {}", n.vcpus, n.memory_gib));
        }
        Ok(())
    }

    fn evaluate(input: &CostInput, s: &Settings, _: &mut ()) -> Result<CostDecision, String> {
        let fit = ranked(&input.catalog, s);
        let Some(best) = fit.first() else {
            return Err(format!(
                "no instance kind in the catalog ({} kinds) holds {} per member{}",
                input.catalog.len(),
                s.needs.words(),
                if s.providers.is_empty() && s.regions.is_empty() { String::new() } else { format!(" within providers {:?}, regions {:?}", s.providers, s.regions) }
            ));
        };
        let price = s.pricing.price(best);
        // The cheapest fitting kind of every other provider, for comparison.
        let mut others: Vec<String> = Vec::new();
        let mut seen = vec![best.provider.as_str()];
        for k in &fit[1..] {
            if !seen.contains(&k.provider.as_str()) {
                seen.push(&k.provider);
                let dearer = if price > 0.0 { 100.0 * (s.pricing.price(k) / price - 1.0) } else { 0.0 };
                others.push(format!("{} {:.4}/h (+{dearer:.0}%)", k.label(), s.pricing.price(k)));
            }
        }
        let mut reason = format!("right-sized to {} at {price:.4}/h per member for {}; {} of {} kinds fit", best.label(), s.needs.words(), fit.len(), input.catalog.len());
        if !others.is_empty() {
            reason += &format!("; best elsewhere: {}", others.join(", "));
        }
        Ok(CostDecision {
            verdict: Verdict::Allow,
            cost_per_hour: f64::from(input.proposed) * price,
            reason,
            placement: Some(Placement::on_demand(Some(best.name.clone()), input.proposed)),
        })
    }
}

export_cost_rule!(PriceCatalog);

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::{run_cost_rule, validate_cost_rule};

    #[allow(clippy::too_many_arguments)] // one catalog row per call reads as a table
    fn kind(name: &str, provider: &str, region: &str, od: f64, spot: Option<f64>, vcpus: f64, mem: f64, gpus: u32) -> InstanceKind {
        InstanceKind { name: name.into(), provider: provider.into(), region: region.into(), on_demand_hourly: od, spot_hourly: spot, reserved_hourly: Some(od * 0.6), vcpus, memory_gib: mem, gpus }
    }

    fn catalog() -> Vec<InstanceKind> {
        vec![
            kind("small", "aws", "us-east-1", 0.05, Some(0.02), 1.0, 2.0, 0),
            kind("large", "aws", "us-east-1", 0.10, Some(0.03), 2.0, 8.0, 0),
            kind("large", "aws", "eu-west-1", 0.11, Some(0.025), 2.0, 8.0, 0),
            kind("std-2", "gcp", "us-central1", 0.095, Some(0.04), 2.0, 8.0, 0),
            kind("xl", "aws", "us-east-1", 0.20, None, 4.0, 16.0, 0),
            kind("gpu", "aws", "us-east-1", 1.20, Some(0.5), 8.0, 32.0, 1),
        ]
    }

    fn run(settings: &str) -> Result<CostOutput, String> {
        run_cost_rule::<PriceCatalog>(&CostInput {
            pool: Pool { id: "p".into(), running: 2, booting: 0, min: 0, max: 50 },
            proposed: 10,
            catalog: catalog(),
            settings: settings.into(),
            ..Default::default()
        })
    }

    #[test]
    fn picks_the_cheapest_kind_that_holds_a_member() {
        let out = run(r#"{"needs": {"vcpus": 2, "memory_gib": 4}}"#).unwrap();
        let p = out.placement.unwrap();
        // gcp std-2 at 0.095 beats aws large at 0.10.
        assert_eq!((p.kind.as_deref(), p.on_demand, p.spot), (Some("std-2"), 10, 0));
        assert!((out.cost_per_hour - 0.95).abs() < 1e-9);
        assert_eq!(out.verdict, Verdict::Allow);
        assert!(out.reason.contains("right-sized to std-2 (gcp/us-central1)"), "{}", out.reason);
        assert!(out.reason.contains("best elsewhere: large (aws/us-east-1) 0.1000/h (+5%)"), "{}", out.reason);
        assert!(out.reason.contains("5 of 6 kinds fit"), "{}", out.reason);
    }

    #[test]
    fn pricing_providers_and_regions_change_the_choice() {
        let pick = |s: &str| run(s).unwrap().placement.unwrap().kind.unwrap();
        assert_eq!(pick(r#"{"needs": {"vcpus": 2}, "pricing": "spot"}"#), "large", "eu-west-1 spot 0.025");
        assert_eq!(pick(r#"{"needs": {"vcpus": 2}, "providers": ["aws"], "regions": ["us-east-1"]}"#), "large");
        assert_eq!(pick(r#"{"needs": {"vcpus": 1}}"#), "small");
        assert_eq!(pick(r#"{"needs": {"gpus": 1}, "pricing": "reserved"}"#), "gpu");
    }

    #[test]
    fn nothing_fits_is_an_error_that_names_the_needs() {
        let err = run(r#"{"needs": {"vcpus": 64}}"#).unwrap_err();
        assert!(err.contains("holds 64 vCPU, 0 GiB per member"), "{err}");
        assert!(validate_cost_rule::<PriceCatalog>(r#"{"needs": {"vcpus": -1}}"#).unwrap_err().contains("needs:"));
        assert!(validate_cost_rule::<PriceCatalog>(r#"{"needs": {}, "pricing": "cheap"}"#).unwrap_err().contains("unknown variant"));
    }
}
