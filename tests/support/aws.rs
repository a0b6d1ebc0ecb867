//! The moto server (a real implementation of the EC2 API, from PyPI
//! `moto[server]`) and the fault-injecting proxy in front of it, both on
//! loopback, both stopped when dropped.
//!
//! `.ci/run` installs moto. Elsewhere the tests say how; set
//! `SCALEWISE_MOTO_SERVER` to use another binary.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::host::free_port;

/// How to run the moto server: `$SCALEWISE_MOTO_SERVER`, else `moto_server`
/// on PATH, else `python3 -m moto.server` (wherever pip put the package).
fn moto_command() -> Command {
    if let Some(p) = std::env::var_os("SCALEWISE_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Command::new(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    if let Some(bin) = std::env::split_paths(&path).map(|d| d.join("moto_server")).find(|p| p.is_file()) {
        return Command::new(bin);
    }
    let found = Command::new("python3").args(["-c", "import moto.server"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    assert!(found, "the moto server is not installed: `pip install 'moto[server]'` (or set SCALEWISE_MOTO_SERVER)");
    let mut c = Command::new("python3");
    c.args(["-m", "moto.server"]);
    c
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited at start: {status}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{what} did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the child when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One EC2 instance as moto reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Instance {
    pub id: String,
    pub state: String,
    pub spot: bool,
}

pub struct Moto {
    _child: Reaped,
    pub url: String,
}

/// A SigV4-shaped Authorization header: moto routes by its service and
/// region and does not check the signature.
const AUTH: &str = "AWS4-HMAC-SHA256 Credential=testing/20261123/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=0";

impl Moto {
    pub fn start() -> Moto {
        let port = free_port();
        let mut child = moto_command()
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting moto_server");
        wait_for_port(port, &mut child, "moto_server");
        Moto { _child: Reaped(child), url: format!("http://127.0.0.1:{port}") }
    }

    /// Every instance tagged `scalewise:pool = pool`, in any state.
    pub fn instances(&self, pool: &str) -> Vec<Ec2Instance> {
        let body = format!("Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Ascalewise%3Apool&Filter.1.Value.1={pool}");
        let xml = reqwest::blocking::Client::new()
            .post(&self.url)
            .header("Authorization", AUTH)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap()
            .text()
            .unwrap();
        // One <item> per instance inside <instancesSet>; read what is needed.
        xml.split("<instanceId>")
            .skip(1)
            .map(|chunk| {
                let id = chunk.split('<').next().unwrap().to_owned();
                let state = chunk.split("<instanceState>").nth(1).and_then(|s| s.split("<name>").nth(1)).and_then(|s| s.split('<').next()).unwrap_or("?");
                Ec2Instance { id, state: state.to_owned(), spot: false }
            })
            .zip(xml.split("<instanceId>").map(|c| c.contains("<instanceLifecycle>spot")))
            .map(|(mut i, spot_before)| {
                // instanceLifecycle comes before instanceId within an item.
                i.spot = spot_before;
                i
            })
            .collect()
    }

    /// The pool's instances that are pending or running.
    pub fn live(&self, pool: &str) -> Vec<Ec2Instance> {
        self.instances(pool).into_iter().filter(|i| i.state == "pending" || i.state == "running").collect()
    }
}

pub struct FaultProxy {
    _child: Reaped,
    pub url: String,
}

impl FaultProxy {
    /// Start the proxy in front of `upstream` with `args` (see
    /// `ec2_fault_proxy.py`: `--throttle 0.1`, `--quota 5`, ...).
    pub fn start(upstream: &str, args: &[&str]) -> FaultProxy {
        let script = crate::root().join("tests/support/ec2_fault_proxy.py");
        let port = free_port();
        let upstream = upstream.trim_start_matches("http://");
        let mut child = Command::new("python3")
            .arg(script)
            .args(["--upstream", upstream, "--port", &port.to_string(), "--lifetime", "600"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the fault proxy (python3)");
        wait_for_port(port, &mut child, "the fault proxy");
        FaultProxy { _child: Reaped(child), url: format!("http://127.0.0.1:{port}") }
    }

    pub fn stats(&self) -> Value {
        reqwest::blocking::get(format!("{}/__proxy/stats", self.url)).unwrap().json().unwrap()
    }
}
