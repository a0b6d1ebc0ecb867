//! A headless Chromium that a test can click in: the DevTools protocol over
//! `--remote-debugging-pipe`.
//!
//! Why a pipe and not the usual WebSocket: the protocol over a pipe is the
//! same JSON, one message per NUL-terminated frame, on file descriptors 3
//! (commands in) and 4 (answers and events out). That needs no WebSocket
//! client and no port, so the tests drive the real browser with nothing but
//! std and serde_json. `--dump-dom` ([`super::tools::dump_dom`]) shows what a
//! page drew; this is for what a user does on it: type a token, press a
//! button, follow a link, and see what the host answered.
//!
//! Every wait is bounded: answers are read on a thread and received with a
//! timeout, and [`Browser::wait_for`] polls an expression until it holds or
//! its time is up. Dropping the browser kills it.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one DevTools command may take to answer.
const ANSWER_SECS: u64 = 60;

pub struct Browser {
    child: Child,
    commands: File,
    answers: Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is two writable ints, as pipe2 requires.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    (fds[0], fds[1])
}

impl Browser {
    /// Chromium showing `url` in a `width` × `height` CSS-pixel viewport
    /// (below 600 px wide it presents itself as a phone).
    pub fn open(chromium: &Path, url: &str, width: u32, height: u32) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let (cmd_read, cmd_write) = pipe();
        let (ans_read, ans_write) = pipe();
        let mut command = Command::new(chromium);
        command
            .args(super::tools::HEADLESS)
            .arg("--remote-debugging-pipe")
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(profile.path().join("chromium.log")).map(Stdio::from).unwrap_or(Stdio::null()));
        // SAFETY: only async-signal-safe calls (dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // First out of the way (either may be 3 or 4 itself), then
                // onto 3 and 4; dup2 clears close-on-exec on the copies, so
                // exactly those two pass on.
                let (r, w) = (libc::fcntl(cmd_read, libc::F_DUPFD_CLOEXEC, 10), libc::fcntl(ans_write, libc::F_DUPFD_CLOEXEC, 10));
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("start chromium");
        // SAFETY: each fd is ours alone from here on; File closes it.
        let (commands, answers_file) = unsafe {
            libc::close(cmd_read);
            libc::close(ans_write);
            (File::from_raw_fd(cmd_write), File::from_raw_fd(ans_read))
        };
        let (tx, answers) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(answers_file);
            let mut frame = Vec::new();
            while reader.read_until(0, &mut frame).is_ok_and(|n| n > 0) {
                frame.pop_if(|b| *b == 0);
                if let Ok(v) = serde_json::from_slice::<Value>(&frame)
                    && tx.send(v).is_err()
                {
                    return;
                }
                frame.clear();
            }
        });
        let mut b = Browser { child, commands, answers, next_id: 0, session: String::new(), _profile: profile };
        let target = b.call("Target.createTarget", json!({ "url": "about:blank" }), None);
        let target = target["targetId"].as_str().expect("a target id").to_owned();
        let attached = b.call("Target.attachToTarget", json!({ "targetId": target, "flatten": true }), None);
        b.session = attached["sessionId"].as_str().expect("a session id").to_owned();
        let mobile = width < 600;
        b.send("Emulation.setDeviceMetricsOverride", json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }));
        b.send("Page.navigate", json!({ "url": url }));
        b
    }

    /// A command to the browser (no session) or to the page; its result.
    fn call(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut frame = serde_json::to_vec(&message).unwrap();
        frame.push(0);
        if let Err(e) = self.commands.write_all(&frame) {
            let log = std::fs::read_to_string(self._profile.path().join("chromium.log")).unwrap_or_default();
            panic!("chromium is gone ({e}); its log:\n{}", log.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
        }
        // Generous: on two busy cores (a CI run, hosts of parallel tests)
        // a fresh Chromium took over 20 s to open its first tab.
        let deadline = Instant::now() + Duration::from_secs(ANSWER_SECS);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.answers.recv_timeout(left).unwrap_or_else(|_| panic!("chromium did not answer {method} within {ANSWER_SECS} s"));
            if v["id"].as_u64() == Some(id) {
                assert!(v["error"].is_null(), "{method}: {}", v["error"]);
                return v["result"].clone();
            }
        }
    }

    fn send(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(method, params, Some(&session))
    }

    /// Evaluate `expression` in the page (awaiting a promise); its value.
    /// A thrown exception fails the test with the page's message.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression).unwrap_or_else(|e| panic!("`{expression}` threw: {e}"))
    }

    /// The same; a thrown exception is the error.
    pub fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.send("Runtime.evaluate", json!({ "expression": expression, "awaitPromise": true, "returnByValue": true, "userGesture": true }));
        match r.get("exceptionDetails") {
            Some(e) => Err(e["exception"]["description"].as_str().map(str::to_owned).unwrap_or_else(|| e.to_string())),
            None => Ok(r["result"]["value"].clone()),
        }
    }

    /// Poll `expression` until it is truthy (not null, false, 0 or "") for
    /// at most `within`; its value. Until then a throw counts as not yet
    /// (the element may not be drawn).
    pub fn wait_for(&mut self, what: &str, within: Duration, expression: &str) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.try_eval(expression);
            if let Ok(v) = &v
                && !matches!(v, Value::Null | Value::Bool(false))
                && *v != json!(0)
                && *v != json!("")
            {
                return v.clone();
            }
            assert!(Instant::now() < deadline, "waited {within:?} for {what}; last: {v:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
