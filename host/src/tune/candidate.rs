//! A candidate: a family's base config with values set at its params'
//! paths, as text a pool can use as it is.
//!
//! Values are written into the pool's own table of the config document,
//! so the candidate that runs is exactly the config `scalewise tune`
//! writes out, parsed and checked by the same `Config::parse_at` as any
//! config. A `settings.<policy>.<key>` path the pool does not set itself
//! starts from the config's global `[policies.settings.<policy>]` value of
//! that key (the pool's table is laid over it); scalar settings of a
//! preset need nothing, since a pool's own settings are laid over its
//! preset's.

use std::path::{Path, PathBuf};

use toml::{Table, Value};

use super::spec::{Domain, Family};
use crate::config::{Config, PoolConfig};

/// One point of a family: a value per param, in the family's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub family: usize,
    pub values: Vec<Value>,
}

/// A family's base, read once.
#[derive(Debug, Clone)]
pub struct Base {
    pub path: PathBuf,
    doc: Table,
    pool: usize,
    pub domains: Vec<Domain>,
}

impl Base {
    pub fn load(f: &Family) -> Result<Self, String> {
        let text = crate::config::read_text(&f.config).map_err(|e| format!("cannot read {}: {e}", f.config.display()))?;
        let mut doc: Table = text.parse().map_err(|e: toml::de::Error| format!("{}: {e}", f.config.display()))?;
        // The policy directory as an absolute path: the written config then
        // works wherever it is saved.
        if let Some(Value::String(dir)) = doc.get_mut("policies").and_then(|p| p.get_mut("dir"))
            && Path::new(dir.as_str()).is_relative()
        {
            let at = f.config.parent().unwrap_or(Path::new(".")).join(&*dir);
            *dir = at.canonicalize().unwrap_or(at).display().to_string();
        }
        let pools = doc.get("pools").and_then(Value::as_array).map_or(0, Vec::len);
        let pool = match &f.pool {
            Some(id) => doc
                .get("pools")
                .and_then(Value::as_array)
                .and_then(|ps| ps.iter().position(|p| p.get("id").and_then(Value::as_str) == Some(id)))
                .ok_or_else(|| format!("{}: no pool `{id}`", f.config.display()))?,
            None if pools == 1 => 0,
            None => return Err(format!("{}: {pools} pools; name one with `pool = \"…\"`", f.config.display())),
        };
        let domains = f.params.iter().map(|p| p.domain()).collect::<Result<_, _>>()?;
        Ok(Base { path: f.config.clone(), doc, pool, domains })
    }

    /// The config text with `values` set at `paths`.
    pub fn text(&self, paths: &[&str], values: &[Value]) -> Result<String, String> {
        let mut doc = self.doc.clone();
        let global = doc.get("policies").and_then(|p| p.get("settings")).and_then(Value::as_table).cloned().unwrap_or_default();
        let pool = doc.get_mut("pools").and_then(Value::as_array_mut).and_then(|ps| ps.get_mut(self.pool)).and_then(Value::as_table_mut).expect("checked at load");
        for (path, value) in paths.iter().zip(values) {
            set(pool, &global, path, value.clone())?;
        }
        Ok(toml::to_string(&doc).expect("a TOML table prints"))
    }

    /// The config at `values`, parsed and checked, and its pool.
    pub fn config(&self, paths: &[&str], values: &[Value]) -> Result<(String, Config, PoolConfig), String> {
        let text = self.text(paths, values)?;
        let config = Config::parse_at(&text, &self.path)?;
        let pool = config.pools[self.pool].clone();
        Ok((text, config, pool))
    }

    /// The values the base config itself has at `paths` (the family's
    /// starting point), where every one is inside its domain.
    pub fn own_values(&self, paths: &[&str]) -> Option<Vec<Value>> {
        let pool = self.doc.get("pools")?.as_array()?.get(self.pool)?.as_table()?;
        let global = self.doc.get("policies").and_then(|p| p.get("settings")).and_then(Value::as_table);
        paths
            .iter()
            .zip(&self.domains)
            .map(|(path, domain)| {
                let v = get(pool, path).or_else(|| path.strip_prefix("settings.").and_then(|rest| global.and_then(|g| get(g, rest))))?;
                contains(domain, &v).then_some(v)
            })
            .collect()
    }
}

fn contains(domain: &Domain, v: &Value) -> bool {
    match (domain, v) {
        (Domain::Float(a, b), Value::Float(x)) => (*a..=*b).contains(x),
        (Domain::Float(a, b), Value::Integer(x)) => (*a..=*b).contains(&(*x as f64)),
        (Domain::Int(a, b), Value::Integer(x)) => (*a..=*b).contains(x),
        (Domain::Choice(c), v) => c.contains(v),
        _ => false,
    }
}

fn get(table: &Table, path: &str) -> Option<Value> {
    let mut parts = path.split('.');
    let mut at = table.get(parts.next()?)?;
    for part in parts {
        at = match at {
            Value::Table(t) => t.get(part)?,
            Value::Array(a) => a.get(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(at.clone())
}

/// Set `path` in the pool's table, creating tables on the way; an array
/// element by its index. A `settings.<policy>.<key>` the pool lacks starts
/// from the global settings' value of that key.
fn set(pool: &mut Table, global: &Table, path: &str, value: Value) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("{path}: an empty part in the path"));
    }
    if parts[0] == "settings" && parts.len() >= 3 {
        let (policy, key) = (parts[1], parts[2]);
        let settings = pool.entry("settings").or_insert_with(|| Value::Table(Table::new()));
        let own = settings.as_table_mut().ok_or_else(|| format!("{path}: the pool's `settings` is not a table"))?;
        let own = own.entry(policy).or_insert_with(|| Value::Table(Table::new())).as_table_mut().ok_or_else(|| format!("{path}: `settings.{policy}` is not a table"))?;
        if !own.contains_key(key)
            && let Some(v) = global.get(policy).and_then(|g| g.get(key))
        {
            own.insert(key.to_owned(), v.clone());
        }
    }
    let mut at: &mut Value = pool.entry(parts[0]).or_insert_with(|| if parts.len() > 1 { Value::Table(Table::new()) } else { value.clone() });
    for (i, part) in parts.iter().enumerate().skip(1) {
        let last = i == parts.len() - 1;
        at = match at {
            Value::Table(t) if !t.contains_key(*part) && part.parse::<usize>().is_ok() => {
                return Err(format!("{path}: the pool's config has no array `{}` to index (a preset's is not copied): write the whole array in the pool's `settings`", parts[..i].join(".")));
            }
            Value::Table(t) => t.entry(*part).or_insert_with(|| if last { value.clone() } else { Value::Table(Table::new()) }),
            Value::Array(a) => {
                let n = a.len();
                let index: usize = part.parse().map_err(|_| format!("{path}: `{part}` indexes an array: give a number"))?;
                a.get_mut(index).ok_or_else(|| format!("{path}: index {index} is past the array's {n} elements"))?
            }
            _ => return Err(format!("{path}: `{}` is not a table or an array", parts[..i].join("."))),
        };
    }
    *at = value;
    Ok(())
}

/// The comment heading a written candidate: where it came from and what
/// was changed.
pub fn header(base: &Path, family: &str, values: &[(String, Value)]) -> String {
    let mut out = format!("# Written by `scalewise tune`: the `{family}` family's config ({}) with\n", base.display());
    for (path, v) in values {
        out.push_str(&format!("#   {path} = {v}\n"));
    }
    out.push_str("# Its policy directory is written as an absolute path.\n\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[policies]
dir = "policies.d"
[policies.settings.target-tracking]
tolerance = 0.1
metrics = [{ name = "utilization", target = 0.7 }]

[[pools]]
id = "p"
min = 1
max = 100
strategies = [{ policy = "target-tracking" }]
provider = { kind = "simulated" }
metrics = [{ name = "utilization", source = "push" }]
"#;

    fn base() -> Base {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, BASE).unwrap();
        let family = Family { name: "f".into(), config: path, pool: None, params: Vec::new() };
        Base::load(&family).unwrap()
    }

    #[test]
    fn values_land_in_the_pool_table_over_the_global_settings() {
        let b = base();
        let paths = ["settings.target-tracking.metrics.0.target", "guardrails.scale_down_stabilization_secs", "max"];
        let (text, config, pool) = b.config(&paths, &[Value::Float(0.85), Value::Integer(120), Value::Integer(50)]).unwrap();
        assert_eq!(pool.max, 50);
        assert_eq!(pool.guardrails.scale_down_stabilization_secs, 120);
        let settings = config.policy_settings();
        let instance = pool.instances.get("target-tracking").expect("the pool's own instance");
        let json: serde_json::Value = serde_json::from_str(&settings[instance]).unwrap();
        assert_eq!(json["metrics"][0]["target"], 0.85);
        assert_eq!(json["tolerance"], 0.1, "the global settings are kept under the pool's: {json}");
        assert!(Config::parse(&text).is_ok(), "the written text is a config: {text}");
    }

    #[test]
    fn bad_paths_say_what_is_wrong() {
        let b = base();
        let err = b.text(&["settings.target-tracking.metrics.3.target"], &[Value::Float(0.5)]).unwrap_err();
        assert!(err.contains("past the array"), "{err}");
        let err = b.text(&["settings.hybrid.weights.0"], &[Value::Float(0.5)]).unwrap_err();
        assert!(err.contains("no array `settings.hybrid.weights`"), "{err}");
        let err = b.text(&["min.x"], &[Value::Float(0.5)]).unwrap_err();
        assert!(err.contains("not a table"), "{err}");
    }
}
