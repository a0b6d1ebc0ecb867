//! Presets: a whole way of scaling in one line of pool config.
//!
//! A preset is a named pool fragment: strategies with their weights, a
//! consensus, cost rules, guardrails, and settings for each of those
//! policies. `preset = "cost-optimized"` in a pool lays the pool's own
//! fields over the preset's, table by table: a pool that sets
//! `guardrails.scale_down_stabilization_secs` keeps every other guardrail of
//! the preset, and one that sets `settings.predictive.per_instance` keeps
//! the rest of the preset's predictive settings. Arrays (`strategies`,
//! `cost_rules`, step limits) are replaced whole.
//!
//! Expansion happens on the TOML document before it is typed, so a pool
//! with a preset is, from then on, exactly the spelled-out pool it stands
//! for: the same checks, the same pipeline, the same decisions (a test in
//! `tests/e2e` holds the two side by side). The built-in presets are TOML
//! files in `host/presets/`, compiled into the binary; a config can define
//! its own under `[presets.<name>]`.

use std::collections::BTreeMap;

use toml::{Table, Value};

/// The presets every host knows, by name.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("conservative", include_str!("../../presets/conservative.toml")),
    ("aggressive", include_str!("../../presets/aggressive.toml")),
    ("cost-optimized", include_str!("../../presets/cost-optimized.toml")),
    ("high-performance", include_str!("../../presets/high-performance.toml")),
    ("hybrid", include_str!("../../presets/hybrid.toml")),
];

/// The pool fields a preset may set.
pub const FIELDS: &[&str] = &["strategies", "consensus", "cost_rules", "guardrails", "settings"];

/// A built-in preset's fragment, parsed.
pub fn built_in(name: &str) -> Option<Table> {
    let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
    Some(text.parse::<Table>().expect("built-in presets are valid TOML (tested)"))
}

/// Every preset a config can use: the built-in ones and its own
/// `[presets.*]`. Problems (a malformed preset, a clash with a built-in
/// name, a field a preset may not set) are pushed with their paths.
pub fn catalog(own: Option<&Value>, problems: &mut Vec<String>) -> BTreeMap<String, Table> {
    let mut all: BTreeMap<String, Table> = BUILT_IN.iter().map(|(n, _)| ((*n).to_owned(), built_in(n).expect("listed"))).collect();
    let Some(own) = own else { return all };
    let Some(own) = own.as_table() else {
        problems.push(format!("presets: must be a table of presets, got {}", own.type_str()));
        return all;
    };
    for (name, fragment) in own {
        let at = format!("presets.{name}");
        if all.contains_key(name) {
            problems.push(format!("{at}: `{name}` is a built-in preset; pick another name (a pool can override a built-in preset field by field)"));
            continue;
        }
        let Some(fragment) = fragment.as_table() else {
            problems.push(format!("{at}: must be a table, got {}", fragment.type_str()));
            continue;
        };
        check_fields(&at, fragment, problems);
        all.insert(name.clone(), fragment.clone());
    }
    all
}

fn check_fields(at: &str, fragment: &Table, problems: &mut Vec<String>) {
    for key in fragment.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problems.push(format!("{at}.{key}: a preset sets only {}", FIELDS.join(", ")));
        }
    }
}

/// Lay `over` on `base`: tables merge key by key, anything else replaces.
pub fn merge(base: &mut Table, over: &Table) {
    for (key, value) in over {
        match (base.get_mut(key), value) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Expand the `preset` of every pool in the document `doc`, in place. A pool
/// keeps its `preset` key (so the API can show it); everything else of the
/// preset is merged under the pool's own fields.
pub fn expand(doc: &mut Table, presets: &BTreeMap<String, Table>, problems: &mut Vec<String>) {
    let Some(Value::Array(pools)) = doc.get_mut("pools") else { return };
    for (i, pool) in pools.iter_mut().enumerate() {
        let Some(pool) = pool.as_table_mut() else { continue };
        let Some(name) = pool.get("preset") else { continue };
        let Some(name) = name.as_str() else {
            problems.push(format!("pools[{i}].preset: must be the name of a preset, got {}", name.type_str()));
            continue;
        };
        let Some(fragment) = presets.get(name) else {
            let known: Vec<&str> = presets.keys().map(String::as_str).collect();
            problems.push(format!("pools[{i}].preset: no preset `{name}`; use one of {} or define [presets.{name}]", known.join(", ")));
            continue;
        };
        let mut expanded = fragment.clone();
        merge(&mut expanded, pool);
        *pool = expanded;
    }
}

#[cfg(test)]
mod tests;
