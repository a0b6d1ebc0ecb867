//! `scalewise ctl`: a running host's API from the command line, for people
//! (tables, decisions explained in words) and scripts (`--json`).
//!
//! Why a client of the API and nothing else: what an operator does here
//! must be exactly what the dashboard and a script do, with the same
//! checks and the same journal records; the host stays the only place a
//! rule lives. An error is the host's own message, with its status.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::cli::{CtlArgs, CtlCommand};

struct Api {
    base: String,
    token: Option<String>,
    client: reqwest::blocking::Client,
}

impl Api {
    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut r = self.client.request(method.clone(), &url);
        if method != reqwest::Method::GET {
            let Some(t) = &self.token else { bail!("{method} {path} changes something: pass --token or set SCALEWISE_TOKEN (the host's server.token)") };
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let answer = r.send().with_context(|| format!("no answer from {url}; is the host running there (--url, SCALEWISE_URL)?"))?;
        let status = answer.status();
        let value: Value = answer.json().unwrap_or(Value::Null);
        if !status.is_success() {
            let why = value.get("error").and_then(Value::as_str).map(str::to_owned).or_else(|| value.get("problems").map(|p| p.to_string())).unwrap_or_default();
            bail!("{method} {path}: {status}: {why}");
        }
        Ok(value)
    }
    fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, path, None)
    }
    fn post(&self, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        self.call(reqwest::Method::POST, path, body)
    }
}

pub fn run(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(90)).build()?;
    let api = Api { base: args.url.trim_end_matches('/').to_owned(), token: args.token, client };
    let id = |s: &str| s.replace('/', "%2F");
    let value = match &args.command {
        CtlCommand::Pools => api.get("/pools")?,
        CtlCommand::Pool { id: p } => api.get(&format!("/pools/{}", id(p)))?,
        CtlCommand::Decisions { id: p, limit } => api.get(&format!("/pools/{}/decisions?limit={limit}", id(p)))?,
        CtlCommand::Scale { id: p, capacity, hold_secs, reason } => {
            let mut body = json!({ "capacity": capacity, "reason": reason });
            if let Some(h) = hold_secs {
                body["hold_secs"] = json!(h);
            }
            api.post(&format!("/pools/{}/scale", id(p)), Some(body))?
        }
        CtlCommand::Pause { id: p } => api.post(&format!("/pools/{}/pause", id(p)), None)?,
        CtlCommand::Resume { id: p } => api.post(&format!("/pools/{}/resume", id(p)), None)?,
        CtlCommand::Approve { id: p, seq } => api.post(&format!("/pools/{}/approve/{seq}", id(p)), None)?,
        CtlCommand::Policies => api.get("/policies")?,
        CtlCommand::Promote { id: p } => api.post(&format!("/pools/{}/promote", id(p)), None)?,
        CtlCommand::Rollback { id: p } => api.post(&format!("/pools/{}/rollback", id(p)), None)?,
        CtlCommand::Reload => api.post("/config/reload", None)?,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &args.command {
        CtlCommand::Pools => pools(&value),
        CtlCommand::Pool { .. } => pools(&Value::Array(vec![value.clone()])),
        CtlCommand::Decisions { .. } => value.as_array().into_iter().flatten().rev().for_each(explain),
        CtlCommand::Policies => policies(&value),
        CtlCommand::Reload => reload(&value),
        _ => println!("{}", value.get("changed").or_else(|| value.get("status")).and_then(Value::as_str).map_or_else(|| value.to_string(), str::to_owned)),
    }
    Ok(ExitCode::SUCCESS)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        v => v.to_string(),
    }
}

/// Rows under a header, each column as wide as its widest cell.
fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_uppercase()).collect());
    rows.into_iter().for_each(line);
}

fn pools(v: &Value) {
    let rows = v.as_array().into_iter().flatten().map(|p| {
        let mode = if p["paused"] == true { "paused" } else if p["dry_run"] == true { "dry run" } else { "live" };
        let candidate = match &p["candidate"] {
            Value::Null => "-".to_owned(),
            c => format!("{} (differed {}/{})", s(&c["candidate"]), c["differed"], c["ticks"]),
        };
        vec![s(&p["id"]), s(&p["running"]), s(&p["booting"]), s(&p["desired"]), format!("{}..{}", p["min"], p["max"]), mode.into(), s(&p["last_error"]), candidate]
    });
    table(&["pool", "running", "booting", "desired", "bounds", "mode", "last error", "candidate"], rows.collect());
}

fn policies(v: &Value) {
    let rows = v.as_array().into_iter().flatten().map(|p| {
        let serving = &p["serving"];
        let version = if serving.is_null() { "-".into() } else { format!("v{} {}", serving["generation"], &s(&serving["digest"])[..12.min(s(&serving["digest"]).len())]) };
        let used: Vec<String> = p["used_by"].as_array().into_iter().flatten().map(s).collect();
        vec![s(&p["id"]), s(&p["state"]), version, s(&p["calls"]), used.join(","), s(&p["last_load_error"]["message"])]
    });
    table(&["policy", "state", "serving", "calls", "used by", "last load error"], rows.collect());
}

/// One decision in words: what was read, each vote, the advisor's review,
/// questions and answers, the consensus, each clamp, the candidate's
/// shadow, and the action.
fn explain(d: &Value) {
    let cap = d["running"].as_u64().unwrap_or(0) + d["booting"].as_u64().unwrap_or(0);
    println!("#{} {} {} {cap} -> {}", d["seq"], s(&d["at_utc"]), s(&d["mode"]), d["desired"]);
    if let Some(note) = d["lifecycle"].as_str() {
        println!("  lifecycle: {note}");
    }
    for m in d["metrics"].as_array().into_iter().flatten() {
        println!("  read {} = {}{}", s(&m["name"]), s(&m["last"]), m["error"].as_str().map(|e| format!(" ({e})")).unwrap_or_default());
    }
    for v in d["votes"].as_array().into_iter().flatten() {
        // The advisor has no version, and abstaining is not a fault of it.
        let advisor = v["expert"] == "advisor";
        let who = if advisor { s(&v["expert"]) } else { format!("{} v{}", s(&v["expert"]), s(&v["version"])) };
        match v["proposal"].as_object() {
            Some(p) => println!("  vote {who}: {} ({})", s(&p["desired"]), s(&p["reason"])),
            None if v["declined"].as_bool() == Some(true) => println!("  vote {}: declined, no opinion ({})", s(&v["expert"]), s(&v["abstained"])),
            None if advisor => println!("  vote advisor: abstained ({})", s(&v["abstained"])),
            None => println!("  vote {}: failed to answer ({})", s(&v["expert"]), s(&v["abstained"])),
        }
    }
    let a = &d["advisor"];
    if let Some(r) = a["review"].as_object() {
        println!("  advisor review {} -> {}: {} ({})", r["from"], r["to"], s(&r["verdict"]), s(&r["reason"]));
    }
    for q in a["asked"].as_array().into_iter().flatten() {
        println!("  advisor asked: {} ({})", s(&q["question"]), s(&q["why"]));
    }
    for h in a["heard"].as_array().into_iter().flatten() {
        println!("  advisor answered {} in {} ms: {} ({})", s(&h["question"]), h["latency_ms"], s(&h["outcome"]), s(&h["detail"]));
    }
    println!("  consensus {}: {}", s(&d["consensus"]["policy"]), s(&d["consensus"]["explanation"]));
    for c in d["clamps"].as_array().into_iter().flatten() {
        println!("  clamp {}: {} -> {} ({})", s(&c["guardrail"]), c["from"], c["to"], s(&c["reason"]));
    }
    if !d["shadow"].is_null() {
        println!("  candidate (shadow) would decide {}", d["shadow"]["desired"]);
    }
    if let Some(a) = d["action"].as_object() {
        println!("  action {} -> {} by {} ({}): {}", a["from"], a["to"], s(&a["cause"]), s(&a["reason"]), s(&a["outcome"]["status"]));
    }
}

fn reload(v: &Value) {
    let list = |k: &str| v[k].as_array().map(|a| a.iter().map(s).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    println!("reloaded: added [{}], removed [{}], reconfigured [{}], restarted [{}]", list("added"), list("removed"), list("reconfigured"), list("restarted"));
    for f in v["forgot"].as_array().into_iter().flatten() {
        println!("  forgot {}", s(f));
    }
}
