//! QMP peers for tests: a scripted peer that replays an exact conversation (including
//! hostile behaviour), a small stateful fake of QEMU's device model for concurrency tests,
//! and a launcher for the real qemu-system-s390x.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a peer waits for anything from the client before giving up (bounds every test).
pub const PEER_PATIENCE: Duration = Duration::from_secs(20);

/// The greeting of QEMU `major.minor.micro`.
pub fn greeting(major: u64, minor: u64, micro: u64) -> String {
    json!({"QMP": {"version": {"qemu": {"micro": micro, "minor": minor, "major": major},
        "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}})
    .to_string()
}

/// One step of a scripted conversation.
#[derive(Debug, Clone)]
pub enum Step {
    /// Send this line (`\r\n` is appended, as QEMU does).
    Send(String),
    /// Send these bytes exactly.
    Raw(Vec<u8>),
    /// Expect a command with this name whose arguments contain these members.
    Expect(String, Value),
    /// Reply `return` to the last command (echoing its id).
    Reply(Value),
    /// Reply an error with QEMU's class and desc to the last command.
    Error(String, String),
    /// Reply `return` with this id instead of the command's.
    ReplyWithId(Value, Value),
    /// Send an event.
    Event(String, Value),
    /// Send this many events named `name` at once.
    Flood(usize, String),
    /// Wait.
    Delay(Duration),
    /// Close the connection now.
    Disconnect,
}

/// A conversation, built step by step.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The steps in order.
    pub steps: Vec<Step>,
}

impl Script {
    /// An empty script (the peer accepts and then says nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// QEMU 7.2.22's greeting and capabilities negotiation.
    pub fn qemu() -> Self {
        Self::new()
            .send(&greeting(7, 2, 22))
            .expect("qmp_capabilities")
            .reply(json!({}))
    }

    /// Adds a step.
    pub fn step(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// See [`Step::Send`].
    pub fn send(self, line: &str) -> Self {
        self.step(Step::Send(line.to_string()))
    }

    /// See [`Step::Raw`].
    pub fn raw(self, bytes: impl Into<Vec<u8>>) -> Self {
        self.step(Step::Raw(bytes.into()))
    }

    /// Expects a command by name.
    pub fn expect(self, command: &str) -> Self {
        self.step(Step::Expect(command.to_string(), json!({})))
    }

    /// Expects a command whose arguments contain `args`' members.
    pub fn expect_args(self, command: &str, args: Value) -> Self {
        self.step(Step::Expect(command.to_string(), args))
    }

    /// See [`Step::Reply`].
    pub fn reply(self, value: Value) -> Self {
        self.step(Step::Reply(value))
    }

    /// See [`Step::Error`].
    pub fn error(self, class: &str, desc: &str) -> Self {
        self.step(Step::Error(class.to_string(), desc.to_string()))
    }

    /// See [`Step::Event`].
    pub fn event(self, name: &str, data: Value) -> Self {
        self.step(Step::Event(name.to_string(), data))
    }

    /// See [`Step::Delay`].
    pub fn delay(self, d: Duration) -> Self {
        self.step(Step::Delay(d))
    }

    /// See [`Step::Disconnect`].
    pub fn disconnect(self) -> Self {
        self.step(Step::Disconnect)
    }

    /// `qom-list` of `path` answered with these `(name, type)` children (plus QOM's `type`).
    pub fn qom_list(self, path: &str, children: &[(&str, &str)]) -> Self {
        let mut entries = vec![json!({"name": "type", "type": "string"})];
        entries.extend(children.iter().map(|(n, t)| json!({"name": n, "type": t})));
        self.expect_args("qom-list", json!({ "path": path }))
            .reply(Value::Array(entries))
    }

    /// The guest's peripheral containers as QEMU lists them: `named` under
    /// /machine/peripheral, nothing under /machine/peripheral-anon.
    pub fn peripherals(self, named: &[(&str, &str)]) -> Self {
        self.qom_list("/machine/peripheral", named)
            .qom_list("/machine/peripheral-anon", &[])
    }

    /// `qom-get` of a device's sysfsdev.
    pub fn sysfsdev(self, qom_path: &str, value: &str) -> Self {
        self.expect_args(
            "qom-get",
            json!({ "path": qom_path, "property": "sysfsdev" }),
        )
        .reply(json!(value))
    }
}

/// What the peer saw.
#[derive(Debug, Default)]
pub struct PeerLog {
    /// Every command received, in order.
    pub received: Vec<Value>,
    /// Where the client departed from the script.
    pub errors: Vec<String>,
}

/// A unix-socket QMP peer replaying a [`Script`] to the first client, in a thread.
pub struct ScriptedPeer {
    _dir: tempfile::TempDir,
    path: PathBuf,
    handle: Option<JoinHandle<PeerLog>>,
}

impl ScriptedPeer {
    /// Binds a socket in a new temporary directory and starts replaying.
    pub fn start(script: Script) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).expect("bind the peer's socket");
        let handle = std::thread::spawn(move || replay(listener, script));
        ScriptedPeer {
            _dir: dir,
            path,
            handle: Some(handle),
        }
    }

    /// The socket to give the client.
    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// Waits for the conversation to end (bounded by [`PEER_PATIENCE`]) and returns the log.
    pub fn finish(mut self) -> PeerLog {
        self.handle
            .take()
            .map(|h| h.join().expect("peer thread"))
            .unwrap_or_default()
    }

    /// [`ScriptedPeer::finish`], panicking when the client departed from the script.
    pub fn assert_followed(self) -> PeerLog {
        let log = self.finish();
        assert!(
            log.errors.is_empty(),
            "script not followed: {:?}\nreceived: {:?}",
            log.errors,
            log.received
        );
        log
    }
}

fn accept(listener: &UnixListener) -> Option<UnixStream> {
    listener.set_nonblocking(true).ok()?;
    let deadline = Instant::now() + PEER_PATIENCE;
    while Instant::now() < deadline {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).ok()?;
                s.set_read_timeout(Some(PEER_PATIENCE)).ok()?;
                return Some(s);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => return None,
        }
    }
    None
}

fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        _ => have == want,
    }
}

fn replay(listener: UnixListener, script: Script) -> PeerLog {
    let mut log = PeerLog::default();
    let Some(stream) = accept(&listener) else {
        log.errors.push("no client connected".into());
        return log;
    };
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut last_id = Value::Null;
    let write = |w: &mut UnixStream, bytes: &[u8]| {
        // A client that gave up and closed is not a script error.
        let _ = w.write_all(bytes);
    };
    for step in script.steps {
        match step {
            Step::Send(line) => write(&mut writer, format!("{line}\r\n").as_bytes()),
            Step::Raw(bytes) => write(&mut writer, &bytes),
            Step::Expect(name, args) => {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => {
                        log.errors.push(format!(
                            "the client closed or fell silent before sending {name}"
                        ));
                        return log;
                    }
                    Ok(_) => {}
                }
                let cmd: Value = match serde_json::from_str(&line) {
                    Ok(v) => v,
                    Err(e) => {
                        log.errors
                            .push(format!("the client sent non-JSON {line:?}: {e}"));
                        return log;
                    }
                };
                last_id = cmd.get("id").cloned().unwrap_or(Value::Null);
                if cmd.get("execute") != Some(&json!(name)) {
                    log.errors.push(format!("expected {name}, got {cmd}"));
                } else if !contains(cmd.get("arguments").unwrap_or(&json!({})), &args) {
                    log.errors.push(format!(
                        "expected {name} with arguments containing {args}, got {cmd}"
                    ));
                }
                log.received.push(cmd);
            }
            Step::Reply(v) => write(
                &mut writer,
                format!("{}\r\n", json!({"return": v, "id": last_id})).as_bytes(),
            ),
            Step::Error(class, desc) => write(
                &mut writer,
                format!(
                    "{}\r\n",
                    json!({"id": last_id, "error": {"class": class, "desc": desc}})
                )
                .as_bytes(),
            ),
            Step::ReplyWithId(v, id) => write(
                &mut writer,
                format!("{}\r\n", json!({"return": v, "id": id})).as_bytes(),
            ),
            Step::Event(name, data) => write(&mut writer, event_line(&name, &data).as_bytes()),
            Step::Flood(n, name) => {
                let mut buf = String::new();
                for i in 0..n {
                    buf.push_str(&event_line(&name, &json!({ "n": i })));
                }
                write(&mut writer, buf.as_bytes());
            }
            Step::Delay(d) => std::thread::sleep(d),
            Step::Disconnect => return log,
        }
    }
    // Keep the connection open until the client leaves (bounded).
    let mut sink = Vec::new();
    loop {
        sink.clear();
        match reader.read_until(b'\n', &mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Ok(v) = serde_json::from_slice::<Value>(&sink) {
                    log.received.push(v);
                }
            }
        }
    }
    log
}

fn event_line(name: &str, data: &Value) -> String {
    format!(
        "{}\r\n",
        json!({"event": name, "data": data, "timestamp": {"seconds": 1700000000, "microseconds": 1}})
    )
}

/// A device in a [`FakeQemu`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDevice {
    /// Its id (`None`: under /machine/peripheral-anon).
    pub id: Option<String>,
    /// Its driver (`vfio-ap`).
    pub driver: String,
    /// Its sysfsdev property.
    pub sysfsdev: Option<String>,
}

#[derive(Debug)]
struct FakeState {
    devices: Vec<FakeDevice>,
    ap_bus: bool,
    clients: Vec<UnixStream>,
    exited: bool,
}

/// A small model of QEMU's QMP device handling (qom-list, qom-get, device_add, device_del,
/// DEVICE_DELETED broadcast) and of a guest that honours system_powerdown (POWERDOWN,
/// SHUTDOWN, then QEMU exits), serving any number of clients at once.
pub struct FakeQemu {
    _dir: tempfile::TempDir,
    path: PathBuf,
    state: Arc<Mutex<FakeState>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl FakeQemu {
    /// Starts the fake with these devices; `ap_bus` says whether the CPU model has AP.
    pub fn start(devices: Vec<FakeDevice>, ap_bus: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let state = Arc::new(Mutex::new(FakeState {
            devices,
            ap_bus,
            clients: Vec::new(),
            exited: false,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            let mut workers = Vec::new();
            let deadline = Instant::now() + PEER_PATIENCE * 3;
            while !sp.load(Ordering::SeqCst) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((s, _)) => {
                        let (st, sp) = (st.clone(), sp.clone());
                        workers.push(std::thread::spawn(move || serve(s, st, sp)));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            for w in workers {
                let _ = w.join();
            }
        });
        FakeQemu {
            _dir: dir,
            path,
            state,
            stop,
            handle: Some(handle),
        }
    }

    /// The socket to give the client.
    pub fn socket(&self) -> &Path {
        &self.path
    }

    /// The devices now present.
    pub fn devices(&self) -> Vec<FakeDevice> {
        self.state.lock().unwrap().devices.clone()
    }
}

impl Drop for FakeQemu {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn serve(stream: UnixStream, state: Arc<Mutex<FakeState>>, stop: Arc<AtomicBool>) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    {
        let mut st = state.lock().unwrap();
        if st.exited {
            return; // QEMU is gone: the connection closes at once
        }
        let _ = writer.write_all(format!("{}\r\n", greeting(7, 2, 22)).as_bytes());
        if let Ok(w) = stream.try_clone() {
            st.clients.push(w);
        }
    }
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let deadline = Instant::now() + PEER_PATIENCE;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with(b"\n") => {}
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let Ok(cmd) = serde_json::from_slice::<Value>(&line) else {
            return;
        };
        line.clear();
        let id = cmd.get("id").cloned().unwrap_or(Value::Null);
        let args = cmd.get("arguments").cloned().unwrap_or(json!({}));
        let name = cmd.get("execute").and_then(Value::as_str).unwrap_or("");
        let mut st = state.lock().unwrap();
        let (reply, events) = handle(&mut st, name, &args);
        let reply = match reply {
            Ok(v) => json!({"return": v, "id": id}),
            Err((class, desc)) => json!({"error": {"class": class, "desc": desc}, "id": id}),
        };
        let _ = writer.write_all(format!("{reply}\r\n").as_bytes());
        for (event, data) in events {
            st.clients
                .retain_mut(|c| c.write_all(event_line(event, &data).as_bytes()).is_ok());
        }
        if st.exited {
            // QEMU exits after the guest shut down: every monitor connection closes.
            for c in st.clients.drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
            return;
        }
    }
}

type Handled = (Result<Value, (String, String)>, Vec<(&'static str, Value)>);

fn handle(st: &mut FakeState, name: &str, args: &Value) -> Handled {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let path_of = |d: &FakeDevice, i: usize| match &d.id {
        Some(id) => format!("/machine/peripheral/{id}"),
        None => format!("/machine/peripheral-anon/device[{i}]"),
    };
    match name {
        "qmp_capabilities" => (Ok(json!({})), vec![]),
        "query-version" => (
            Ok(json!({"qemu": {"major": 7, "minor": 2, "micro": 22}, "package": ""})),
            vec![],
        ),
        "qom-list" => {
            let path = s(args, "path").unwrap_or_default();
            let mut out = vec![json!({"name": "type", "type": "string"})];
            for (i, d) in st.devices.iter().enumerate() {
                let p = path_of(d, i);
                if let Some(name) = p.strip_prefix(&format!("{path}/")) {
                    out.push(json!({"name": name, "type": format!("child<{}>", d.driver)}));
                }
            }
            (Ok(Value::Array(out)), vec![])
        }
        "qom-get" => {
            let path = s(args, "path").unwrap_or_default();
            let found = st
                .devices
                .iter()
                .enumerate()
                .find(|(i, d)| path_of(d, *i) == path);
            match found.and_then(|(_, d)| d.sysfsdev.clone()) {
                Some(v) => (Ok(json!(v)), vec![]),
                None => (
                    Err((
                        "DeviceNotFound".into(),
                        format!("Device '{path}' not found"),
                    )),
                    vec![],
                ),
            }
        }
        "device_add" => {
            let driver = s(args, "driver").unwrap_or_default();
            let id = s(args, "id");
            if driver == "vfio-ap"
                && (!st.ap_bus || st.devices.iter().any(|d| d.driver == "vfio-ap"))
            {
                return (
                    Err((
                        "GenericError".into(),
                        "No 'ap-bus' bus found for device 'vfio-ap'".into(),
                    )),
                    vec![],
                );
            }
            if id.is_some() && st.devices.iter().any(|d| d.id == id) {
                return (
                    Err((
                        "GenericError".into(),
                        format!(
                            "Duplicate device ID '{}' for device",
                            id.unwrap_or_default()
                        ),
                    )),
                    vec![],
                );
            }
            st.devices.push(FakeDevice {
                id,
                driver,
                sysfsdev: s(args, "sysfsdev"),
            });
            (Ok(json!({})), vec![])
        }
        "device_del" => {
            let want = s(args, "id").unwrap_or_default();
            let pos = st
                .devices
                .iter()
                .enumerate()
                .position(|(i, d)| d.id.as_deref() == Some(&want) || path_of(d, i) == want);
            match pos {
                Some(i) => {
                    let d = st.devices.remove(i);
                    let path = path_of(&d, i);
                    let mut data = json!({ "path": path });
                    if let Some(id) = d.id {
                        data["device"] = json!(id);
                    }
                    (Ok(json!({})), vec![("DEVICE_DELETED", data)])
                }
                None => (
                    Err((
                        "DeviceNotFound".into(),
                        format!("Device '{want}' not found"),
                    )),
                    vec![],
                ),
            }
        }
        "system_powerdown" => {
            // The guest honours the request and shuts down; QEMU then exits.
            st.exited = true;
            let shutdown = json!({"guest": true, "reason": "guest-shutdown"});
            (
                Ok(json!({})),
                vec![("POWERDOWN", json!({})), ("SHUTDOWN", shutdown)],
            )
        }
        other => (
            Err((
                "CommandNotFound".into(),
                format!("The command {other} has not been found"),
            )),
            vec![],
        ),
    }
}

/// A real qemu-system-s390x (TCG, no devices, stopped with -S) with a QMP socket, killed
/// when dropped.
pub struct RealQemu {
    child: Child,
    _dir: tempfile::TempDir,
    path: PathBuf,
}

/// The QEMU binary the real-QEMU tests use (`APLAUNCH_TEST_QEMU` or /usr/bin/qemu-system-s390x).
pub fn qemu_binary() -> PathBuf {
    std::env::var_os(crate::qemu::TEST_QEMU_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/qemu-system-s390x"))
}

impl RealQemu {
    /// Starts QEMU with `extra` arguments. When the binary is missing: panics if `CI=true`
    /// (the test must fail there), else prints why and returns `None` (the test skips).
    pub fn start(extra: &[&str]) -> Option<RealQemu> {
        let bin = qemu_binary();
        if !bin.exists() {
            let why = format!(
                "{} is missing (Debian package qemu-system-misc)",
                bin.display()
            );
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but {why}");
            }
            eprintln!("skipping: {why}");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("qmp.sock");
        let mut child = std::process::Command::new(&bin)
            .args([
                "-machine",
                "s390-ccw-virtio,accel=tcg",
                "-nodefaults",
                "-display",
                "none",
                "-S",
            ])
            .arg("-qmp")
            .arg(format!("unix:{},server=on,wait=off", path.display()))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-s390x");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !path.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                panic!("qemu-system-s390x exited ({status}) before creating its QMP socket: {err}");
            }
            assert!(
                Instant::now() < deadline,
                "qemu-system-s390x did not create its QMP socket within 30 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(RealQemu {
            child,
            _dir: dir,
            path,
        })
    }

    /// The QMP socket.
    pub fn socket(&self) -> &Path {
        &self.path
    }
}

impl Drop for RealQemu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
