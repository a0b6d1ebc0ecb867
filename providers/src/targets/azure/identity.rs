//! Tokens for Azure Resource Manager from Microsoft Entra ID, by the
//! documented token endpoints: a client secret, a workload identity's
//! federated token, or a managed identity.
//!
//! Why not the `azure_identity` crate: it brings its own HTTP stack and
//! core crate for three requests that are each one form POST or GET; the
//! host already has an HTTP client with rustls. The endpoints and their
//! fields are Microsoft's documented ones:
//! - client credentials: `POST {authority}/{tenant}/oauth2/v2.0/token` with
//!   `grant_type=client_credentials`, `client_id`, `client_secret`, `scope`
//!   (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow>);
//! - workload identity: the same endpoint with `client_assertion_type =
//!   urn:ietf:params:oauth:client-assertion-type:jwt-bearer` and the token
//!   in `AZURE_FEDERATED_TOKEN_FILE` as `client_assertion`, re-read at each
//!   request since the kubelet rotates it;
//! - managed identity: `GET {imds}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`
//!   with the header `Metadata: true`
//!   (<https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token>).
//!
//! A token is kept until five minutes before it expires; every answer that
//! is not a token is an error that names the way of signing in and quotes
//! Entra ID's `error_description` (its AADSTS code says what is wrong).

use std::time::{Duration, Instant};

use serde::Deserialize;

/// How the host signs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    ClientSecret { tenant_id: String, client_id: String, secret: String },
    WorkloadIdentity { tenant_id: String, client_id: String, token_file: std::path::PathBuf },
    /// `client_id` picks a user-assigned identity; `None`, the system one.
    ManagedIdentity { client_id: Option<String> },
}

impl Credential {
    pub fn describe(&self) -> &'static str {
        match self {
            Credential::ClientSecret { .. } => "client secret",
            Credential::WorkloadIdentity { .. } => "workload identity",
            Credential::ManagedIdentity { .. } => "managed identity",
        }
    }
}

/// The largest token answer read: a token is some kilobytes.
const MAX_TOKEN_ANSWER_BYTES: usize = 1 << 20;

pub struct TokenSource {
    credential: Credential,
    /// `https://login.microsoftonline.com` (or `AZURE_AUTHORITY_HOST`).
    authority: String,
    /// `http://169.254.169.254`.
    imds: String,
    /// The resource (the audience): `https://management.azure.com/` in
    /// the public cloud.
    resource: String,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Seconds; Entra ID sends a number, IMDS a string.
    #[serde(deserialize_with = "number_or_string")]
    expires_in: u64,
}

fn number_or_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        N(u64),
        S(String),
    }
    match N::deserialize(d)? {
        N::N(n) => Ok(n),
        N::S(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

impl TokenSource {
    pub fn new(credential: Credential, authority: String, imds: String, resource: String, http: reqwest::Client) -> Self {
        Self { credential, authority: authority.trim_end_matches('/').to_owned(), imds: imds.trim_end_matches('/').to_owned(), resource, http, cached: Default::default() }
    }

    /// A bearer token, from the cache while it has five minutes left.
    pub async fn token(&self) -> Result<String, String> {
        let mut cached = self.cached.lock().await;
        if let Some((t, until)) = &*cached
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let answer = self.fetch().await.map_err(|e| format!("signing in to Microsoft Entra ID by {}: {e}", self.credential.describe()))?;
        let until = Instant::now() + Duration::from_secs(answer.expires_in.saturating_sub(300).max(30));
        *cached = Some((answer.access_token.clone(), until));
        Ok(answer.access_token)
    }

    /// Forget the token (ARM said 401: it may have been revoked).
    pub async fn forget(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<TokenAnswer, String> {
        // `{resource}/.default`, whether the resource ends in a slash or not.
        let scope = format!("{}/.default", self.resource.trim_end_matches('/'));
        let request = match &self.credential {
            Credential::ClientSecret { tenant_id, client_id, secret } => self.http.post(format!("{}/{tenant_id}/oauth2/v2.0/token", self.authority)).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("scope", &scope),
            ]),
            Credential::WorkloadIdentity { tenant_id, client_id, token_file } => {
                let assertion = read_token_file(token_file)?;
                self.http.post(format!("{}/{tenant_id}/oauth2/v2.0/token", self.authority)).form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", &assertion),
                    ("scope", &scope),
                ])
            }
            Credential::ManagedIdentity { client_id } => {
                let mut query = vec![("api-version", "2018-02-01"), ("resource", self.resource.as_str())];
                if let Some(id) = client_id {
                    query.push(("client_id", id));
                }
                self.http.get(format!("{}/metadata/identity/oauth2/token", self.imds)).query(&query).header("Metadata", "true")
            }
        };
        let answer = request.send().await.map_err(|e| format!("no answer from the token endpoint: {}", crate::error_chain(&e)))?;
        let status = answer.status();
        let body = match crate::http::body_bounded(answer, MAX_TOKEN_ANSWER_BYTES).await {
            Ok(body) => body,
            Err(crate::http::BodyError::TooLarge(_)) => return Err(format!("HTTP {status}: the token endpoint's answer is larger than {MAX_TOKEN_ANSWER_BYTES} bytes")),
            Err(crate::http::BodyError::Read(e)) => return Err(e.to_string()),
        };
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(2048)]).into_owned();
            let described = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    let code = v["error"].as_str()?.to_owned();
                    Some(format!("{code}: {}", v["error_description"].as_str().unwrap_or("")))
                })
                .unwrap_or(text);
            return Err(format!("{status}: {described} (check the tenant, client id and secret or identity the pool's provider config names)"));
        }
        serde_json::from_slice(&body).map_err(|e| format!("the token endpoint's answer is not a token: {e}"))
    }
}

/// The federated token the kubelet writes; bounded, since it is a file we
/// did not write.
fn read_token_file(path: &std::path::Path) -> Result<String, String> {
    let text = crate::file::read_text(path, 64 * 1024).map_err(|e| format!("AZURE_FEDERATED_TOKEN_FILE {}: {e}", path.display()))?;
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_answer_past_the_cap_is_an_error_not_a_read_without_end() {
        let (base, sent) = crate::http::endless_server(&[], r#"{"access_token":""#, "abcdefgh").await;
        let tokens = TokenSource::new(Credential::ManagedIdentity { client_id: None }, base.clone(), base, "https://management.azure.com/".into(), reqwest::Client::new());
        let e = tokens.token().await.unwrap_err();
        assert!(e.contains("by managed identity") && e.contains(&format!("larger than {MAX_TOKEN_ANSWER_BYTES} bytes")), "{e}");
        assert!(sent.load(std::sync::atomic::Ordering::Relaxed) < 64 << 20, "the client read on past its cap");
    }
}
