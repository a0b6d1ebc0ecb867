//! Config of the `azure-vmss` provider: one virtual machine scale set.
//!
//! The secret never sits in the config text: a client secret comes from
//! `client_secret_file` or `$AZURE_CLIENT_SECRET`, a workload identity's
//! token from `$AZURE_FEDERATED_TOKEN_FILE` (as Azure's own SDKs read them),
//! and a managed identity needs none. `credential = "auto"` picks the first
//! of those the environment provides.

use std::path::PathBuf;

use serde::Deserialize;

/// `provider = { kind = "azure-vmss", ... }`
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureVmssProvider {
    pub subscription_id: String,
    pub resource_group: String,
    /// The scale set's name.
    pub name: String,
    /// `auto`, `client-secret`, `workload-identity` or `managed-identity`.
    #[serde(default = "default_credential")]
    pub credential: String,
    /// Default: `$AZURE_TENANT_ID`.
    #[serde(default)]
    pub tenant_id: Option<String>,
    /// The app registration's or the user-assigned identity's client id.
    /// Default: `$AZURE_CLIENT_ID`.
    #[serde(default)]
    pub client_id: Option<String>,
    /// A file holding the client secret. Default: `$AZURE_CLIENT_SECRET`.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    /// Azure Resource Manager.
    #[serde(default = "default_endpoint")]
    pub endpoint: String,
    /// Microsoft Entra ID. Default: `$AZURE_AUTHORITY_HOST`, else
    /// `https://login.microsoftonline.com`.
    #[serde(default)]
    pub authority_host: Option<String>,
    /// What the tokens are for (Entra ID's scope is this with `.default`).
    /// Default: Resource Manager of the cloud `endpoint` names (public, US
    /// Government or China), so a sovereign cloud needs only its `endpoint`
    /// and `authority_host`; the public cloud's for any other endpoint (a
    /// proxy or a private endpoint in front of it).
    #[serde(default)]
    pub audience: Option<String>,
    /// The instance metadata service, for a managed identity.
    #[serde(default = "default_imds")]
    pub imds_endpoint: String,
    /// The Compute API version the requests pin.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Tries per call (429, 5xx, broken connections).
    #[serde(default = "super::cloud::default_attempts")]
    pub max_attempts: u32,
    /// Seconds one request may take.
    #[serde(default = "super::cloud::default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Seconds a scale operation may take to finish.
    #[serde(default = "default_operation_timeout")]
    pub operation_timeout_secs: u64,
    /// How long a quota or allocation refusal holds the pool at its size.
    #[serde(default = "super::cloud::default_cooldown")]
    pub quota_cooldown_secs: u64,
}

fn default_credential() -> String {
    "auto".into()
}
fn default_endpoint() -> String {
    "https://management.azure.com".into()
}
fn default_imds() -> String {
    "http://169.254.169.254".into()
}
fn default_api_version() -> String {
    "2024-07-01".into()
}
fn default_operation_timeout() -> u64 {
    900
}

impl AzureVmssProvider {
    /// The token audience: `audience`, else Resource Manager of the cloud
    /// `endpoint` names, else the public cloud's.
    pub fn audience(&self) -> String {
        const CLOUDS: [&str; 3] = ["https://management.azure.com", "https://management.usgovcloudapi.net", "https://management.chinacloudapi.cn"];
        let endpoint = self.endpoint.trim_end_matches('/');
        let cloud = CLOUDS.iter().find(|c| endpoint.eq_ignore_ascii_case(c)).unwrap_or(&CLOUDS[0]);
        self.audience.clone().unwrap_or_else(|| format!("{cloud}/"))
    }

    pub fn problems(&self, at: &str) -> Vec<String> {
        let mut p = Vec::new();
        for (field, value) in [("subscription_id", &self.subscription_id), ("resource_group", &self.resource_group), ("name", &self.name)] {
            if value.trim().is_empty() || value.contains('/') {
                p.push(format!("{at}.{field}: must be a plain, non-empty name, got `{value}`"));
            }
        }
        if !["auto", "client-secret", "workload-identity", "managed-identity"].contains(&self.credential.as_str()) {
            p.push(format!("{at}.credential: `auto`, `client-secret`, `workload-identity` or `managed-identity`, got `{}`", self.credential));
        }
        for (field, url) in [("endpoint", Some(&self.endpoint)), ("authority_host", self.authority_host.as_ref()), ("audience", self.audience.as_ref()), ("imds_endpoint", Some(&self.imds_endpoint))] {
            if let Some(u) = url
                && !(u.starts_with("https://") || u.starts_with("http://"))
            {
                p.push(format!("{at}.{field}: must start with https:// or http://, got `{u}`"));
            }
        }
        super::cloud::within(&mut p, at, "max_attempts", self.max_attempts, 1, 20);
        super::cloud::within(&mut p, at, "request_timeout_secs", self.request_timeout_secs, 1, 600);
        super::cloud::within(&mut p, at, "operation_timeout_secs", self.operation_timeout_secs, 1, 7200);
        super::cloud::within(&mut p, at, "quota_cooldown_secs", self.quota_cooldown_secs, 0, 86_400);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let a: AzureVmssProvider = serde_json::from_value(serde_json::json!({
            "subscription_id": "", "resource_group": "a/b", "name": " ", "credential": "password",
            "endpoint": "management.azure.com", "authority_host": "ftp://x", "audience": "arm", "imds_endpoint": "169.254.169.254",
            "max_attempts": 0, "request_timeout_secs": 0, "operation_timeout_secs": 0, "quota_cooldown_secs": u64::MAX
        }))
        .unwrap();
        let got = a.problems("pools[0].provider");
        for field in ["subscription_id", "resource_group", "name", "credential", "endpoint", "authority_host", "audience", "imds_endpoint", "max_attempts", "request_timeout_secs", "operation_timeout_secs", "quota_cooldown_secs"] {
            assert!(got.iter().any(|p| p.starts_with(&format!("pools[0].provider.{field}:"))), "{field} not named in {got:#?}");
        }
        assert_eq!(got.len(), 12, "{got:#?}");
        let ok: AzureVmssProvider = serde_json::from_value(serde_json::json!({"subscription_id": "s", "resource_group": "rg", "name": "web"})).unwrap();
        assert!(ok.problems("p").is_empty());
    }

    #[test]
    fn the_audience_follows_the_endpoint_unless_given() {
        let at = |v: serde_json::Value| serde_json::from_value::<AzureVmssProvider>(v).unwrap().audience();
        assert_eq!(at(serde_json::json!({"subscription_id": "s", "resource_group": "rg", "name": "web"})), "https://management.azure.com/");
        let china = serde_json::json!({"subscription_id": "s", "resource_group": "rg", "name": "web", "endpoint": "https://management.chinacloudapi.cn/"});
        assert_eq!(at(china), "https://management.chinacloudapi.cn/");
        let gov = serde_json::json!({"subscription_id": "s", "resource_group": "rg", "name": "web", "endpoint": "https://management.usgovcloudapi.net"});
        assert_eq!(at(gov), "https://management.usgovcloudapi.net/");
        // A proxy in front of the public cloud: its tokens, as before.
        let proxied = serde_json::json!({"subscription_id": "s", "resource_group": "rg", "name": "web", "endpoint": "http://10.0.0.9:8080"});
        assert_eq!(at(proxied), "https://management.azure.com/");
        let given = serde_json::json!({"subscription_id": "s", "resource_group": "rg", "name": "web", "endpoint": "http://10.0.0.9:8080", "audience": "https://management.chinacloudapi.cn"});
        assert_eq!(at(given), "https://management.chinacloudapi.cn");
    }
}
