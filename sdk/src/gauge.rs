//! Numbers a policy reports about itself: a forecast's error, a learnt
//! trust, a model's fitted level.
//!
//! Why not put them in the proposal: they are not part of the decision, and
//! an operator wants them as time series next to the pool's other metrics.
//! A strategy calls [`report`] while it evaluates; the SDK's glue collects
//! what was reported during that call into the output's `gauges`, and the
//! host exports each as `scalewise_policy_gauge{pool, policy, name}`.

use std::cell::RefCell;

use crate::types::Gauge;

thread_local! {
    static REPORTED: RefCell<Vec<Gauge>> = const { RefCell::new(Vec::new()) };
}

/// Report `value` under `name` for this call. Reporting the same name twice
/// keeps the last value. Non-finite values are dropped (a gauge that is NaN
/// says nothing).
pub fn report(name: &str, value: f64) {
    if !value.is_finite() {
        return;
    }
    REPORTED.with_borrow_mut(|g| match g.iter_mut().find(|x| x.name == name) {
        Some(x) => x.value = value,
        None => g.push(Gauge { name: name.to_owned(), value }),
    });
}

/// What was reported since the last take (the glue calls this around each
/// evaluation).
pub(crate) fn take() -> Vec<Gauge> {
    REPORTED.with_borrow_mut(std::mem::take)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_value_wins_and_nan_is_dropped() {
        report("a", 1.0);
        report("b", f64::NAN);
        report("a", 2.0);
        assert_eq!(take(), vec![Gauge { name: "a".into(), value: 2.0 }]);
        assert!(take().is_empty());
    }
}
