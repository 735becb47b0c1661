//! A small synchronous QMP client on `serde_json::Value`.
//!
//! It connects to QEMU's monitor socket with a timeout, reads the greeting, negotiates
//! capabilities, executes commands one at a time with ids (replies are matched by id), and
//! queues every event whatever its name, so that a QEMU newer than this code never breaks it.
//! Every wait has a deadline; every line has a length bound; nothing a peer sends can make it
//! panic. No async runtime.
//!
//! ```no_run
//! use launcher::qmp::Qmp;
//! use serde_json::json;
//! use std::time::Duration;
//!
//! let mut qmp = Qmp::connect("/run/guest/qmp.sock", Duration::from_secs(5))?;
//! println!("QEMU {}", qmp.version());
//! let children = qmp.execute("qom-list", json!({"path": "/machine/peripheral"}))?;
//! qmp.execute("device_del", json!({"id": "hostdev0"}))?;
//! let ev = qmp.wait_event(Duration::from_secs(10), |e| {
//!     e.name == "DEVICE_DELETED" && e.data_str("device") == Some("hostdev0")
//! })?;
//! # Ok::<(), launcher::qmp::Error>(())
//! ```

pub mod error;
pub mod reader;

pub use error::{Error, Result};
pub use reader::{Event, Greeting, Message, Reply, Timestamp, Version, DEFAULT_MAX_LINE};

use reader::{parse_message, LineReader};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// At most this many events are kept; older ones are dropped first (and counted).
pub const DEFAULT_MAX_EVENTS: usize = 4096;

/// Default bound on the client's memory for what a peer sends: queued events (their
/// parsed size) plus the bytes of the message being received, 16 MiB.
pub const DEFAULT_MAX_MEMORY: usize = 16 << 20;

const READ_CHUNK: usize = 16 * 1024;

/// How to connect.
#[derive(Debug, Clone)]
pub struct Options {
    /// Deadline for connecting, for the greeting, and the default for each command.
    pub timeout: Duration,
    /// Bound on one message in bytes.
    pub max_line: usize,
    /// Bound on queued events.
    pub max_events: usize,
    /// Bound in bytes on queued events (parsed size) and the message being received
    /// together; a peer exceeding it is reported as [`Error::Flood`].
    pub max_memory: usize,
    /// The only events kept for [`Qmp::wait_event`], by name (`None`: all). Others are
    /// counted as dropped the moment they arrive, without parsing their data.
    pub keep_events: Option<Vec<String>>,
    /// Send `qmp_capabilities` after the greeting (leave true unless testing).
    pub negotiate: bool,
}

impl Options {
    /// Defaults with this timeout.
    pub fn with_timeout(timeout: Duration) -> Self {
        Options {
            timeout,
            max_line: DEFAULT_MAX_LINE,
            max_events: DEFAULT_MAX_EVENTS,
            max_memory: DEFAULT_MAX_MEMORY,
            keep_events: None,
            negotiate: true,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self::with_timeout(Duration::from_secs(5))
    }
}

/// A QMP connection in command mode.
#[derive(Debug)]
pub struct Qmp {
    stream: UnixStream,
    reader: LineReader,
    greeting: Greeting,
    timeout: Duration,
    /// Ids of commands whose reply was given up on; their late replies are discarded.
    abandoned: VecDeque<u64>,
    events: VecDeque<(Event, usize)>,
    max_events: usize,
    max_memory: usize,
    keep_events: Option<Vec<String>>,
    /// Measured size of the queued events.
    queued_bytes: usize,
    dropped_events: u64,
    broken: Option<String>,
}

impl Qmp {
    /// Connects to QEMU's QMP socket, reads the greeting and negotiates capabilities, each
    /// step bounded by `timeout`.
    pub fn connect(path: impl AsRef<Path>, timeout: Duration) -> Result<Qmp> {
        Self::connect_with(path, &Options::with_timeout(timeout))
    }

    /// [`Qmp::connect`] with every option.
    pub fn connect_with(path: impl AsRef<Path>, options: &Options) -> Result<Qmp> {
        let path = path.as_ref();
        let stream = connect_unix(path, options.timeout)?;
        Self::from_stream(stream, options)
    }

    /// Starts a session on an already connected stream (e.g. one end of a socketpair).
    pub fn from_stream(stream: UnixStream, options: &Options) -> Result<Qmp> {
        let mut qmp = Qmp {
            stream,
            // one message never takes more than the whole bound
            reader: LineReader::new(options.max_line.min(options.max_memory)),
            greeting: Greeting {
                version: Version::default(),
                package: String::new(),
                capabilities: Vec::new(),
            },
            timeout: options.timeout,
            abandoned: VecDeque::new(),
            events: VecDeque::new(),
            max_events: options.max_events.max(1),
            max_memory: options.max_memory,
            keep_events: options.keep_events.clone(),
            queued_bytes: 0,
            dropped_events: 0,
            broken: None,
        };
        let deadline = Instant::now() + options.timeout;
        qmp.greeting = qmp.read_greeting(deadline, options.timeout)?;
        if options.negotiate {
            qmp.execute("qmp_capabilities", Value::Null)?;
        }
        Ok(qmp)
    }

    fn read_greeting(&mut self, deadline: Instant, timeout: Duration) -> Result<Greeting> {
        loop {
            match self.read_message(deadline, "while waiting for the QMP greeting") {
                Ok(Message::Greeting(g)) => return Ok(g),
                Ok(Message::Event(_)) => continue,
                Ok(Message::Reply(r)) => {
                    return Err(Error::BadGreeting {
                        line: match r.result {
                            Ok(v) => format!("a reply {v}"),
                            Err((class, desc)) => format!("an error reply {class}: {desc}"),
                        },
                    })
                }
                Err(Error::Timeout { .. }) => return Err(Error::NoGreeting { timeout }),
                Err(Error::Garbage { line, .. }) => return Err(Error::BadGreeting { line }),
                Err(e) => return Err(e),
            }
        }
    }

    /// The greeting QEMU sent.
    pub fn greeting(&self) -> &Greeting {
        &self.greeting
    }

    /// QEMU's version from the greeting.
    pub fn version(&self) -> Version {
        self.greeting.version
    }

    /// The default timeout of [`Qmp::execute`].
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Changes the default timeout of [`Qmp::execute`].
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Executes a command and returns its `return` value. `arguments` may be `Value::Null`
    /// (or an empty object) for none. QEMU's errors come back as [`Error::Command`] with
    /// QEMU's class and desc. Events arriving meanwhile are queued.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value> {
        let timeout = self.timeout;
        self.execute_within(command, arguments, timeout)
    }

    /// [`Qmp::execute`] with its own timeout.
    pub fn execute_within(
        &mut self,
        command: &str,
        arguments: Value,
        timeout: Duration,
    ) -> Result<Value> {
        self.check_usable()?;
        // Requests are kept short because QEMU's monitor reads them byte by byte, one main
        // loop iteration each: the id is the smallest number that no abandoned command (whose
        // reply may still come) holds, so it is unique among the replies that can arrive.
        let mut id = 1;
        while self.abandoned.contains(&id) {
            id += 1;
        }
        let mut request = json!({ "execute": command, "id": id });
        match arguments {
            Value::Null => {}
            Value::Object(ref m) if m.is_empty() => {}
            args => request["arguments"] = args,
        }
        let mut line = serde_json::to_vec(&request).unwrap_or_default();
        line.push(b'\n');
        let deadline = Instant::now() + timeout;
        let result = match self.send(&line, command) {
            // The peer may have written more (an error, a partial message) before it closed:
            // read that before reporting the disconnect.
            Ok(()) | Err(Error::Disconnected { .. }) => {
                self.wait_reply(id, command, deadline, timeout)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            if !e.leaves_connection_usable() {
                self.broken = Some(e.to_string());
            } else if matches!(e, Error::Timeout { .. }) {
                if self.abandoned.len() >= 64 {
                    self.abandoned.pop_front();
                }
                self.abandoned.push_back(id);
            }
        }
        result
    }

    fn send(&mut self, line: &[u8], command: &str) -> Result<()> {
        // A bounded write: a peer that never reads must not block us forever.
        let _ = self
            .stream
            .set_write_timeout(Some(self.timeout.max(Duration::from_millis(1))));
        self.stream
            .write_all(line)
            .map_err(|source| match source.kind() {
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => Error::Disconnected {
                    during: format!("while sending {command}"),
                    partial: false,
                },
                ErrorKind::WouldBlock | ErrorKind::TimedOut => Error::Timeout {
                    waiting_for: format!("sending {command}"),
                    timeout: self.timeout,
                },
                _ => Error::Io {
                    during: format!("sending {command}"),
                    source,
                },
            })
    }

    fn wait_reply(
        &mut self,
        id: u64,
        command: &str,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Value> {
        let during = format!("while waiting for the reply to {command}");
        loop {
            let msg = self.read_message(deadline, &during).map_err(|e| match e {
                Error::Timeout { .. } => Error::Timeout {
                    waiting_for: format!("waiting for the reply to {command}"),
                    timeout,
                },
                e => e,
            })?;
            match msg {
                Message::Event(ev) => self.push_event(ev)?,
                Message::Greeting(_) => {
                    return Err(Error::Garbage {
                        line: "a second greeting".into(),
                        reason: format!("received {during}"),
                    })
                }
                Message::Reply(reply) => {
                    match &reply.id {
                        // QEMU omits the id only when it could not parse the command.
                        None => {}
                        Some(v) if v.as_u64() == Some(id) => {}
                        Some(v) if v.as_u64().is_some_and(|n| self.abandoned.contains(&n)) => {
                            continue;
                        }
                        Some(other) => {
                            return Err(Error::UnknownReplyId {
                                expected: id.to_string(),
                                got: other.to_string(),
                            })
                        }
                    }
                    return reply.result.map_err(|(class, desc)| Error::Command {
                        command: command.to_string(),
                        class,
                        desc,
                    });
                }
            }
        }
    }

    /// Reads one message, waiting at most until `deadline`.
    fn read_message(&mut self, deadline: Instant, during: &str) -> Result<Message> {
        loop {
            match self.reader.next_line() {
                Ok(Some(line)) => {
                    if let Some(keep) = &self.keep_events {
                        // Only the name is read (`data` is skipped, never built).
                        if let Some(name) = reader::event_name(line) {
                            if !keep.contains(&name) {
                                self.dropped_events += 1;
                                continue;
                            }
                        }
                    }
                    if let Some(msg) = parse_message(line)? {
                        return Ok(msg);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.broken = Some(e.to_string());
                    return Err(e);
                }
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Timeout {
                    waiting_for: during.trim_start_matches("while ").to_string(),
                    timeout: Duration::ZERO,
                });
            }
            let remaining = (deadline - now).max(Duration::from_millis(1));
            if let Err(source) = self.stream.set_read_timeout(Some(remaining)) {
                return Err(Error::Io {
                    during: during.to_string(),
                    source,
                });
            }
            let stream = &mut self.stream;
            match self.reader.fill_from(READ_CHUNK, |buf| stream.read(buf)) {
                Ok(0) => {
                    let partial = self.reader.has_partial();
                    let err = Error::Disconnected {
                        during: during.to_string(),
                        partial,
                    };
                    self.broken = Some(err.to_string());
                    return Err(err);
                }
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    let err = Error::Disconnected {
                        during: during.to_string(),
                        partial: self.reader.has_partial(),
                    };
                    self.broken = Some(err.to_string());
                    return Err(err);
                }
                Err(source) => {
                    return Err(Error::Io {
                        during: during.to_string(),
                        source,
                    })
                }
            }
        }
    }

    fn push_event(&mut self, ev: Event) -> Result<()> {
        if self.events.len() >= self.max_events {
            if let Some((_, size)) = self.events.pop_front() {
                self.queued_bytes -= size;
            }
            self.dropped_events += 1;
        }
        tracing::debug!(event = %ev.name, data = %ev.data, "QMP event");
        let size = reader::event_size(&ev);
        self.queued_bytes += size;
        self.events.push_back((ev, size));
        let used = self.queued_bytes + self.reader.buffered();
        if used > self.max_memory {
            // Nobody has waited for these events; a peer sending them faster than they
            // are taken is hostile or broken. Free them and stop listening to it.
            let err = Error::Flood {
                limit: self.max_memory,
                events: self.events.len(),
            };
            self.events.clear();
            self.queued_bytes = 0;
            self.broken = Some(err.to_string());
            return Err(err);
        }
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        match &self.broken {
            Some(why) => Err(Error::Broken(why.clone())),
            None => Ok(()),
        }
    }

    /// Waits until an event matching `pred` arrives (or is already queued) and removes it
    /// from the queue; other events stay queued. Gives up after `timeout`.
    pub fn wait_event(
        &mut self,
        timeout: Duration,
        pred: impl FnMut(&Event) -> bool,
    ) -> Result<Event> {
        self.wait_event_until(Instant::now() + timeout, pred)
    }

    /// [`Qmp::wait_event`] with an absolute deadline.
    pub fn wait_event_until(
        &mut self,
        deadline: Instant,
        pred: impl FnMut(&Event) -> bool,
    ) -> Result<Event> {
        let start = Instant::now();
        let result = self.wait_event_inner(deadline, pred);
        if let Err(e) = &result {
            if !e.leaves_connection_usable() && self.broken.is_none() {
                self.broken = Some(e.to_string());
            }
        }
        result.map_err(|e| match e {
            Error::Timeout { waiting_for, .. } => Error::Timeout {
                waiting_for,
                timeout: deadline.saturating_duration_since(start),
            },
            e => e,
        })
    }

    fn wait_event_inner(
        &mut self,
        deadline: Instant,
        mut pred: impl FnMut(&Event) -> bool,
    ) -> Result<Event> {
        self.check_usable()?;
        if let Some(pos) = self.events.iter().position(|(e, _)| pred(e)) {
            if let Some((ev, size)) = self.events.remove(pos) {
                self.queued_bytes -= size;
                return Ok(ev);
            }
        }
        let during = "while waiting for an event";
        loop {
            match self.read_message(deadline, during)? {
                Message::Event(ev) => {
                    if pred(&ev) {
                        return Ok(ev);
                    }
                    self.push_event(ev)?;
                }
                Message::Reply(reply) => {
                    if let Some(n) = reply.id.as_ref().and_then(Value::as_u64) {
                        if self.abandoned.contains(&n) {
                            continue;
                        }
                    }
                    let err = Error::UnknownReplyId {
                        expected: "none".into(),
                        got: reply.id.map_or_else(|| "(no id)".into(), |v| v.to_string()),
                    };
                    return Err(err);
                }
                Message::Greeting(_) => {
                    return Err(Error::Garbage {
                        line: "a second greeting".into(),
                        reason: during.into(),
                    })
                }
            }
        }
    }

    /// Reads whatever events arrive within `timeout` into the queue (without blocking longer).
    pub fn poll_events(&mut self, timeout: Duration) -> Result<()> {
        match self.wait_event(timeout, |_| false) {
            Err(Error::Timeout { .. }) => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// The queued events, oldest first.
    pub fn events(&self) -> Vec<&Event> {
        self.events.iter().map(|(e, _)| e).collect()
    }

    /// Removes and returns every queued event.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.queued_bytes = 0;
        self.events.drain(..).map(|(e, _)| e).collect()
    }

    /// The measured size of the queued events, in bytes.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// How many events were dropped because the queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }
}

/// The QEMU probe can ask through this client: QEMU's error replies stay replies, every
/// other failure becomes an I/O error carrying this client's message.
impl crate::probe::QmpExchange for Qmp {
    fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> std::io::Result<std::result::Result<Value, crate::probe::QmpErrorReply>> {
        match Qmp::execute(self, command, arguments.unwrap_or(Value::Null)) {
            Ok(v) => Ok(Ok(v)),
            Err(Error::Command { class, desc, .. }) => {
                Ok(Err(crate::probe::QmpErrorReply { class, desc }))
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    ErrorKind::TimedOut
                } else if matches!(e, Error::Disconnected { .. }) {
                    ErrorKind::UnexpectedEof
                } else {
                    ErrorKind::InvalidData
                };
                Err(std::io::Error::new(kind, e.to_string()))
            }
        }
    }
}

/// Connects a unix stream socket, O_CLOEXEC, until `timeout`, retrying while the listener's
/// backlog is full, while the socket file does not exist yet (ENOENT) and while it exists but
/// nobody listens yet (ECONNREFUSED: QEMU binds its socket before it listens). After the
/// deadline the last error is reported.
fn connect_unix(path: &Path, timeout: Duration) -> Result<UnixStream> {
    use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
    let deadline = Instant::now() + timeout;
    let io_err = |e: nix::Error| Error::Connect {
        path: path.to_path_buf(),
        source: std::io::Error::from(e),
    };
    let addr = UnixAddr::new(path).map_err(io_err)?;
    loop {
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )
        .map_err(io_err)?;
        match connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &addr) {
            Ok(()) => {
                let stream = UnixStream::from(fd);
                stream
                    .set_nonblocking(false)
                    .map_err(|source| Error::Connect {
                        path: path.to_path_buf(),
                        source,
                    })?;
                return Ok(stream);
            }
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => {
                if Instant::now() >= deadline {
                    return Err(Error::ConnectTimeout {
                        path: PathBuf::from(path),
                        timeout,
                    });
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e @ (nix::Error::ENOENT | nix::Error::ECONNREFUSED)) => {
                if Instant::now() >= deadline {
                    return Err(io_err(e));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(io_err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    const GREETING: &str = r#"{"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},"package":""},"capabilities":["oob"]}}"#;

    /// Runs `peer` on the other end of a socketpair.
    fn pair(
        peer: impl FnOnce(UnixStream) + Send + 'static,
    ) -> (UnixStream, std::thread::JoinHandle<()>) {
        let (a, b) = UnixStream::pair().unwrap();
        (a, std::thread::spawn(move || peer(b)))
    }

    fn read_cmd(r: &mut impl BufRead) -> Value {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap()
    }

    #[test]
    fn handshake_command_and_interleaved_unknown_events() {
        let (a, peer) = pair(|s| {
            let mut w = s.try_clone().unwrap();
            let mut r = std::io::BufReader::new(s);
            writeln!(w, "{GREETING}").unwrap();
            let caps = read_cmd(&mut r);
            assert_eq!(caps["execute"], "qmp_capabilities");
            assert!(caps.get("arguments").is_none());
            writeln!(w, r#"{{"return":{{}},"id":{}}}"#, caps["id"]).unwrap();
            let c = read_cmd(&mut r);
            assert_eq!(c["arguments"]["path"], "/machine");
            write!(w, "{{\"event\":\"FROM_THE_FUTURE\",\"data\":{{\"x\":[1]}}}}\r\n{{\"return\":[1],\"id\":{}}}\r\n", c["id"]).unwrap();
            let c = read_cmd(&mut r);
            writeln!(
                w,
                r#"{{"error":{{"class":"DeviceNotFound","desc":"Device 'x' not found"}},"id":{}}}"#,
                c["id"]
            )
            .unwrap();
        });
        let mut q = Qmp::from_stream(a, &Options::with_timeout(Duration::from_secs(5))).unwrap();
        assert_eq!(
            q.version(),
            Version {
                major: 7,
                minor: 2,
                micro: 22
            }
        );
        assert_eq!(
            q.execute("qom-list", json!({"path": "/machine"})).unwrap(),
            json!([1])
        );
        assert_eq!(q.events().len(), 1);
        assert_eq!(q.events()[0].name, "FROM_THE_FUTURE");
        let err = q.execute("device_del", json!({"id": "x"})).unwrap_err();
        assert_eq!(err.class(), Some("DeviceNotFound"));
        assert_eq!(err.desc(), Some("Device 'x' not found"));
        let ev = q
            .wait_event(Duration::from_secs(1), |e| e.name == "FROM_THE_FUTURE")
            .unwrap();
        assert_eq!(ev.data, json!({"x":[1]}));
        peer.join().unwrap();
    }

    #[test]
    fn silence_is_a_timeout_and_a_late_reply_is_discarded() {
        let (a, peer) = pair(|s| {
            let mut w = s.try_clone().unwrap();
            let mut r = std::io::BufReader::new(s);
            writeln!(w, "{GREETING}").unwrap();
            let c = read_cmd(&mut r);
            let c2 = read_cmd(&mut r);
            // the late reply to the first command, then the reply to the second
            writeln!(w, r#"{{"return":{{}},"id":{}}}"#, c["id"]).unwrap();
            writeln!(w, r#"{{"return":7,"id":{}}}"#, c2["id"]).unwrap();
        });
        let mut opts = Options::with_timeout(Duration::from_millis(200));
        opts.negotiate = false;
        let mut q = Qmp::from_stream(a, &opts).unwrap();
        let err = q.execute("qmp_capabilities", Value::Null).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err}");
        q.set_timeout(Duration::from_secs(5));
        assert_eq!(q.execute("query-status", Value::Null).unwrap(), json!(7));
        peer.join().unwrap();
    }

    #[test]
    fn hostile_peers_give_typed_errors() {
        type Case = (&'static str, fn(&Error) -> bool);
        let cases: Vec<Case> = vec![
            ("", |e| matches!(e, Error::NoGreeting { .. })),
            ("garbage\n", |e| matches!(e, Error::BadGreeting { .. })),
            ("{\"return\":{}}\n", |e| matches!(e, Error::BadGreeting { .. })),
            ("{\"QMP\":{\"version\":{\"qemu\":{\"micro\":0,\"minor\":0,\"major\":9}}}}\n{\"return\":{},\"id\":\"zzz\"}\n", |e| matches!(e, Error::UnknownReplyId { .. })),
            ("{\"QMP\":{\"version\":{\"qemu\":{\"micro\":0,\"minor\":0,\"major\":9}}}}\n{\"ret", |e| matches!(e, Error::Disconnected { partial: true, .. })),
            ("{\"QMP\":{\"version\":{\"qemu\":{\"micro\":0,\"minor\":0,\"major\":9}}}}\n{nope}\n", |e| matches!(e, Error::Garbage { .. })),
        ];
        for (script, ok) in cases {
            let script = script.to_string();
            let hang = script.is_empty();
            let (a, peer) = pair(move |mut s| {
                s.write_all(script.as_bytes()).unwrap();
                if hang {
                    // Silent until the client gives up and closes (bounded).
                    let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                    let _ = s.read(&mut [0u8; 64]);
                }
            });
            let err = Qmp::from_stream(a, &Options::with_timeout(Duration::from_millis(300)))
                .unwrap_err();
            assert!(ok(&err), "unexpected {err:?}");
            peer.join().unwrap();
        }
    }

    #[test]
    fn oversize_line_and_event_flood_are_bounded() {
        let (a, peer) = pair(|mut s| {
            writeln!(s, "{GREETING}").unwrap();
            let _ = s.write_all(&vec![b'x'; 5000]);
        });
        let mut opts = Options::with_timeout(Duration::from_secs(5));
        opts.max_line = 1000;
        opts.negotiate = false;
        let mut q = Qmp::from_stream(a, &opts).unwrap();
        let err = q.wait_event(Duration::from_secs(5), |_| false).unwrap_err();
        assert!(matches!(err, Error::LineTooLong { limit: 1000 }), "{err:?}");
        assert!(matches!(q.execute("x", Value::Null), Err(Error::Broken(_))));
        peer.join().unwrap();

        let (a, peer) = pair(|mut s| {
            writeln!(s, "{GREETING}").unwrap();
            for i in 0..100 {
                writeln!(s, r#"{{"event":"E{i}"}}"#).unwrap();
            }
            writeln!(s, r#"{{"event":"LAST"}}"#).unwrap();
        });
        opts.max_events = 10;
        let mut q = Qmp::from_stream(a, &opts).unwrap();
        q.wait_event(Duration::from_secs(5), |e| e.name == "LAST")
            .unwrap();
        assert_eq!(q.events().len(), 10);
        assert_eq!(q.dropped_events(), 90);
        assert_eq!(q.events()[9].name, "E99");
        peer.join().unwrap();
    }

    /// A 1 MB event (the size of the issue's report): its data is a long array.
    fn big_event(name: &str, n: usize) -> String {
        let blob = "0,".repeat(499_999);
        format!("{{\"event\":\"{name}\",\"data\":{{\"n\":{n},\"blob\":[{blob}0]}}}}\n")
    }

    #[test]
    fn events_nobody_waits_for_cost_no_memory() {
        // 40 events of 1 MB each (gigabytes of parsed data): with a filter the client
        // keeps none of them
        let (a, peer) = pair(|mut s| {
            writeln!(s, "{GREETING}").unwrap();
            for i in 0..40 {
                if s.write_all(big_event("FLOOD", i).as_bytes()).is_err() {
                    return;
                }
            }
            let _ = writeln!(s, r#"{{"event":"DEVICE_DELETED","data":{{"device":"x"}}}}"#);
        });
        let mut opts = Options::with_timeout(Duration::from_secs(20));
        opts.negotiate = false;
        opts.keep_events = Some(vec!["DEVICE_DELETED".into()]);
        let mut q = Qmp::from_stream(a, &opts).unwrap();
        let ev = q
            .wait_event(Duration::from_secs(60), |e| e.name == "DEVICE_DELETED")
            .unwrap();
        assert_eq!(ev.data_str("device"), Some("x"));
        assert_eq!(q.dropped_events(), 40);
        assert_eq!(q.queued_bytes(), 0);
        peer.join().unwrap();
    }

    #[test]
    fn a_flood_of_kept_events_is_reported_within_the_memory_bound() {
        let (a, peer) = pair(|mut s| {
            writeln!(s, "{GREETING}").unwrap();
            for i in 0..40 {
                if s.write_all(big_event("DEVICE_DELETED", i).as_bytes())
                    .is_err()
                {
                    return;
                }
            }
        });
        let mut opts = Options::with_timeout(Duration::from_secs(20));
        opts.negotiate = false;
        opts.max_memory = 4 << 20;
        let mut q = Qmp::from_stream(a, &opts).unwrap();
        let err = q
            .wait_event(Duration::from_secs(60), |e| e.name == "never")
            .unwrap_err();
        assert!(
            matches!(err, Error::Flood { limit, .. } if limit == 4 << 20),
            "{err:?}"
        );
        assert_eq!(err.kind(), host::ErrorKind::QmpFlood);
        // the queue is freed and the connection is not used again
        assert!(q.events().is_empty());
        assert!(matches!(q.execute("x", Value::Null), Err(Error::Broken(_))));
        drop(q);
        peer.join().unwrap();
    }

    #[test]
    fn the_measured_size_grows_with_the_parsed_data() {
        let small = parse_message(br#"{"event":"E","data":{"a":1}}"#).unwrap();
        let big = parse_message(big_event("E", 0).trim_end().as_bytes()).unwrap();
        let (Some(Message::Event(small)), Some(Message::Event(big))) = (small, big) else {
            panic!("not events");
        };
        // 500000 numbers of 32 or more bytes each: far more than the line's 1 MB
        assert!(reader::event_size(&big) >= 500_000 * std::mem::size_of::<Value>());
        assert!(reader::event_size(&small) < 1024);
    }

    #[test]
    fn a_slow_loris_peer_times_out() {
        // one byte of the greeting every 50 ms, never finishing within the timeout
        let (a, peer) = pair(|mut s| {
            for b in GREETING.bytes() {
                if s.write_all(&[b]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let err =
            Qmp::from_stream(a, &Options::with_timeout(Duration::from_millis(500))).unwrap_err();
        assert!(matches!(err, Error::NoGreeting { .. }), "{err:?}");
        peer.join().unwrap();
        // a reply trickling in without end: the command's deadline holds
        let (a, peer) = pair(|mut s| {
            writeln!(s, "{GREETING}").unwrap();
            for _ in 0..40 {
                if s.write_all(b" ").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let mut opts = Options::with_timeout(Duration::from_millis(500));
        opts.negotiate = false;
        let mut q = Qmp::from_stream(a, &opts).unwrap();
        let err = q.execute("query-status", Value::Null).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
        drop(q);
        peer.join().unwrap();
    }

    #[test]
    fn connect_waits_for_a_socket_that_appears_or_listens_late() {
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().unwrap();
        // ENOENT first: the socket file appears after a while
        let path = dir.path().join("late.sock");
        let p = path.clone();
        let peer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            let l = UnixListener::bind(&p).unwrap();
            let (mut s, _) = l.accept().unwrap();
            writeln!(s, "{GREETING}").unwrap();
        });
        let mut opts = Options::with_timeout(Duration::from_secs(10));
        opts.negotiate = false;
        Qmp::connect_with(&path, &opts).unwrap();
        peer.join().unwrap();
        // ECONNREFUSED first: bound but not listening (QEMU binds before it listens)
        use nix::sys::socket::{
            bind, listen, socket, AddressFamily, Backlog, SockFlag, SockType, UnixAddr,
        };
        let path = dir.path().join("bound.sock");
        let fd = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &UnixAddr::new(&path).unwrap(),
        )
        .unwrap();
        let refused = UnixStream::connect(&path).unwrap_err();
        assert_eq!(refused.raw_os_error(), Some(libc::ECONNREFUSED));
        let peer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            listen(&fd, Backlog::new(1).unwrap()).unwrap();
            let l = UnixListener::from(fd);
            let (mut s, _) = l.accept().unwrap();
            writeln!(s, "{GREETING}").unwrap();
        });
        Qmp::connect_with(&path, &opts).unwrap();
        peer.join().unwrap();
    }

    #[test]
    fn connect_errors_name_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.sock");
        let err = Qmp::connect(&path, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, Error::Connect { .. }));
        assert!(err.to_string().contains("none.sock"), "{err}");
    }
}
