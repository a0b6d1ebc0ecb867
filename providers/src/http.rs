//! One way to reach an outside HTTP service that asks for more than plain
//! http: a bearer token or basic auth, extra headers (a tenant id), and a
//! private CA. The Prometheus source and the advisor's chat endpoint both
//! build their client here, so what an operator learns configuring one
//! holds for the other.

use std::time::Duration;

/// Credentials, headers and a CA for one service.
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub bearer_token: Option<String>,
    /// Username and password.
    pub basic_auth: Option<(String, String)>,
    /// Sent with every request (e.g. `X-Scope-OrgID`).
    pub headers: Vec<(String, String)>,
    /// A CA certificate (PEM) to trust besides the built-in roots.
    pub ca_pem: Option<Vec<u8>>,
}

/// A client with `access` baked in (basic auth excepted: reqwest sets it per
/// request), each request bounded by `timeout`. Secrets are marked
/// sensitive, so they never show in a debug print.
pub fn client(timeout: Duration, access: &Access) -> Result<reqwest::Client, String> {
    use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
    if access.bearer_token.is_some() && access.basic_auth.is_some() {
        return Err("give a bearer token or basic auth, not both".into());
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &access.headers {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header `{name}` is not a valid header name"))?;
        let mut v = HeaderValue::from_str(value).map_err(|_| format!("header `{name}`: its value is not valid in a header"))?;
        v.set_sensitive(true);
        headers.insert(n, v);
    }
    if let Some(token) = &access.bearer_token {
        let mut v = HeaderValue::from_str(&format!("Bearer {}", token.trim())).map_err(|_| "the bearer token holds characters a header cannot".to_string())?;
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    let mut builder = reqwest::Client::builder().timeout(timeout).default_headers(headers);
    if let Some(pem) = &access.ca_pem {
        let cas = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("the CA file is not PEM: {e}"))?;
        if cas.is_empty() {
            return Err("the CA file holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
        }
        for ca in cas {
            builder = builder.add_root_certificate(ca);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

/// Read a response's body up to `limit` bytes: a service that answers with
/// gigabytes costs this much memory and no more. Over the limit, the first
/// `limit` bytes come back as the error.
pub async fn body_bounded(mut reply: reqwest::Response, limit: usize) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    loop {
        match reply.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    body.extend_from_slice(&chunk[..limit - body.len()]);
                    return Err(BodyError::TooLarge(body));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Read(e)),
        }
    }
}

#[derive(Debug)]
pub enum BodyError {
    /// Over the limit: the first bytes.
    TooLarge(Vec<u8>),
    Read(reqwest::Error),
}

/// A server on loopback for tests of the bounded reads: a request whose
/// path holds one of `small`'s fragments gets that JSON; any other gets a
/// `200` whose JSON body starts with `prefix` and then repeats `unit` up to
/// 1 GiB, or until the client hangs up. It returns its base URL and the
/// bytes it managed to send of the endless bodies.
#[cfg(test)]
pub(crate) async fn endless_server(small: &'static [(&'static str, &'static str)], prefix: &'static str, unit: &'static str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering::Relaxed;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 8192];
                let n = s.read(&mut request).await.unwrap_or(0);
                let line = String::from_utf8_lossy(&request[..n]).lines().next().unwrap_or("").to_owned();
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n";
                if let Some((_, body)) = small.iter().find(|(fragment, _)| line.contains(fragment)) {
                    let _ = s.write_all(format!("{head}Content-Length: {}\r\n\r\n{body}", body.len()).as_bytes()).await;
                    return;
                }
                let _ = s.write_all(format!("{head}\r\n{prefix}").as_bytes()).await;
                let chunk = unit.repeat(1000);
                while counted.load(Relaxed) < 1 << 30 && s.write_all(chunk.as_bytes()).await.is_ok() {
                    counted.fetch_add(chunk.len(), Relaxed);
                }
            });
        }
    });
    (base, sent)
}
