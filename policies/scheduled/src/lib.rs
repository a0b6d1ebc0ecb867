//! Scheduled: capacity by the calendar.
//!
//! Some load is known in advance: office hours, a nightly batch, a quiet
//! weekend, a maintenance window. Each rule here names a period with a
//! cron expression (read in the policy's time zone, so "08:00" stays 08:00
//! across daylight-saving changes), optionally bounded by civil dates, and
//! what holds during it: a floor (`min`), a ceiling (`max`), or a `fixed`
//! capacity.
//!
//! ```toml
//! timezone = "Europe/Berlin"                      # default UTC
//! rules = [
//!   { name = "office", cron = "* 8-17 * * MON-FRI", min = 10 },
//!   { name = "weekend", cron = "* * * * SAT,SUN", max = 4 },
//!   { name = "backup", cron = "0-29 2 * * SUN", fixed = 0 },
//!   { name = "black-friday", cron = "* * * * *", from = "2026-11-27T00:00", to = "2026-11-30T00:00", min = 50 },
//! ]
//! ```
//!
//! The proposal is the current capacity raised to the highest active floor
//! and lowered to the lowest active ceiling (a ceiling below a floor wins,
//! and the reason says so); an active `fixed` rule overrides both (the first
//! listed, if several). With no rule active it abstains: the calendar has no
//! opinion, the other experts decide. Under `safest` a ceiling is a vote to
//! scale down that a busier expert outvotes; a floor always carries.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use scalewise_sdk::prelude::*;

pub mod cron;
use cron::{Cron, Moment};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub cron: String,
    /// Civil date-times in the policy's time zone bounding the rule
    /// (`from` inclusive, `to` exclusive).
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub min: Option<u32>,
    #[serde(default)]
    pub max: Option<u32>,
    #[serde(default)]
    pub fixed: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "d_tz")]
    pub timezone: String,
    pub rules: Vec<Rule>,
}

fn d_tz() -> String {
    "UTC".into()
}

/// A rule, parsed.
struct Compiled<'a> {
    rule: &'a Rule,
    cron: Cron,
    from: Option<DateTime>,
    to: Option<DateTime>,
}

fn compile(s: &Settings) -> Result<(TimeZone, Vec<Compiled<'_>>), String> {
    let tz = TimeZone::get(&s.timezone).map_err(|e| format!("timezone: `{}` is not a time zone of the tz database ({e}); use a name such as Europe/Berlin or UTC", s.timezone))?;
    let civil = |i: usize, field: &str, v: &Option<String>| -> Result<Option<DateTime>, String> {
        v.as_deref().map(|t| t.parse::<DateTime>().map_err(|e| format!("rules[{i}].{field}: `{t}` is not a date-time like 2026-11-27T08:00 ({e})"))).transpose()
    };
    let mut rules = Vec::with_capacity(s.rules.len());
    for (i, rule) in s.rules.iter().enumerate() {
        let cron = Cron::parse(&rule.cron).map_err(|e| format!("rules[{i}].cron: {e}"))?;
        let (from, to) = (civil(i, "from", &rule.from)?, civil(i, "to", &rule.to)?);
        if let (Some(f), Some(t)) = (from, to)
            && f >= t {
                return Err(format!("rules[{i}]: `from` {f} is not before `to` {t}"));
            }
        match (rule.min, rule.max, rule.fixed) {
            (None, None, None) => return Err(format!("rules[{i}] ({}): set `min`, `max` (or both) or `fixed`", rule.name)),
            (Some(_) | None, Some(_) | None, Some(_)) if rule.min.is_some() || rule.max.is_some() => {
                return Err(format!("rules[{i}] ({}): `fixed` stands alone; drop `min`/`max`", rule.name));
            }
            (Some(lo), Some(hi), None) if lo > hi => return Err(format!("rules[{i}] ({}): min {lo} is above max {hi}", rule.name)),
            _ => {}
        }
        rules.push(Compiled { rule, cron, from, to });
    }
    Ok((tz, rules))
}

pub struct Scheduled;

impl Strategy for Scheduled {
    type Settings = Settings;
    type State = ();

    fn validate(s: &Settings) -> Result<(), String> {
        if s.rules.is_empty() {
            return Err("rules: add at least one rule (name, cron, and min, max or fixed)".into());
        }
        compile(s).map(|_| ())
    }

    fn evaluate(input: &StrategyInput, s: &Settings, _: &mut ()) -> Result<Proposal, String> {
        let (tz, rules) = compile(s)?;
        let now = Timestamp::from_millisecond(input.now).map_err(|e| format!("now {} is not a time: {e}", input.now))?.to_zoned(tz);
        let moment = Moment {
            minute: now.minute() as u32,
            hour: now.hour() as u32,
            day: now.day() as u32,
            month: now.month() as u32,
            weekday: now.weekday().to_sunday_zero_offset() as u32,
        };
        let civil = now.datetime();
        let active: Vec<&Rule> = rules
            .iter()
            .filter(|c| c.cron.matches(moment) && c.from.is_none_or(|f| civil >= f) && c.to.is_none_or(|t| civil < t))
            .map(|c| c.rule)
            .collect();
        let when = format!("{} {}", now.strftime("%a %Y-%m-%d %H:%M"), s.timezone);
        if active.is_empty() {
            return Err(no_opinion(format!("{when}: no schedule rule is active")));
        }
        let current = f64::from(input.pool.capacity());
        if let Some(rule) = active.iter().find(|r| r.fixed.is_some()) {
            let fixed = f64::from(rule.fixed.expect("found"));
            let desired = input.pool.clamp(fixed);
            return Ok(Proposal::new(desired, 1.0, format!("{when}: `{}` fixes the pool at {fixed}{}", rule.name, limited(desired, fixed))));
        }
        let floor = active.iter().filter_map(|r| r.min.map(|m| (m, r))).max_by_key(|(m, _)| *m);
        let ceiling = active.iter().filter_map(|r| r.max.map(|m| (m, r))).min_by_key(|(m, _)| *m);
        let mut want = current;
        let mut why = Vec::new();
        if let Some((m, r)) = floor {
            want = want.max(f64::from(m));
            why.push(format!("`{}` floor {m}", r.name));
        }
        if let Some((m, r)) = ceiling {
            if floor.is_some_and(|(f, _)| f > m) {
                why.push(format!("`{}` ceiling {m} is below the floor and wins", r.name));
            } else {
                why.push(format!("`{}` ceiling {m}", r.name));
            }
            want = want.min(f64::from(m));
        }
        let desired = input.pool.clamp(want);
        Ok(Proposal::new(desired, 1.0, format!("{when}: {}; {current} -> {desired}{}", why.join(", "), limited(desired, want))))
    }
}

fn limited(desired: f64, wanted: f64) -> String {
    if desired == wanted { String::new() } else { format!(" (the pool's bounds allow {desired})") }
}

export_strategy!(Scheduled);

#[cfg(test)]
mod tests;
