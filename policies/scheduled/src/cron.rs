//! Five-field cron expressions: minute, hour, day of month, month, day of
//! week, as crontab(5) reads them.
//!
//! Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a
//! comma-separated list of those; months and weekdays also take names
//! (`JAN`, `MON-FRI`), and Sunday is 0 or 7. As in cron, when both the day
//! of month and the day of week are restricted, a day matching either
//! matches.

/// A parsed expression: the set of allowed values of each field, as bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One civil moment, as the expression sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub minute: u32,
    pub hour: u32,
    /// 1..=31
    pub day: u32,
    /// 1..=12
    pub month: u32,
    /// 0 = Sunday ..= 6 = Saturday
    pub weekday: u32,
}

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, String> {
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let [m, h, dom, mon, dow] = fields[..] else {
            return Err(format!("`{expr}`: a cron expression has five fields (minute hour day-of-month month day-of-week), got {}", fields.len()));
        };
        let minutes = field("minute", m, 0, 59, &[])?;
        let hours = field("hour", h, 0, 23, &[])?;
        let days = field("day of month", dom, 1, 31, &[])?;
        let months = field("month", mon, 1, 12, &MONTHS)?;
        let mut weekdays = field("day of week", dow, 0, 7, &WEEKDAYS)?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & 0x7f; // 7 is Sunday too
        }
        Ok(Cron {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: weekdays as u8,
            days_restricted: dom != "*",
            weekdays_restricted: dow != "*",
        })
    }

    pub fn matches(&self, t: Moment) -> bool {
        let day = self.days & (1 << t.day) != 0;
        let weekday = self.weekdays & (1 << t.weekday) != 0;
        let day_ok = match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            _ => day && weekday,
        };
        self.minutes & (1 << t.minute) != 0 && self.hours & (1 << t.hour) != 0 && self.months & (1 << t.month) != 0 && day_ok
    }
}

/// The bits of the values one field allows.
fn field(name: &str, text: &str, lo: u32, hi: u32, names: &[&str]) -> Result<u64, String> {
    let bad = |why: String| format!("{name} field `{text}`: {why}");
    let value = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            return Ok(i as u32 + if names.len() == 12 { 1 } else { 0 });
        }
        let v: u32 = s.parse().map_err(|_| bad(format!("`{s}` is not a number{}", if names.is_empty() { String::new() } else { format!(" or one of {}", names.join(",")) })))?;
        if v < lo || v > hi {
            return Err(bad(format!("{v} is outside {lo}-{hi}")));
        }
        Ok(v)
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().ok().filter(|s| *s > 0).ok_or_else(|| bad(format!("step `{s}` must be a positive number")))?),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(r)?, hi),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if from > to {
            return Err(bad(format!("range {from}-{to} runs backwards")));
        }
        for v in (from..=to).step_by(step as usize) {
            bits |= 1 << v;
        }
    }
    Ok(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u32, hour: u32, day: u32, month: u32, weekday: u32) -> Moment {
        Moment { minute, hour, day, month, weekday }
    }

    #[test]
    fn business_hours_and_weekends() {
        let c = Cron::parse("* 8-17 * * MON-FRI").unwrap();
        assert!(c.matches(at(0, 8, 23, 11, 1)));
        assert!(c.matches(at(59, 17, 27, 11, 5)));
        assert!(!c.matches(at(0, 18, 23, 11, 1)));
        assert!(!c.matches(at(0, 9, 28, 11, 6)));
        let w = Cron::parse("* * * * sat,7").unwrap();
        assert!(w.matches(at(5, 3, 28, 11, 6)) && w.matches(at(5, 3, 29, 11, 0)) && !w.matches(at(5, 3, 30, 11, 1)));
    }

    #[test]
    fn steps_lists_and_names() {
        let c = Cron::parse("*/15 0,12 1-7/2 JAN-MAR *").unwrap();
        assert!(c.matches(at(45, 12, 5, 2, 3)));
        assert!(!c.matches(at(40, 12, 5, 2, 3)));
        assert!(!c.matches(at(45, 12, 4, 2, 3)));
        assert!(!c.matches(at(45, 12, 5, 4, 3)));
        assert!(Cron::parse("5/20 * * * *").unwrap().matches(at(45, 0, 1, 1, 0)));
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_set() {
        // The 1st of the month, or any Monday.
        let c = Cron::parse("0 0 1 * 1").unwrap();
        assert!(c.matches(at(0, 0, 1, 6, 4)) && c.matches(at(0, 0, 9, 6, 1)) && !c.matches(at(0, 0, 10, 6, 2)));
    }

    #[test]
    fn bad_expressions_say_which_field() {
        let e = |x: &str| Cron::parse(x).unwrap_err();
        assert!(e("* * * *").contains("five fields"));
        assert!(e("60 * * * *").contains("minute field `60`: 60 is outside 0-59"));
        assert!(e("* 9-5 * * *").contains("hour field `9-5`: range 9-5 runs backwards"));
        assert!(e("* * * FOO *").contains("month field `FOO`: `FOO` is not a number or one of JAN"));
        assert!(e("*/0 * * * *").contains("step `0`"));
    }
}
