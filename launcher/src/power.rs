//! Asking a running guest to shut down cleanly through QMP (`aplaunch qmp powerdown`), as
//! a service manager's stop command does.

use crate::qmp::{self, Event, Qmp};
use serde_json::Value;
use std::time::{Duration, Instant};

/// How long to wait for QEMU to exit once the guest has shut down (QEMU started with
/// `-no-shutdown` stays up; then the caller's own stop handling ends it).
pub const EXIT_GRACE: Duration = Duration::from_secs(5);

/// The outcome of a clean shutdown.
#[derive(Debug, Clone)]
pub struct PoweredDown {
    /// QEMU's `SHUTDOWN` event, when it arrived before QEMU closed the monitor.
    pub shutdown: Option<Event>,
    /// Whether QEMU closed the monitor (it exited).
    pub qemu_exited: bool,
}

/// Sends `system_powerdown` (the guest sees the power button / SCLP quiesce signal) and
/// waits up to `timeout` for the guest to shut down: QEMU's `SHUTDOWN` event, then QEMU
/// closing the monitor as it exits.
pub fn powerdown(qmp: &mut Qmp, timeout: Duration) -> qmp::Result<PoweredDown> {
    let deadline = Instant::now() + timeout;
    qmp.execute_within("system_powerdown", Value::Null, timeout)?;
    let mut shutdown = None;
    let mut until = deadline;
    loop {
        match qmp.wait_event_until(until, |e| e.name == "SHUTDOWN") {
            Ok(event) => {
                shutdown = Some(event);
                until = deadline.min(Instant::now() + EXIT_GRACE);
            }
            Err(qmp::Error::Disconnected { .. }) => {
                return Ok(PoweredDown {
                    shutdown,
                    qemu_exited: true,
                })
            }
            Err(e) if e.is_timeout() && shutdown.is_some() => {
                return Ok(PoweredDown {
                    shutdown,
                    qemu_exited: false,
                })
            }
            Err(e) => return Err(e),
        }
    }
}
