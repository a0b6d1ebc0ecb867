//! Policies from outside the directory: an OCI registry, or an HTTPS URL,
//! pinned by digest, optionally signed, cached on disk, then served like a
//! file policy.
//!
//! Why pinned: a policy decides how much a team pays and whether its users
//! are served, so what runs must be exactly what was reviewed. A remote
//! source names its bytes by sha256 (`oci://host/repo:tag@sha256:…`, or an
//! HTTPS URL with `sha256 = "…"`); a tag alone is refused unless the config
//! opts in to following it (`follow_tag = true`), and then the digest the
//! tag resolved to is reported with every load. Everything fetched is
//! checked against its digest before a byte is kept, every read is bounded
//! (`policies.remote_max_bytes`, before reading where the size is known and
//! while reading where it is not) and every request has a deadline.
//!
//! Why signed: a digest says *which* bytes, not *whose*. With
//! `policies.trusted_keys` set, every remote policy needs a detached
//! [minisign](https://jedisct1.github.io/minisign/) signature by one of
//! them, verified offline (the `minisign-verify` crate): in an OCI artifact
//! as a layer of media type [`SIGNATURE_LAYER`] beside the policy's, over
//! HTTPS at the URL plus `.minisig`. `scalewise policy push --signature`
//! attaches one made with `minisign -S`.
//!
//! A registry that is not public is logged in to with credentials read
//! from files at each fetch (`policies.registries."host"`: a username and
//! a password file, or a token file).
//!
//! Why cached: a pinned digest never changes, so once fetched and checked
//! the artifact is kept under `<cache_dir>/remote/<digest>/` and a restart
//! needs no registry at all. The cache is checked again on every use (the
//! manifest against its digest, the policy against the manifest), so a
//! cache altered on disk is refused, not served.
//!
//! A fetch that fails (the registry down, slow, 401/404/500, a digest that
//! does not match, a blob too large, a signature missing or by an unknown
//! key) is an error naming the source and what to do; the caller keeps
//! serving the last good version.

use std::path::{Path, PathBuf};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use scalewise_providers::file::read;
use sha2::{Digest, Sha256};

/// The media type of a policy component's layer (as wasm OCI artifacts use).
pub const WASM_LAYER: &str = oci_client::manifest::WASM_LAYER_MEDIA_TYPE;
/// The media type of a rhai script's layer.
pub const RHAI_LAYER: &str = "application/vnd.scalewise.policy.rhai";
/// The media type of a detached minisign signature over the policy's layer.
pub const SIGNATURE_LAYER: &str = "application/vnd.scalewise.policy.signature.v1+minisign";
/// The media type of a policy artifact's config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.scalewise.policy.config.v1+json";
/// The largest manifest or signature read.
const MAX_SMALL: u64 = 256 * 1024;

/// Where a remote policy comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// `oci://host[:port]/repo[:tag][@sha256:hex]`.
    Oci { reference: String, digest: Option<String> },
    /// An HTTPS URL and the sha256 of what it serves.
    Https { url: String, sha256: String },
}

/// Read `source` (with `sha256` for a URL): a digest is required unless
/// `follow_tag`.
pub fn parse(source: &str, sha256: Option<&str>, follow_tag: bool) -> Result<Source, String> {
    if let Some(rest) = source.strip_prefix("oci://") {
        let (name, digest) = match rest.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (rest, None),
        };
        if let Some(d) = digest {
            hex_digest(d.strip_prefix("sha256:").ok_or_else(|| format!("`{d}`: only sha256 digests are accepted (`@sha256:<64 hex>`)"))?)?;
        }
        if digest.is_none() && !follow_tag {
            return Err(format!(
                "`{source}` names no digest: pin it (`{source}@sha256:…`, as `scalewise policy push` prints), or set `follow_tag = true` to follow the tag (its resolved digest is then reported on each load)"
            ));
        }
        if sha256.is_some() {
            return Err("`sha256` is for an HTTPS source; an OCI reference carries its digest after `@`".into());
        }
        Reference::try_from(name).map_err(|e| format!("`{source}` is not an OCI reference: {e}"))?;
        return Ok(Source::Oci { reference: name.to_owned(), digest: digest.map(str::to_owned) });
    }
    if source.starts_with("https://") || loopback_http(source) {
        let sha256 = sha256.ok_or_else(|| format!("`{source}` needs `sha256 = \"<64 hex>\"`: the digest of the file it serves"))?;
        hex_digest(sha256)?;
        if !(source.ends_with(".wasm") || source.ends_with(".rhai")) {
            return Err(format!("`{source}` must end in .wasm or .rhai, which says how to run it"));
        }
        return Ok(Source::Https { url: source.to_owned(), sha256: sha256.to_owned() });
    }
    Err(format!("`{source}` is neither `oci://…` nor `https://…` (plain `http://` only to a loopback address)"))
}

/// Plain HTTP only to this machine (a registry or file server in a test, a
/// sidecar): anything that crosses a network goes over TLS.
fn loopback_http(url: &str) -> bool {
    ["http://127.0.0.1", "http://localhost", "http://[::1]"].iter().any(|p| url.strip_prefix(p).is_some_and(|r| r.starts_with([':', '/'])))
}

fn hex_digest(d: &str) -> Result<(), String> {
    if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(format!("`{d}` is not a sha256 digest (64 lowercase hex digits)"))
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// How remote policies are fetched and checked.
#[derive(Debug, Clone)]
pub struct Fetching {
    /// Where checked artifacts are kept.
    pub cache_dir: PathBuf,
    /// The largest policy fetched, in bytes.
    pub max_bytes: u64,
    /// Each request's deadline.
    pub timeout: Duration,
    /// minisign public keys (base64); when any is set, a signature by one
    /// of them is required.
    pub trusted_keys: Vec<String>,
    /// How to log in to each registry (`host[:port]`) that is not public.
    pub logins: std::collections::BTreeMap<String, Login>,
}

/// How to log in to a registry. The secrets stay in files (a mounted
/// Kubernetes Secret, say), read at each fetch, so a rotated one is used
/// without a reload and none is ever in the config's text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Login {
    /// With `password_file`: HTTP basic authentication (which registries
    /// also take for their token exchange).
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
    /// A bearer token, instead.
    pub token_file: Option<PathBuf>,
}

impl Login {
    /// The credentials for `registry`, read now; anonymous where none are
    /// configured. `at` names the config field in errors.
    fn auth(&self, at: &str) -> Result<RegistryAuth, String> {
        let secret = |field: &str, path: &Path| -> Result<String, String> {
            let bytes = read(path, 64 * 1024).map_err(|e| format!("{at}.{field}: {}: {e}", path.display()))?;
            let text = String::from_utf8(bytes).map_err(|_| format!("{at}.{field}: {} is not UTF-8", path.display()))?;
            Ok(text.trim_end_matches(['\n', '\r']).to_owned())
        };
        Ok(match (&self.username, &self.password_file, &self.token_file) {
            (_, _, Some(t)) => RegistryAuth::Bearer(secret("token_file", t)?),
            (Some(u), Some(p), None) => RegistryAuth::Basic(u.clone(), secret("password_file", p)?),
            (Some(u), None, None) => RegistryAuth::Basic(u.clone(), String::new()),
            (None, _, None) => RegistryAuth::Anonymous,
        })
    }
}

impl Fetching {
    /// The credentials for the registry `reference` names.
    fn auth(&self, reference: &Reference) -> Result<RegistryAuth, String> {
        let registry = reference.resolve_registry();
        match self.logins.get(registry).or_else(|| self.logins.get(reference.registry())) {
            Some(login) => login.auth(&format!("policies.registries.\"{registry}\"")),
            None => Ok(RegistryAuth::Anonymous),
        }
    }
}

/// A remote policy, fetched and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// The cached policy file (its extension says its runtime).
    pub path: PathBuf,
    /// The artifact's digest: the OCI manifest's, or the file's.
    pub digest: String,
    /// Who signed it: the untrusted comment of the key that verified, or
    /// `None` when no keys are configured.
    pub signed_by: Option<String>,
}

/// Fetch every remote policy at once: the checked copies by id, and each
/// failure as `(id, why)`.
pub async fn fetch_all(sources: Vec<(String, Source)>, how: &Fetching) -> (std::collections::BTreeMap<String, Fetched>, Vec<(String, String)>) {
    let mut set = tokio::task::JoinSet::new();
    for (id, source) in sources {
        let how = how.clone();
        set.spawn(async move {
            let r = fetch(&source, &how).await;
            (id, r)
        });
    }
    let mut fetched = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok((id, Ok(f))) => {
                tracing::info!(policy = %id, digest = %f.digest, signed_by = ?f.signed_by, "remote policy fetched and checked");
                fetched.insert(id, f);
            }
            Ok((id, Err(e))) => problems.push((id, e)),
            Err(e) => problems.push((String::new(), format!("a fetch failed: {e}"))),
        }
    }
    problems.sort();
    (fetched, problems)
}

/// A fetch failure as a config problem, with its field path.
pub fn problem((id, why): &(String, String)) -> String {
    format!("policies.remote.{id}: {why}")
}

/// Fetch (or find in the cache) and check the policy `source` points at.
pub async fn fetch(source: &Source, how: &Fetching) -> Result<Fetched, String> {
    match source {
        Source::Oci { reference, digest } => fetch_oci(reference, digest.as_deref(), how).await,
        Source::Https { url, sha256 } => fetch_https(url, sha256, how).await,
    }
}

fn client(reference: &Reference, how: &Fetching) -> Client {
    let registry = reference.resolve_registry().to_owned();
    let loopback = ["127.0.0.1", "localhost", "[::1]"].iter().any(|h| registry == *h || registry.starts_with(&format!("{h}:")));
    let protocol = if loopback { ClientProtocol::HttpsExcept(vec![registry]) } else { ClientProtocol::Https };
    Client::new(ClientConfig { protocol, read_timeout: Some(how.timeout), connect_timeout: Some(how.timeout), ..ClientConfig::default() })
}

async fn timed<T>(how: &Fetching, what: &str, f: impl std::future::Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(how.timeout * 2, f).await.map_err(|_| format!("{what}: no answer within {:?} (policies.remote_timeout_ms)", how.timeout * 2))?
}

async fn fetch_oci(name: &str, pinned: Option<&str>, how: &Fetching) -> Result<Fetched, String> {
    let at = |e: String| format!("oci://{name}: {e}");
    let reference = Reference::try_from(name).map_err(|e| at(e.to_string()))?;
    let client = client(&reference, how);
    let auth = how.auth(&reference).map_err(at)?;
    let digest = match pinned {
        Some(d) => d.to_owned(),
        None => {
            let resolved = timed(how, "resolving the tag", async { client.fetch_manifest_digest(&reference, &auth).await.map_err(|e| oci_error(e, &reference)) }).await.map_err(at)?;
            tracing::info!(source = %format!("oci://{name}"), digest = %resolved, "followed the tag");
            resolved
        }
    };
    let dir = how.cache_dir.join(digest.trim_start_matches("sha256:"));
    if let Some(hit) = cached_oci(&dir, &digest, how).map_err(at)? {
        return Ok(hit);
    }
    let by_digest = Reference::with_digest(reference.registry().to_owned(), reference.repository().to_owned(), digest.clone());
    let accepted = [oci_client::manifest::OCI_IMAGE_MEDIA_TYPE, oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE];
    let (raw, _) = timed(how, "the manifest", async { client.pull_manifest_raw(&by_digest, &auth, &accepted).await.map_err(|e| match e {
            oci_client::errors::OciDistributionError::DigestError(d) => format!("the manifest arrived with another digest ({d}): refused (tampered, or the wrong reference)"),
            e => oci_error(e, &by_digest),
        }) }).await.map_err(at)?;
    if raw.len() as u64 > MAX_SMALL {
        return Err(at(format!("the manifest is {} bytes, over {MAX_SMALL}", raw.len())));
    }
    let manifest = check_manifest(&raw, &digest).map_err(at)?;
    let (policy, signature) = layers(&manifest).map_err(at)?;
    if policy.size < 0 || policy.size as u64 > how.max_bytes {
        return Err(at(format!("the policy layer is {} bytes, over policies.remote_max_bytes ({})", policy.size, how.max_bytes)));
    }
    let bytes = pull(&client, &by_digest, policy, how.max_bytes, how).await.map_err(at)?;
    let sig = match signature {
        Some(s) => Some(pull(&client, &by_digest, s, MAX_SMALL, how).await.map_err(at)?),
        None => None,
    };
    let signed_by = verify(&bytes, sig.as_deref(), &how.trusted_keys).map_err(at)?;
    let ext = if policy.media_type == RHAI_LAYER { "rhai" } else { "wasm" };
    let path = store(&dir, ext, &bytes, sig.as_deref(), Some(&raw)).map_err(at)?;
    Ok(Fetched { path, digest, signed_by })
}

/// The manifest, checked against the digest that named it.
fn check_manifest(raw: &[u8], digest: &str) -> Result<OciImageManifest, String> {
    let actual = format!("sha256:{}", sha256_hex(raw));
    if actual != digest {
        return Err(format!("the manifest's digest is {actual}, not the pinned {digest}: refused (tampered, or the wrong reference)"));
    }
    serde_json::from_slice(raw).map_err(|e| format!("the manifest is not an OCI image manifest: {e}"))
}

/// The policy's layer and its signature's, if any.
fn layers(m: &OciImageManifest) -> Result<(&OciDescriptor, Option<&OciDescriptor>), String> {
    let policy: Vec<&OciDescriptor> = m.layers.iter().filter(|l| l.media_type == WASM_LAYER || l.media_type == RHAI_LAYER).collect();
    let [policy] = policy[..] else {
        return Err(format!("a policy artifact has exactly one layer of type {WASM_LAYER} or {RHAI_LAYER}; this one has {}: push it with `scalewise policy push`", policy.len()));
    };
    Ok((policy, m.layers.iter().find(|l| l.media_type == SIGNATURE_LAYER)))
}

/// Pull one blob, at most `max` bytes, and check it against its digest.
async fn pull(client: &Client, reference: &Reference, layer: &OciDescriptor, max: u64, how: &Fetching) -> Result<Vec<u8>, String> {
    let mut out = Bounded { bytes: Vec::new(), max };
    timed(how, "a blob", async {
        client.pull_blob(reference, layer, &mut out).await.map_err(|e| match e {
            oci_client::errors::OciDistributionError::DigestError(d) => {
                format!("the blob {} arrived with another digest ({d}): refused (tampered in the registry or on the way)", layer.digest)
            }
            e => oci_error(e, reference),
        })
    })
    .await?;
    let actual = format!("sha256:{}", sha256_hex(&out.bytes));
    if actual != layer.digest {
        return Err(format!("the blob {} arrived with digest {actual}: refused (tampered in the registry or on the way)", layer.digest));
    }
    Ok(out.bytes)
}

/// A cached OCI artifact, checked again: the manifest against its digest,
/// the policy (and signature) against the manifest, the signature against
/// the keys configured now.
fn cached_oci(dir: &Path, digest: &str, how: &Fetching) -> Result<Option<Fetched>, String> {
    let Ok(raw) = read(&dir.join("manifest.json"), MAX_SMALL) else { return Ok(None) };
    let manifest = check_manifest(&raw, digest).map_err(|e| format!("the cached copy in {}: {e}", dir.display()))?;
    let (policy, signature) = layers(&manifest)?;
    let ext = if policy.media_type == RHAI_LAYER { "rhai" } else { "wasm" };
    let path = dir.join(format!("policy.{ext}"));
    let Ok(bytes) = read(&path, how.max_bytes) else { return Ok(None) };
    if format!("sha256:{}", sha256_hex(&bytes)) != policy.digest {
        return Err(format!("the cached {} does not match its manifest: refused; delete {} to fetch it again", path.display(), dir.display()));
    }
    let sig = match signature {
        Some(_) => read(&dir.join("policy.minisig"), MAX_SMALL).ok(),
        None => None,
    };
    let signed_by = verify(&bytes, sig.as_deref(), &how.trusted_keys)?;
    Ok(Some(Fetched { path, digest: digest.to_owned(), signed_by }))
}

async fn fetch_https(url: &str, sha256: &str, how: &Fetching) -> Result<Fetched, String> {
    let at = |e: String| format!("{url}: {e}");
    let ext = if url.ends_with(".rhai") { "rhai" } else { "wasm" };
    let dir = how.cache_dir.join(sha256);
    let path = dir.join(format!("policy.{ext}"));
    let digest = format!("sha256:{sha256}");
    let (bytes, cached) = match read(&path, how.max_bytes) {
        Ok(b) => (b, true),
        Err(_) => (get(url, how.max_bytes, how).await.map_err(at)?, false),
    };
    if sha256_hex(&bytes) != sha256 {
        let whose = if cached { format!("the cached {}", path.display()) } else { "what it served".to_owned() };
        return Err(at(format!("{whose} has sha256 {}, not the pinned {sha256}: refused", sha256_hex(&bytes))));
    }
    let sig = if how.trusted_keys.is_empty() {
        None
    } else {
        match read(&dir.join("policy.minisig"), MAX_SMALL) {
            Ok(s) => Some(s),
            Err(_) => get(&format!("{url}.minisig"), MAX_SMALL, how).await.ok(),
        }
    };
    let signed_by = verify(&bytes, sig.as_deref(), &how.trusted_keys).map_err(at)?;
    if !cached || sig.is_some() {
        store(&dir, ext, &bytes, sig.as_deref(), None).map_err(at)?;
    }
    Ok(Fetched { path, digest, signed_by })
}

/// A registry's error, saying where to give a login when it refused one.
fn oci_error(e: oci_client::errors::OciDistributionError, reference: &Reference) -> String {
    use oci_client::errors::{OciDistributionError as E, OciErrorCode};
    let refused = match &e {
        E::UnauthorizedError { .. } | E::AuthenticationFailure(_) => true,
        E::RegistryError { envelope, .. } => envelope.errors.iter().any(|x| matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)),
        _ => false,
    };
    if refused {
        let registry = reference.resolve_registry();
        format!("{}: the registry refused access (HTTP 401); if it needs a login, give one in policies.registries.\"{registry}\" (username and password_file, or token_file)", why(&e))
    } else {
        why(&e)
    }
}

/// An error with its causes (see [`scalewise_providers::error_chain`]).
fn why(e: &dyn std::error::Error) -> String {
    scalewise_providers::error_chain(e)
}

/// GET `url`, at most `max` bytes.
async fn get(url: &str, max: u64, how: &Fetching) -> Result<Vec<u8>, String> {
    let client = reqwest::Client::builder().timeout(how.timeout).build().map_err(|e| e.to_string())?;
    let mut r = client.get(url).send().await.map_err(|e| format!("cannot fetch: {}", why(&e)))?;
    if !r.status().is_success() {
        return Err(format!("HTTP {}", r.status()));
    }
    if r.content_length().is_some_and(|n| n > max) {
        return Err(format!("{} bytes, over the limit of {max} (policies.remote_max_bytes)", r.content_length().unwrap_or_default()));
    }
    let mut out = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(|e| format!("reading: {}", why(&e)))? {
        if (out.len() + chunk.len()) as u64 > max {
            return Err(format!("over the limit of {max} bytes (policies.remote_max_bytes)"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Publish `bytes` (a policy of runtime `ext`, `wasm` or `rhai`) and its
/// signature to `reference` (`host[:port]/repo:tag`): one layer for the
/// policy, one for the signature, a small config blob naming the policy.
/// Returns the manifest's digest, the one to pin.
pub async fn push(reference: &str, ext: &str, bytes: Vec<u8>, signature: Option<Vec<u8>>, timeout: Duration, login: &Login) -> Result<String, String> {
    use oci_client::client::{Config, ImageLayer};
    let r = Reference::try_from(reference).map_err(|e| format!("`{reference}` is not an OCI reference: {e}"))?;
    let how = Fetching { cache_dir: PathBuf::new(), max_bytes: 0, timeout, trusted_keys: Vec::new(), logins: Default::default() };
    let client = client(&r, &how);
    let media = if ext == "rhai" { RHAI_LAYER } else { WASM_LAYER };
    let mut layers = vec![ImageLayer::new(bytes, media.to_owned(), None)];
    if let Some(sig) = signature {
        layers.push(ImageLayer::new(sig, SIGNATURE_LAYER.to_owned(), None));
    }
    let config = Config::new(format!(r#"{{"runtime":"{ext}"}}"#).into_bytes(), CONFIG_MEDIA_TYPE.to_owned(), None);
    let auth = login.auth("the login")?;
    timed(&how, "pushing", async { client.push(&r, &layers, config, &auth, None).await.map_err(|e| why(&e)) }).await?;
    // The digest as the registry has it (the client writes canonical JSON).
    let digest = timed(&how, "reading back the digest", async { client.fetch_manifest_digest(&r, &auth).await.map_err(|e| why(&e)) }).await?;
    hex_digest(digest.strip_prefix("sha256:").unwrap_or_default()).map_err(|e| format!("the registry answered a digest that is not sha256: {e}"))?;
    Ok(digest)
}

/// Check `bytes` against `signature` when keys are configured: the name
/// (untrusted comment) of the key that verified it.
pub fn verify(bytes: &[u8], signature: Option<&[u8]>, keys: &[String]) -> Result<Option<String>, String> {
    if keys.is_empty() {
        return Ok(None);
    }
    let Some(sig) = signature else {
        return Err("unsigned, and policies.trusted_keys requires a signature: sign it (`minisign -S -m FILE`) and push it with `--signature FILE.minisig`".into());
    };
    let text = std::str::from_utf8(sig).map_err(|_| "the signature is not minisign text".to_owned())?;
    let sig = minisign_verify::Signature::decode(text).map_err(|e| format!("the signature is not a minisign signature: {e}"))?;
    let mut unknown = true;
    for (i, k) in keys.iter().enumerate() {
        let key = minisign_verify::PublicKey::from_base64(k).map_err(|e| format!("policies.trusted_keys[{i}] is not a minisign public key: {e}"))?;
        match key.verify(bytes, &sig, false) {
            Ok(()) => return Ok(Some(format!("policies.trusted_keys[{i}]"))),
            Err(minisign_verify::Error::UnexpectedKeyId) => {}
            Err(_) => unknown = false,
        }
    }
    Err(if unknown {
        "signed by a key that is not in policies.trusted_keys: refused".into()
    } else {
        "the signature does not match the policy's bytes: refused (tampered, or signed over another file)".into()
    })
}

/// Keep a checked artifact: written beside, then renamed in, so a crash
/// leaves either nothing or the whole of it.
fn store(dir: &Path, ext: &str, bytes: &[u8], sig: Option<&[u8]>, manifest: Option<&[u8]>) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("caching in {}: {e}", dir.display()))?;
    let put = |name: &str, data: &[u8]| -> Result<(), String> {
        let tmp = dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, dir.join(name))).map_err(|e| format!("caching {name} in {}: {e}", dir.display()))
    };
    put(&format!("policy.{ext}"), bytes)?;
    if let Some(s) = sig {
        put("policy.minisig", s)?;
    }
    // The manifest last: it is what marks the copy complete.
    if let Some(m) = manifest {
        put("manifest.json", m)?;
    }
    Ok(dir.join(format!("policy.{ext}")))
}

/// A sink that refuses to grow past `max` bytes.
struct Bounded {
    bytes: Vec<u8>,
    max: u64,
}

impl tokio::io::AsyncWrite for Bounded {
    fn poll_write(mut self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>, buf: &[u8]) -> std::task::Poll<std::io::Result<usize>> {
        if (self.bytes.len() + buf.len()) as u64 > self.max {
            let max = self.max;
            return std::task::Poll::Ready(Err(std::io::Error::other(format!("over the limit of {max} bytes (policies.remote_max_bytes)"))));
        }
        self.bytes.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests;
