//! Spend accounting and budget alerts.
//!
//! Why the host, not a policy, keeps the books: spend is a fact that builds
//! up over every tick, whichever policy version is loaded, and must survive
//! restarts; policies are pure and see it as input (`budget.spent`). So each
//! tick the pool adds what its capacity cost over the interval, priced by
//! the instance kind and spot share its last action bought, and the total
//! lives in the pool's journalled memory.
//!
//! A budget runs over a period: a rolling number of hours from when the pool
//! first ran, or a calendar month in UTC (`budget_period = "month"`), as
//! cloud bills do. Crossing an alert threshold (by default 50, 80 and 100 %
//! of the budget) fires once per period: it is logged, noted in that tick's
//! decision, shown in the API and the dashboard, and exported as
//! `scalewise_budget_alert{pool, threshold}`.

use scalewise_sdk::{InstanceKind, Placement};
use serde::Serialize;

use super::memory::PoolMemory;

const HOUR_MS: f64 = 3_600_000.0;

/// Cost facts a pool's cost rules see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CostSpec {
    pub kind: Option<String>,
    pub catalog: Vec<InstanceKind>,
    pub budget_limit: Option<f64>,
    pub budget_period: BudgetPeriod,
    /// Percentages of the budget at which an alert fires, ascending.
    pub budget_alerts: Vec<f64>,
}

/// How long a budget lasts before it starts again.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPeriod {
    /// A fixed number of hours from when the pool first ran.
    Hours(f64),
    /// Calendar months in UTC, as cloud bills run.
    Month,
}

impl Default for BudgetPeriod {
    fn default() -> Self {
        BudgetPeriod::Hours(720.0)
    }
}

/// A budget's standing, for the API and the metrics.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    pub limit: f64,
    pub spent: f64,
    /// `spent` as a percentage of `limit`.
    pub percent: f64,
    pub period: BudgetPeriod,
    pub period_start: i64,
    pub period_end: i64,
    /// What the pool's capacity costs per hour now.
    pub hourly: f64,
    /// The configured thresholds, in percent.
    pub alerts: Vec<f64>,
    /// The thresholds crossed in this period.
    pub fired: Vec<f64>,
}

/// The period containing `now`: from the recorded start for a rolling
/// period (or from `now`, before there is one), by calendar for a month.
pub fn period_bounds(period: BudgetPeriod, started: i64, now: i64) -> (i64, i64) {
    match period {
        BudgetPeriod::Hours(h) => {
            let start = if started == 0 { now } else { started };
            (start, start + (h * HOUR_MS) as i64)
        }
        BudgetPeriod::Month => {
            let (y, m, _) = civil_from_days(now.div_euclid(86_400_000));
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(y, m, 1) * 86_400_000, days_from_civil(ny, nm, 1) * 86_400_000)
        }
    }
}

/// What `capacity` members cost per hour, bought as `placement` says.
pub fn hourly(cost: &CostSpec, placement: Option<&Placement>, capacity: u32) -> f64 {
    let name = placement.and_then(|p| p.kind.as_ref()).or(cost.kind.as_ref());
    let kind = match name {
        Some(n) => cost.catalog.iter().find(|k| &k.name == n),
        None if cost.catalog.len() == 1 => cost.catalog.first(),
        None => None,
    };
    let Some(kind) = kind else { return 0.0 };
    let spot_share = placement.filter(|p| p.total() > 0).map_or(0.0, |p| f64::from(p.spot) / f64::from(p.total()));
    let spot_price = kind.spot_hourly.unwrap_or(kind.on_demand_hourly);
    f64::from(capacity) * (spot_share * spot_price + (1.0 - spot_share) * kind.on_demand_hourly)
}

/// Add `hours` of `capacity` to the period's spend, starting a new period
/// when this one is over; returns the alert thresholds crossed just now.
pub fn accrue(cost: &CostSpec, memory: &mut PoolMemory, capacity: u32, hours: f64, now: i64) -> Vec<f64> {
    let (start, end) = period_bounds(cost.budget_period, memory.period_start, now);
    if memory.period_start == 0 || now >= end || (cost.budget_period == BudgetPeriod::Month && memory.period_start != start) {
        let (start, _) = period_bounds(cost.budget_period, 0, now);
        memory.period_start = start;
        memory.spent = 0.0;
        memory.alerts_fired.clear();
    }
    memory.spent += hourly(cost, memory.placement.as_ref(), capacity) * hours;
    let Some(limit) = cost.budget_limit.filter(|l| *l > 0.0) else { return Vec::new() };
    let percent = 100.0 * memory.spent / limit;
    let crossed: Vec<f64> = cost.budget_alerts.iter().copied().filter(|t| percent >= *t && !memory.alerts_fired.contains(t)).collect();
    memory.alerts_fired.extend(&crossed);
    crossed
}

/// The budget's standing now, if the pool has one.
pub fn status(cost: &CostSpec, memory: &PoolMemory, capacity: u32, now: i64) -> Option<BudgetStatus> {
    let limit = cost.budget_limit?;
    let (period_start, period_end) = period_bounds(cost.budget_period, memory.period_start, now);
    Some(BudgetStatus {
        limit,
        spent: memory.spent,
        percent: if limit > 0.0 { 100.0 * memory.spent / limit } else { 0.0 },
        period: cost.budget_period,
        period_start,
        period_end,
        hourly: hourly(cost, memory.placement.as_ref(), capacity),
        alerts: cost.budget_alerts.clone(),
        fired: memory.alerts_fired.clone(),
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-30T12:34:56.789Z`: RFC 3339 in UTC, from Unix milliseconds.
pub fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// The date of a day number, the inverse of [`days_from_civil`].
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scalewise_sdk::InstanceKind;

    const DAY: i64 = 86_400_000;

    #[test]
    fn calendar_arithmetic_round_trips() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn a_month_is_the_calendar_month_in_utc() {
        // 2026-11-23 12:00 UTC lies in November: 30 days.
        let now = days_from_civil(2026, 11, 23) * DAY + DAY / 2;
        let (start, end) = period_bounds(BudgetPeriod::Month, 0, now);
        assert_eq!(start, days_from_civil(2026, 11, 1) * DAY);
        assert_eq!((end - start) / DAY, 30);
        // December runs into the next year; February 2028 has 29 days.
        let (s, e) = period_bounds(BudgetPeriod::Month, 0, days_from_civil(2026, 12, 31) * DAY);
        assert_eq!((s, e), (days_from_civil(2026, 12, 1) * DAY, days_from_civil(2027, 1, 1) * DAY));
        let (s, e) = period_bounds(BudgetPeriod::Month, 0, days_from_civil(2028, 2, 10) * DAY);
        assert_eq!((e - s) / DAY, 29);
    }

    fn spec(period: BudgetPeriod) -> CostSpec {
        CostSpec {
            kind: Some("m".into()),
            catalog: vec![InstanceKind { name: "m".into(), on_demand_hourly: 1.0, spot_hourly: Some(0.25), ..Default::default() }],
            budget_limit: Some(100.0),
            budget_period: period,
            budget_alerts: vec![50.0, 80.0, 100.0],
        }
    }

    #[test]
    fn alerts_fire_once_per_period_and_reset_with_the_month() {
        let cost = spec(BudgetPeriod::Month);
        let mut memory = PoolMemory::default();
        let nov = days_from_civil(2026, 11, 2) * DAY;
        // 10 members at 1.0/h: 10 per hour.
        assert!(accrue(&cost, &mut memory, 10, 4.0, nov).is_empty());
        assert_eq!(accrue(&cost, &mut memory, 10, 1.0, nov + 1), vec![50.0]);
        assert!(accrue(&cost, &mut memory, 10, 0.5, nov + 2).is_empty(), "50 % fires once");
        assert_eq!(accrue(&cost, &mut memory, 10, 5.0, nov + 3), vec![80.0, 100.0]);
        let s = status(&cost, &memory, 10, nov + 3).unwrap();
        assert_eq!((s.spent, s.fired.len()), (105.0, 3));
        // December starts a new budget.
        let dec = days_from_civil(2026, 12, 1) * DAY;
        assert!(accrue(&cost, &mut memory, 10, 1.0, dec).is_empty());
        assert_eq!((memory.spent, memory.period_start, memory.alerts_fired.len()), (10.0, dec, 0));
    }

    #[test]
    fn spend_follows_the_spot_share_bought() {
        let cost = spec(BudgetPeriod::Hours(720.0));
        let half = Placement { kind: Some("m".into()), on_demand: 2, spot: 2 };
        // Half on spot: 8 members × (0.5 × 1.0 + 0.5 × 0.25).
        assert_eq!(hourly(&cost, Some(&half), 8), 5.0);
        assert_eq!(hourly(&cost, None, 8), 8.0);
        let mut memory = PoolMemory { placement: Some(half), ..Default::default() };
        accrue(&cost, &mut memory, 8, 2.0, 1000);
        assert_eq!(memory.spent, 10.0);
    }
}
