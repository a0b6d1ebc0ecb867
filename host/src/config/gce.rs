//! Config of the `gce` provider: one Compute Engine managed instance group.
//!
//! Credentials are not configured here: the Google client takes them from
//! the standard chain (Application Default Credentials), as every Google
//! tool does, so nothing secret sits in the config text.

use serde::Deserialize;

/// `provider = { kind = "gce", ... }`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GceProvider {
    pub project: String,
    /// A zonal group's zone; give this or `region`.
    #[serde(default)]
    pub zone: Option<String>,
    /// A regional group's region; give this or `zone`.
    #[serde(default)]
    pub region: Option<String>,
    /// The managed instance group's name.
    pub name: String,
    /// A Compute API endpoint instead of `https://compute.googleapis.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Tries per call (429, 5xx, broken connections).
    #[serde(default = "super::cloud::default_attempts")]
    pub max_attempts: u32,
    /// Seconds one request may take.
    #[serde(default = "super::cloud::default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Seconds a resize or deletion may take to reach `DONE`.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_secs: u64,
    /// Instances per page of the group's listing.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Seconds scale-ups stay held after instances could not be created.
    #[serde(default = "super::cloud::default_cooldown")]
    pub quota_cooldown_secs: u64,
}

fn default_operation_timeout() -> u64 {
    600
}
fn default_page_size() -> u32 {
    500
}

impl GceProvider {
    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        for (field, value) in [("project", Some(&self.project)), ("name", Some(&self.name)), ("zone", self.zone.as_ref()), ("region", self.region.as_ref())] {
            if let Some(v) = value
                && (v.trim().is_empty() || v.contains('/'))
            {
                p.push(format!("{at}.{field}: must be a plain, non-empty name, got `{v}`"));
            }
        }
        if self.zone.is_some() == self.region.is_some() {
            p.push(format!("{at}: give `zone` (a zonal group) or `region` (a regional group), one of the two"));
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("https://") || e.starts_with("http://"))
        {
            p.push(format!("{at}.endpoint: must start with https:// or http://, got `{e}`"));
        }
        super::cloud::within(&mut p, at, "max_attempts", self.max_attempts, 1, 20);
        super::cloud::within(&mut p, at, "request_timeout_secs", self.request_timeout_secs, 1, 600);
        super::cloud::within(&mut p, at, "operation_timeout_secs", self.operation_timeout_secs, 1, 7200);
        super::cloud::within(&mut p, at, "quota_cooldown_secs", self.quota_cooldown_secs, 0, 86_400);
        if !(1..=500).contains(&self.page_size) {
            p.push(format!("{at}.page_size: Compute pages hold 1 to 500 instances, got {}", self.page_size));
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let g: GceProvider = serde_json::from_value(serde_json::json!({
            "project": "", "name": "a/b", "zone": "z", "region": "r", "endpoint": "compute.googleapis.com",
            "max_attempts": 0, "request_timeout_secs": 0, "operation_timeout_secs": 0, "page_size": 501, "quota_cooldown_secs": u64::MAX
        }))
        .unwrap();
        let got = g.problems("pools[0].provider");
        for field in ["project:", "name:", ":", "endpoint:", "max_attempts:", "request_timeout_secs:", "operation_timeout_secs:", "page_size:", "quota_cooldown_secs:"] {
            assert!(got.iter().any(|p| p.starts_with(&format!("pools[0].provider{}{field}", if field == ":" { "" } else { "." }))), "{field} not named in {got:#?}");
        }
        assert_eq!(got.len(), 9, "{got:#?}");
        let ok: GceProvider = serde_json::from_value(serde_json::json!({"project": "p", "region": "europe-west1", "name": "web"})).unwrap();
        assert!(ok.problems("p").is_empty());
    }
}
