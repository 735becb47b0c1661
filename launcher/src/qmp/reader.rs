//! The QMP wire format: newline-delimited JSON objects, split and classified without
//! ever panicking, whatever bytes arrive. The fuzz target `qmp_reader` drives this module.

use super::error::{excerpt, Error, Result};
use serde_json::Value;

/// Default bound on one QMP message (1 MiB; QEMU 7.2's largest, `query-qmp-schema`, is ~200 KiB).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// Splits a byte stream into lines, bounding the length of each.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte.
    start: usize,
    /// Bytes from `start` already known to hold no newline.
    scanned: usize,
    max_line: usize,
}

impl LineReader {
    /// A reader whose lines may hold at most `max_line` bytes (terminator excluded).
    pub fn new(max_line: usize) -> Self {
        LineReader {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max_line,
        }
    }

    /// The line-length bound.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// Lets `fill` write received bytes straight into the buffer (at most `chunk` of them);
    /// returns what `fill` returned.
    pub fn fill_from<E>(
        &mut self,
        chunk: usize,
        fill: impl FnOnce(&mut [u8]) -> std::result::Result<usize, E>,
    ) -> std::result::Result<usize, E> {
        self.compact();
        let old = self.buf.len();
        self.buf.resize(old + chunk, 0);
        let result = fill(&mut self.buf[old..]);
        let n = match &result {
            Ok(n) => (*n).min(chunk),
            Err(_) => 0,
        };
        self.buf.truncate(old + n);
        result
    }

    fn compact(&mut self) {
        if self.start > 0 && (self.start == self.buf.len() || self.start >= 64 * 1024) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Bytes held: the unconsumed input and the buffer's spare room.
    pub fn buffered(&self) -> usize {
        self.buf.capacity() - self.start
    }

    /// True when bytes of an incomplete line are buffered.
    pub fn has_partial(&self) -> bool {
        self.buf[self.start..]
            .iter()
            .any(|b| !b.is_ascii_whitespace())
    }

    /// The next complete line without its terminator (`\n` or `\r\n`); `Ok(None)` when no
    /// complete line is buffered; [`Error::LineTooLong`] when the pending line is over the bound.
    pub fn next_line(&mut self) -> Result<Option<&[u8]>> {
        let pending = &self.buf[self.start..];
        match pending[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let end = self.scanned + pos;
                let mut line_end = end;
                if line_end > 0 && pending[line_end - 1] == b'\r' {
                    line_end -= 1;
                }
                if line_end > self.max_line {
                    return Err(Error::LineTooLong {
                        limit: self.max_line,
                    });
                }
                let begin = self.start;
                self.start += end + 1;
                self.scanned = 0;
                Ok(Some(&self.buf[begin..begin + line_end]))
            }
            None => {
                self.scanned = pending.len();
                // A trailing '\r' may still belong to the terminator.
                let len = pending.len() - usize::from(pending.last() == Some(&b'\r'));
                if len > self.max_line {
                    Err(Error::LineTooLong {
                        limit: self.max_line,
                    })
                } else {
                    Ok(None)
                }
            }
        }
    }
}

/// QEMU's version from the greeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Version {
    /// Major version.
    pub major: u64,
    /// Minor version.
    pub minor: u64,
    /// Micro version.
    pub micro: u64,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.micro)
    }
}

/// The greeting QEMU sends when a client connects.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Greeting {
    /// QEMU's version.
    pub version: Version,
    /// The distribution's package string (`Debian 1:7.2+dfsg-7`), possibly empty.
    pub package: String,
    /// Capabilities offered (`oob`, ...).
    pub capabilities: Vec<String>,
}

/// The time stamp of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Timestamp {
    /// Seconds since the epoch.
    pub seconds: i64,
    /// Microseconds.
    pub microseconds: i64,
}

/// An asynchronous event, whatever its name or fields.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Event {
    /// The event name (`DEVICE_DELETED`, `STOP`, or any name newer than this code).
    pub name: String,
    /// Its `data` member (`null` when absent).
    pub data: Value,
    /// Its time stamp, when present and well formed.
    pub timestamp: Option<Timestamp>,
}

impl Event {
    /// A string member of `data` (`event.data_str("device")`).
    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// A reply to a command.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The echoed id (absent when QEMU could not read the command).
    pub id: Option<Value>,
    /// `return` on success, QEMU's `(class, desc)` on error.
    pub result: std::result::Result<Value, (String, String)>,
}

/// One classified QMP message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// `{"QMP": ...}`.
    Greeting(Greeting),
    /// `{"return": ...}` or `{"error": ...}`.
    Reply(Reply),
    /// `{"event": ...}`.
    Event(Event),
}

/// The name of the event on this line, read without building its `data`; `None` when the
/// line is not an event (or not JSON: [`parse_message`] reports that).
pub fn event_name(line: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Peek {
        event: Option<String>,
    }
    serde_json::from_slice::<Peek>(line).ok()?.event
}

/// The memory an event takes, measured over its parsed data: what the client's memory
/// bound counts.
pub fn event_size(ev: &Event) -> usize {
    fn value_size(v: &Value) -> usize {
        let node = std::mem::size_of::<Value>();
        match v {
            Value::String(s) => node + s.capacity(),
            Value::Array(a) => node + a.iter().map(value_size).sum::<usize>(),
            // a map entry: key, value and the index's slot
            Value::Object(m) => {
                node + m
                    .iter()
                    .map(|(k, v)| {
                        std::mem::size_of::<String>()
                            + 2 * std::mem::size_of::<usize>()
                            + k.capacity()
                            + value_size(v)
                    })
                    .sum::<usize>()
            }
            _ => node,
        }
    }
    std::mem::size_of::<Event>() + ev.name.capacity() + value_size(&ev.data)
}

/// Parses one line. `Ok(None)` for a blank line; [`Error::Garbage`] for anything that is
/// not a QMP message.
pub fn parse_message(line: &[u8]) -> Result<Option<Message>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let garbage = |reason: &str| Error::Garbage {
        line: excerpt(line),
        reason: reason.to_string(),
    };
    let value: Value =
        serde_json::from_slice(line).map_err(|e| garbage(&format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(garbage("not a JSON object"));
    };
    if let Some(qmp) = obj.get("QMP") {
        return parse_greeting(qmp)
            .map(|g| Some(Message::Greeting(g)))
            .ok_or_else(|| garbage("a greeting without a QEMU version"));
    }
    if let Some(ret) = obj.remove("return") {
        return Ok(Some(Message::Reply(Reply {
            id: obj.remove("id"),
            result: Ok(ret),
        })));
    }
    if let Some(err) = obj.remove("error") {
        let class = err.get("class").and_then(Value::as_str);
        let desc = err.get("desc").and_then(Value::as_str);
        let (Some(class), Some(desc)) = (class, desc) else {
            return Err(garbage("an error reply without class and desc"));
        };
        return Ok(Some(Message::Reply(Reply {
            id: obj.remove("id"),
            result: Err((class.to_string(), desc.to_string())),
        })));
    }
    if let Some(Value::String(name)) = obj.remove("event") {
        let timestamp = obj.get("timestamp").and_then(|t| {
            Some(Timestamp {
                seconds: t.get("seconds")?.as_i64()?,
                microseconds: t.get("microseconds")?.as_i64()?,
            })
        });
        return Ok(Some(Message::Event(Event {
            name,
            data: obj.remove("data").unwrap_or(Value::Null),
            timestamp,
        })));
    }
    Err(garbage(
        "a JSON object that is neither a greeting, a reply nor an event",
    ))
}

fn parse_greeting(qmp: &Value) -> Option<Greeting> {
    let version = qmp.get("version")?;
    let qemu = version.get("qemu")?;
    let num = |k: &str| qemu.get(k).and_then(Value::as_u64);
    Some(Greeting {
        version: Version {
            major: num("major")?,
            minor: num("minor")?,
            micro: num("micro")?,
        },
        package: version
            .get("package")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .trim()
            .to_string(),
        capabilities: qmp
            .get("capabilities")
            .and_then(Value::as_array)
            .map(|caps| {
                caps.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Feeds arbitrary bytes through the reader and parser, as the client does; used by the
/// fuzz target. Returns how many messages were classified. Never panics.
pub fn fuzz_stream(data: &[u8], max_line: usize) -> usize {
    let mut reader = LineReader::new(max_line);
    let mut count = 0;
    for chunk in data.chunks(37) {
        reader.feed(chunk);
        loop {
            match reader.next_line() {
                Ok(Some(line)) => {
                    if let Ok(Some(_)) = parse_message(line) {
                        count += 1;
                    }
                }
                Ok(None) => break,
                Err(_) => return count,
            }
        }
    }
    let _ = reader.has_partial();
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_feeds_and_strips_crlf() {
        let mut r = LineReader::new(100);
        r.feed(b"{\"a\":1}\r\n{\"b\"");
        assert_eq!(r.next_line().unwrap(), Some(&b"{\"a\":1}"[..]));
        assert_eq!(r.next_line().unwrap(), None);
        assert!(r.has_partial());
        r.feed(b":2}\n\r\n");
        assert_eq!(r.next_line().unwrap(), Some(&b"{\"b\":2}"[..]));
        assert_eq!(r.next_line().unwrap(), Some(&b""[..]));
        assert_eq!(r.next_line().unwrap(), None);
        assert!(!r.has_partial());
    }

    #[test]
    fn bounds_line_length_with_and_without_terminator() {
        let mut r = LineReader::new(4);
        r.feed(b"12345");
        assert!(matches!(
            r.next_line(),
            Err(Error::LineTooLong { limit: 4 })
        ));
        let mut r = LineReader::new(4);
        r.feed(b"1234\r\n123456\n");
        assert_eq!(r.next_line().unwrap(), Some(&b"1234"[..]));
        assert!(matches!(r.next_line(), Err(Error::LineTooLong { .. })));
        let mut r = LineReader::new(4);
        r.feed(b"1234\r");
        assert_eq!(r.next_line().unwrap(), None);
    }

    #[test]
    fn classifies_every_message_kind() {
        let g = parse_message(br#"{"QMP":{"version":{"qemu":{"micro":22,"minor":2,"major":7},"package":"Debian 1:7.2 "},"capabilities":["oob"]}}"#).unwrap().unwrap();
        assert_eq!(
            g,
            Message::Greeting(Greeting {
                version: Version {
                    major: 7,
                    minor: 2,
                    micro: 22
                },
                package: "Debian 1:7.2".into(),
                capabilities: vec!["oob".into()],
            })
        );
        let r = parse_message(br#"{"return":{},"id":"x1"}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            r,
            Message::Reply(Reply {
                id: Some("x1".into()),
                result: Ok(serde_json::json!({}))
            })
        );
        let e =
            parse_message(br#"{"error":{"class":"DeviceNotFound","desc":"Device 'x' not found"}}"#)
                .unwrap()
                .unwrap();
        assert_eq!(
            e,
            Message::Reply(Reply {
                id: None,
                result: Err(("DeviceNotFound".into(), "Device 'x' not found".into()))
            })
        );
        let ev = parse_message(br#"{"event":"BRAND_NEW","data":{"device":"d"},"timestamp":{"seconds":1,"microseconds":2},"extra":1}"#).unwrap().unwrap();
        let Message::Event(ev) = ev else { panic!() };
        assert_eq!(ev.name, "BRAND_NEW");
        assert_eq!(ev.data_str("device"), Some("d"));
        assert_eq!(
            ev.timestamp,
            Some(Timestamp {
                seconds: 1,
                microseconds: 2
            })
        );
        assert_eq!(parse_message(b"  ").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for line in [
            &b"hello"[..],
            b"[1,2]",
            b"{\"foo\":1}",
            b"{\"QMP\":{}}",
            b"{\"error\":{}}",
            b"\xff\xfe",
            b"{\"event\":3}",
        ] {
            assert!(
                matches!(parse_message(line), Err(Error::Garbage { .. })),
                "{line:?}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_any_bytes(data in proptest::collection::vec(proptest::num::u8::ANY, 0..512), max in 0usize..64) {
            fuzz_stream(&data, max);
        }

        #[test]
        fn lines_round_trip(lines in proptest::collection::vec("[a-z{}\":,0-9 ]{0,30}", 0..10)) {
            let mut r = LineReader::new(64);
            let joined: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
            r.feed(joined.as_bytes());
            for l in &lines {
                let got = r.next_line().unwrap().unwrap().to_vec();
                proptest::prop_assert_eq!(got, l.as_bytes().to_vec());
            }
            proptest::prop_assert_eq!(r.next_line().unwrap(), None);
        }
    }
}
