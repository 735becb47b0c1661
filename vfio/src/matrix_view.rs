//! The AP matrix picture: adapters x domains, each cell saying who may use the queue.

use crate::ap::{Apid, Apqi, Apqn};
use crate::scan::ApScan;
use serde::Serialize;
use std::fmt::Write as _;

/// Domains per block of columns before the grid wraps.
pub const COLUMNS: usize = 16;

/// What one APQN is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellState {
    /// No queue and no assignment: nothing to show.
    None,
    /// apmask and aqmask reserve it for the host's crypto drivers.
    Host,
    /// Left to vfio_ap and not assigned to any mdev.
    Free,
    /// Assigned to one mdev (or definition).
    Assigned,
    /// In more than one mdev or definition.
    Conflict,
}

/// One cell of the grid.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The queue.
    pub apqn: Apqn,
    /// What it is.
    pub state: CellState,
    /// Whether the queue device exists on this host.
    pub queue: bool,
    /// Whether apmask/aqmask reserve it for the host drivers.
    pub host_reserved: bool,
    /// The mdevs/definitions holding it (UUIDs).
    pub owners: Vec<String>,
    /// The symbol drawn.
    pub symbol: String,
}

/// One mdev or definition of the legend.
#[derive(Debug, Clone, Serialize)]
pub struct LegendEntry {
    /// The label drawn for it (`A`; two characters after the first 60).
    pub letter: String,
    /// Its UUID.
    pub uuid: String,
    /// Active (else only defined).
    pub active: bool,
    /// Started at boot by mdevctl.
    pub autostart: bool,
    /// A guest uses it.
    pub in_use: bool,
    /// Its control domains.
    pub control_domains: Vec<Apqi>,
}

/// The whole picture.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixView {
    /// Rows.
    pub adapters: Vec<Apid>,
    /// Card types by row (`CEX8C`), where known.
    pub card_types: Vec<Option<String>>,
    /// Columns.
    pub domains: Vec<Apqi>,
    /// Row-major cells (adapters x domains).
    pub cells: Vec<Cell>,
    /// The mdevs and definitions shown.
    pub legend: Vec<LegendEntry>,
}

/// Labels: one character for the first 60 mdevs (no `h`, `x`, which could be misread),
/// then two.
fn label(i: usize) -> String {
    const L: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgijklmnopqrstuvwyz0123456789";
    if i < L.len() {
        (L[i] as char).to_string()
    } else {
        let j = i - L.len();
        let first = L[(j / L.len()) % L.len()] as char;
        format!("{first}{}", L[j % L.len()] as char)
    }
}

impl MatrixView {
    /// Builds the picture from a scan.
    pub fn build(scan: &ApScan) -> MatrixView {
        let owners = scan.owners();
        let mut legend: Vec<LegendEntry> = Vec::new();
        for m in &scan.mdevs {
            legend.push(LegendEntry {
                letter: label(legend.len()),
                uuid: m.uuid.clone(),
                active: true,
                autostart: scan
                    .definition(&m.uuid)
                    .is_some_and(|d| d.start == crate::mdevctl::Start::Auto),
                in_use: scan.in_use(m),
                control_domains: m.control_domains.clone(),
            });
        }
        for d in &scan.definitions {
            if scan.mdev(&d.uuid).is_none() {
                legend.push(LegendEntry {
                    letter: label(legend.len()),
                    uuid: d.uuid.clone(),
                    active: false,
                    autostart: d.start == crate::mdevctl::Start::Auto,
                    in_use: false,
                    control_domains: d.control_domains.clone(),
                });
            }
        }
        let adapters = scan.all_adapters();
        let domains = scan.all_domains();
        let mut cells = Vec::with_capacity(adapters.len() * domains.len());
        for a in &adapters {
            for d in &domains {
                let apqn = Apqn::new(a.0, d.0);
                let queue = scan.queue(apqn).is_some();
                let reserved = scan.host_reserved(apqn) == Some(true);
                let who: Vec<String> = owners
                    .get(&apqn)
                    .map(|o| o.iter().map(|o| o.uuid.clone()).collect())
                    .unwrap_or_default();
                let (state, mut symbol) = match who.len() {
                    0 if !queue => (CellState::None, "-".to_string()),
                    0 if reserved => (CellState::Host, "h".to_string()),
                    0 => (CellState::Free, ".".to_string()),
                    1 => {
                        let l = legend
                            .iter()
                            .find(|e| e.uuid == who[0])
                            .map(|e| e.letter.clone())
                            .unwrap_or_else(|| "?".into());
                        (CellState::Assigned, l)
                    }
                    _ => (CellState::Conflict, "!".to_string()),
                };
                if !who.is_empty() && (!queue || reserved) {
                    // assigned, but the guest cannot have it
                    symbol.push('?');
                }
                cells.push(Cell {
                    apqn,
                    state,
                    queue,
                    host_reserved: reserved,
                    owners: who,
                    symbol,
                });
            }
        }
        MatrixView {
            card_types: adapters
                .iter()
                .map(|a| scan.card(*a).and_then(|c| c.card_type.clone()))
                .collect(),
            adapters,
            domains,
            cells,
            legend,
        }
    }

    /// The text picture; `colour` adds ANSI colours (the picture reads the same without).
    pub fn render(&self, colour: bool) -> String {
        let mut out = String::new();
        if self.adapters.is_empty() || self.domains.is_empty() {
            out.push_str("no AP queues on this host (no adapters or domains to show)\n");
            return out;
        }
        let paint = |s: &str, state: &CellState, flagged: bool| -> String {
            if !colour {
                return s.to_string();
            }
            let code = match (state, flagged) {
                (CellState::Conflict, _) | (_, true) => "\x1b[1;31m",
                (CellState::Host, _) => "\x1b[2m",
                (CellState::Free, _) => "\x1b[32m",
                (CellState::Assigned, _) => "\x1b[1;36m",
                (CellState::None, _) => "\x1b[2m",
            };
            format!("{code}{s}\x1b[0m")
        };
        let type_w = self
            .card_types
            .iter()
            .map(|t| t.as_ref().map(|t| t.len()).unwrap_or(1))
            .max()
            .unwrap_or(1);
        let label_w = 8 + type_w; // "card 05 " + type
        out.push_str("AP queues: adapters (rows) x usage domains (columns), ids in hex\n\n");
        for (block, cols) in self.domains.chunks(COLUMNS).enumerate() {
            if block > 0 {
                out.push('\n');
            }
            let _ = write!(out, "{:>label_w$}", "domain");
            for d in cols {
                let _ = write!(out, " {:>3}", format!("{:02x}", d.0));
            }
            out.push('\n');
            let start = block * COLUMNS;
            for (row, a) in self.adapters.iter().enumerate() {
                let t = self.card_types[row].as_deref().unwrap_or("-");
                let _ = write!(out, "card {a} {t:<type_w$}");
                for i in 0..cols.len() {
                    let cell = &self.cells[row * self.domains.len() + start + i];
                    let flagged = cell.symbol.ends_with('?');
                    let _ = write!(
                        out,
                        " {}{}",
                        " ".repeat(3usize.saturating_sub(cell.symbol.len())),
                        paint(&cell.symbol, &cell.state, flagged)
                    );
                }
                out.push('\n');
            }
        }
        out.push('\n');
        out.push_str("  h   reserved for the host's crypto drivers (apmask and aqmask bits set)\n");
        out.push_str("  .   free for vfio_ap (not in any mdev)\n");
        out.push_str("  -   no such queue on this host\n");
        out.push_str("  !   conflict: in more than one mdev or definition\n");
        out.push_str("  X?  assigned, but the guest cannot get it (queue missing or reserved for the host)\n");
        for e in &self.legend {
            let mut what = vec![if e.active {
                "active"
            } else {
                "defined, not active"
            }];
            if e.autostart {
                what.push("autostart");
            }
            if e.in_use {
                what.push("in use");
            }
            let controls = if e.control_domains.is_empty() {
                String::new()
            } else {
                format!(
                    ", control domains {}",
                    e.control_domains
                        .iter()
                        .map(|d| format!("{:02x}", d.0))
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            };
            let _ = writeln!(
                out,
                "  {}   mdev {} ({}{controls})",
                e.letter,
                e.uuid,
                what.join(", ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use host::HostRoot;
    use testkit::hosttree::HostTree;

    #[test]
    fn example_picture() {
        let tree = HostTree::from_example("z16-se");
        let scan = ApScan::read(&HostRoot::open(tree.path()).unwrap());
        let v = MatrixView::build(&scan);
        let text = v.render(false);
        let want = concat!(
            "AP queues: adapters (rows) x usage domains (columns), ids in hex\n\n",
            "       domain  04  ab\n",
            "card 03 CEX8C   h   .\n",
            "card 05 CEX8C   A   A\n",
        );
        assert!(text.starts_with(want), "{text}");
        assert!(text.contains("  A   mdev 62177883-f1bb-47f0-914d-32a22e3a8804 (active, autostart, control domains ab)"), "{text}");
        assert!(v.render(true).contains("\x1b[1;36mA\x1b[0m"));
    }

    #[test]
    fn labels_stay_unique_past_sixty() {
        let labels: std::collections::BTreeSet<String> = (0..200).map(label).collect();
        assert_eq!(labels.len(), 200);
        assert_eq!(label(0), "A");
        assert_eq!(label(60), "AA");
        assert!(labels.iter().all(|l| l.len() <= 2 && l != "h" && l != "x"));
    }

    #[test]
    fn wraps_and_marks_conflicts() {
        let tree = HostTree::from_example("z16-se");
        tree.write(
            "etc/mdevctl.d/matrix/11111111-2222-4333-8444-555555555555",
            r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"5"},{"assign_domain":"4"},{"assign_domain":"0x30"}]}"#,
        );
        tree.write(
            "sys/bus/ap/ap_usage_domain_mask",
            format!("0x{}\n", "f".repeat(64)),
        );
        let scan = ApScan::read(&HostRoot::open(tree.path()).unwrap());
        let v = MatrixView::build(&scan);
        assert_eq!(v.domains.len(), 256);
        let text = v.render(false);
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_start().starts_with("domain"))
                .count(),
            16
        );
        let c = v.cells.iter().find(|c| c.apqn == Apqn::new(5, 4)).unwrap();
        assert_eq!(c.state, CellState::Conflict);
        assert_eq!(c.symbol, "!");
        let c = v
            .cells
            .iter()
            .find(|c| c.apqn == Apqn::new(5, 0x30))
            .unwrap();
        assert_eq!(c.symbol, "B?");
        assert!(
            text.contains(
                "  B   mdev 11111111-2222-4333-8444-555555555555 (defined, not active, autostart)"
            ),
            "{text}"
        );
    }
}
