//! Presets in pool config: expansion, field-by-field overrides, policy
//! instances, and the errors for presets that do not exist or do not fit.

use super::*;
use crate::config::*;

fn pool(extra: &str) -> String {
    format!(
        r#"
[policies.settings.predictive]
metric = "load"
error_weight = 0.1

[[pools]]
id = "web"
min = 1
max = 50
provider = {{ kind = "simulated" }}
{extra}
"#
    )
}

#[test]
fn a_preset_is_the_pool_it_stands_for() {
    let c = Config::parse(&pool("preset = \"cost-optimized\"")).unwrap();
    let p = &c.pools[0];
    let names: Vec<&str> = p.strategies.iter().map(|s| s.policy.as_str()).collect();
    assert_eq!(names, ["predictive", "target-tracking"]);
    assert_eq!(p.consensus.as_deref(), Some("hybrid"));
    assert_eq!((p.guardrails.tolerance, p.guardrails.scale_down_stabilization_secs), (0.0, 0));
    // Every policy the preset configures runs as the preset's instance, its
    // settings the global ones with the preset's laid over.
    assert_eq!(p.instances["predictive"], "predictive@preset.cost-optimized");
    let settings: serde_json::Value = serde_json::from_str(&c.policy_settings()["predictive@preset.cost-optimized"]).unwrap();
    assert_eq!(settings["metric"], "queue_depth", "the preset's metric wins over the global one");
    assert_eq!(settings["error_weight"], 0.1, "global settings the preset leaves alone stay");
    assert_eq!(settings["floor_at_current"], false);
    assert_eq!(c.policy_instances()["hybrid@preset.cost-optimized"], "hybrid");
}

#[test]
fn a_pool_overrides_its_preset_field_by_field() {
    let c = Config::parse(&pool(
        "preset = \"cost-optimized\"\nguardrails = { scale_down_stabilization_secs = 120 }\nsettings.predictive = { per_instance = 40.0 }",
    ))
    .unwrap();
    let p = &c.pools[0];
    assert_eq!(p.guardrails.scale_down_stabilization_secs, 120);
    assert_eq!(p.guardrails.tolerance, 0.0, "the preset's other guardrails stay");
    // Its own predictive settings make its own instance; the rest are the preset's.
    assert_eq!(p.instances["predictive"], "predictive@web");
    assert_eq!(p.instances["target-tracking"], "target-tracking@preset.cost-optimized");
    let settings: serde_json::Value = serde_json::from_str(&c.policy_settings()["predictive@web"]).unwrap();
    assert_eq!((settings["per_instance"].as_f64(), settings["horizon_steps"].as_i64()), (Some(40.0), Some(2)));
}

#[test]
fn pools_on_one_preset_share_its_instances() {
    let text = format!("{}\n[[pools]]\nid = \"api\"\nmin = 1\nmax = 9\nprovider = {{ kind = \"simulated\" }}\npreset = \"hybrid\"", pool("preset = \"hybrid\""));
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.pools[0].instances, c.pools[1].instances);
    assert_eq!(c.instances.len(), 3, "{:?}", c.instances.keys());
}

#[test]
fn own_presets_work_like_built_in_ones() {
    let text = format!("{}\n[presets.calm]\nstrategies = [{{ policy = \"queue-depth\" }}]\nsettings.queue-depth = {{ target_per_worker = 5.0 }}", pool("preset = \"calm\""));
    let c = Config::parse(&text).unwrap();
    assert_eq!(c.pools[0].instances["queue-depth"], "queue-depth@preset.calm");
}

#[test]
fn bad_presets_are_named() {
    let err = Config::parse(&pool("preset = \"cheap\"")).unwrap_err();
    assert!(err.contains("pools[0].preset: no preset `cheap`; use one of") && err.contains("cost-optimized"), "{err}");
    let err = Config::parse(&format!("{}\n[presets.hybrid]\nconsensus = \"median\"", pool("preset = \"aggressive\""))).unwrap_err();
    assert!(err.contains("presets.hybrid: `hybrid` is a built-in preset"), "{err}");
    let err = Config::parse(&format!("{}\n[presets.odd]\nmin = 3", pool("preset = \"odd\""))).unwrap_err();
    assert!(err.contains("presets.odd.min: a preset sets only"), "{err}");
    let err = Config::parse(&pool("preset = \"hybrid\"\nsettings.median = { ties = \"upper\" }")).unwrap_err();
    assert!(err.contains("pools[0].settings.median: the pool uses no policy `median`"), "{err}");
    let err = Config::parse(&pool("preset = \"hybrid\"\nguardrails = { tolerance = 2.0 }")).unwrap_err();
    assert!(err.contains("pools[0].guardrails.tolerance: must be in [0, 1)"), "{err}");
}

#[test]
fn pool_settings_without_a_preset_make_a_pool_instance() {
    let c = Config::parse(&pool("strategies = [{ policy = \"predictive\" }]\nsettings.predictive = { per_instance = 2.0 }")).unwrap();
    assert_eq!(c.pools[0].instances["predictive"], "predictive@web");
    let settings: serde_json::Value = serde_json::from_str(&c.policy_settings()["predictive@web"]).unwrap();
    assert_eq!((settings["metric"].as_str(), settings["per_instance"].as_f64()), (Some("load"), Some(2.0)));
}

#[test]
fn built_in_presets_parse_and_set_only_pool_fields() {
    for (name, _) in BUILT_IN {
        let mut problems = Vec::new();
        check_fields(name, &built_in(name).unwrap(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
    }
}

#[test]
fn the_pool_wins_field_by_field() {
    let mut base: Table = "a = 1\n[g]\nx = 1\ny = 2\n[s.p]\nm = \"q\"\nk = 3".parse().unwrap();
    let over: Table = "[g]\ny = 5\n[s.p]\nk = 4\n[s.r]\nz = 1".parse().unwrap();
    merge(&mut base, &over);
    let want: Table = "a = 1\n[g]\nx = 1\ny = 5\n[s.p]\nm = \"q\"\nk = 4\n[s.r]\nz = 1".parse().unwrap();
    assert_eq!(base, want);
}
