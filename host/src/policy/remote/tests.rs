use super::*;

const D: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn a_remote_source_needs_a_digest_unless_it_follows_a_tag() {
    let pinned = format!("oci://127.0.0.1:5000/policies/fast:1@sha256:{D}");
    assert_eq!(parse(&pinned, None, false), Ok(Source::Oci { reference: "127.0.0.1:5000/policies/fast:1".into(), digest: Some(format!("sha256:{D}")) }));
    let tag = parse("oci://127.0.0.1:5000/policies/fast:1", None, false).unwrap_err();
    assert!(tag.contains("names no digest") && tag.contains("follow_tag"), "{tag}");
    assert!(parse("oci://127.0.0.1:5000/policies/fast:1", None, true).is_ok());
    assert!(parse("oci://r/p@sha1:abc", None, false).unwrap_err().contains("only sha256"));
    assert!(parse("https://example.com/p.wasm", None, false).unwrap_err().contains("needs `sha256"));
    assert!(parse("https://example.com/p.wasm", Some("ABC"), false).unwrap_err().contains("not a sha256 digest"));
    assert!(parse("https://example.com/p", Some(D), false).unwrap_err().contains(".wasm or .rhai"));
    assert!(parse("http://example.com/p.wasm", Some(D), false).unwrap_err().contains("loopback"));
    assert!(parse("http://127.0.0.1:8080/p.rhai", Some(D), false).is_ok());
    assert!(parse("http://127.0.0.1.evil.com/p.rhai", Some(D), false).is_err());
}

#[test]
fn without_keys_nothing_is_required_and_with_keys_an_unsigned_policy_is_refused() {
    assert_eq!(verify(b"x", None, &[]), Ok(None));
    let e = verify(b"x", None, &["RWQ".into()]).unwrap_err();
    assert!(e.contains("unsigned"), "{e}");
    let e = verify(b"x", Some(b"not a signature"), &["RWQ".into()]).unwrap_err();
    assert!(e.contains("not a minisign signature"), "{e}");
}

// What a registry or file server that misbehaves does to a fetch: each is
// refused with the source and the reason, within the deadline and the size
// bound, and nothing is cached. A stand-in server on loopback answers each
// path as scripted (a real registry cannot be made to fail on cue); the
// well-behaved path is tested against a real registry in
// tests/e2e/lifecycle.rs.

use std::io::{BufRead, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};

/// A loopback server answering each request by `answer(path, stream)`.
fn serve(answer: fn(&str, &mut TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                // Headers, up to the blank line.
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).map_or(true, |n| n == 0) || h == "\r\n" {
                        break;
                    }
                }
                answer(&path, &mut stream);
            });
        }
    });
    port
}

fn status(stream: &mut TcpStream, code: &str) {
    let _ = write!(stream, "HTTP/1.1 {code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
}

/// One manifest whose only layer claims `size` bytes.
fn manifest(size: u64) -> String {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{CONFIG_MEDIA_TYPE}","digest":"sha256:{D}","size":2}},"layers":[{{"mediaType":"{WASM_LAYER}","digest":"sha256:{D}","size":{size}}}]}}"#
    )
}

fn misbehaving(path: &str, stream: &mut TcpStream) {
    match path {
        "/missing.wasm" => status(stream, "404 Not Found"),
        "/broken.wasm" => status(stream, "500 Internal Server Error"),
        "/private.wasm" => status(stream, "401 Unauthorized"),
        "/slow.wasm" | "/v2/slow/manifests/sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" => {
            std::thread::sleep(Duration::from_secs(5));
            status(stream, "200 OK");
        }
        "/huge.wasm" => {
            // Says how much first: refused before a byte of it is read.
            let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: 1073741824\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(&[0u8; 65536]);
        }
        p if p == "/endless.wasm" || p.starts_with("/v2/liar/blobs/") => {
            // Says nothing of its size and never ends.
            let _ = write!(stream, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n");
            let chunk = [b'a'; 16384];
            for _ in 0..100_000 {
                if write!(stream, "4000\r\n").and_then(|()| stream.write_all(&chunk)).and_then(|()| write!(stream, "\r\n")).is_err() {
                    return;
                }
            }
        }
        "/other.wasm" => {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc");
        }
        "/v2/" => {
            let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}");
        }
        p if p.starts_with("/v2/broken/") => status(stream, "500 Internal Server Error"),
        p if p.starts_with("/v2/private/") => status(stream, "401 Unauthorized"),
        p if p.starts_with("/v2/gone/") => status(stream, "404 Not Found"),
        p if p.starts_with("/v2/big/manifests/") || p.starts_with("/v2/liar/manifests/") => {
            let m = manifest(if p.starts_with("/v2/big/") { 1 << 40 } else { 10 });
            let _ = write!(stream, "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.oci.image.manifest.v1+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{m}", m.len());
        }
        _ => status(stream, "404 Not Found"),
    }
}

fn how(dir: &Path) -> Fetching {
    Fetching { cache_dir: dir.to_owned(), max_bytes: 1 << 20, timeout: Duration::from_millis(300), trusted_keys: vec![], logins: Default::default() }
}

#[tokio::test]
async fn a_file_server_that_fails_is_refused_with_the_reason_in_time_and_within_bounds() {
    let port = serve(misbehaving);
    let dir = tempfile::tempdir().unwrap();
    let fetch = |name: &str| {
        let source = Source::Https { url: format!("http://127.0.0.1:{port}/{name}"), sha256: D.into() };
        let how = how(dir.path());
        async move {
            let started = std::time::Instant::now();
            let e = fetch(&source, &how).await.unwrap_err();
            (e, started.elapsed())
        }
    };
    for (name, says) in [("missing.wasm", "404"), ("broken.wasm", "500"), ("private.wasm", "401")] {
        let (e, _) = fetch(name).await;
        assert!(e.contains(name) && e.contains(says), "{name}: {e}");
    }
    let (e, took) = fetch("slow.wasm").await;
    assert!(e.contains("slow.wasm") && e.contains("timed out") && took < Duration::from_secs(3), "{e} after {took:?}");
    let (e, _) = fetch("huge.wasm").await;
    assert!(e.contains("1073741824 bytes, over the limit of 1048576"), "{e}");
    let (e, took) = fetch("endless.wasm").await;
    assert!(e.contains("over the limit of 1048576"), "{e}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let (e, _) = fetch("other.wasm").await;
    assert!(e.contains("not the pinned") && e.contains("refused"), "{e}");
    // A server that is not there at all.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let source = Source::Https { url: format!("http://127.0.0.1:{closed}/p.wasm"), sha256: D.into() };
    let e = super::fetch(&source, &how(dir.path())).await.unwrap_err();
    assert!(e.contains("cannot fetch") && e.contains("onnection refused"), "{e}");
    // Nothing failed was kept.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_registry_that_fails_is_refused_with_the_reason_in_time_and_within_bounds() {
    let port = serve(misbehaving);
    let dir = tempfile::tempdir().unwrap();
    let fetch = |repo: &str| {
        let source = Source::Oci { reference: format!("127.0.0.1:{port}/{repo}:1"), digest: Some(format!("sha256:{D}")) };
        let how = how(dir.path());
        async move {
            let started = std::time::Instant::now();
            let e = fetch(&source, &how).await.unwrap_err();
            (e, started.elapsed())
        }
    };
    for (repo, says) in [("broken", "500"), ("private", "401"), ("gone", "404")] {
        let (e, took) = fetch(repo).await;
        assert!(e.contains(&format!("oci://127.0.0.1:{port}/{repo}")) && e.contains(says), "{repo}: {e}");
        if says == "401" {
            assert!(e.contains(&format!("policies.registries.\"127.0.0.1:{port}\"")), "where to give a login: {e}");
        }
        assert!(took < Duration::from_secs(3), "{repo}: {took:?}");
    }
    let (e, took) = fetch("slow").await;
    assert!(e.contains("no answer within") || e.contains("timed out"), "{e}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // A manifest served for a pinned digest that is not its own.
    let (e, _) = fetch("big").await;
    assert!(e.contains("another digest") && e.contains("refused"), "{e}");
    // Pinned right, but its layer is too large: refused before the blob.
    let pinned = |repo: &str, size: u64| Source::Oci { reference: format!("127.0.0.1:{port}/{repo}:1"), digest: Some(format!("sha256:{}", sha256_hex(manifest(size).as_bytes()))) };
    let e = super::fetch(&pinned("big", 1 << 40), &how(dir.path())).await.unwrap_err();
    assert!(e.contains("1099511627776 bytes, over policies.remote_max_bytes"), "{e}");
    // A layer that says 10 bytes and never ends: cut at the bound.
    let started = std::time::Instant::now();
    let e = super::fetch(&pinned("liar", 10), &how(dir.path())).await.unwrap_err();
    assert!(e.contains("over the limit of 1048576"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
