//! mdevctl's persistent mdev definitions: `/etc/mdevctl.d/matrix/<uuid>`.
//!
//! The file is the JSON mdevctl itself writes (pretty-printed with two-space indentation,
//! no trailing newline): `mdev_type`, `start` (`auto` or `manual`) and `attrs`, an ordered
//! list of one-key objects with string values that are written to the mdev's attributes
//! in order when it is started.
//!
//! What is read is what mdevctl 1.2.0 reads (src/mdev.rs `load_from_json`,
//! `add_attributes`; src/main.rs `defined_devices`): any file whose name the uuid crate
//! parses (any case, plain 32 hex digits, `{...}`, `urn:uuid:...`), `start` is auto only
//! when it is exactly `"auto"` (anything else, `"AUTO"` too, is manual), `attrs` may be
//! missing or `null`, other keys are ignored. The matrix is what the kernel builds when
//! mdevctl writes the attributes in order: `assign_*`/`unassign_*` read with kstrtoul
//! base 0, `ap_config` (Linux 6.x, vfio_ap_ops.c `ap_config_store`) replacing all three
//! masks; s390-tools' libap (libap/ap.c `load_attr_to_device`) reads `ap_config` too.

use crate::ap::{Apid, Apqi};
use crate::error::{Error, Result};
use crate::mask::Mask;
use crate::mdev::MDEV_TYPE;
use crate::mdev_uuid;
use crate::number::{kstrtoul, strtol_u8_prefix};
use host::{ErrorKind, HostRoot};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Where vfio_ap definitions live (host path; the parent device is `matrix`).
pub const DEFINITIONS_DIR: &str = "etc/mdevctl.d/matrix";

/// The keys mdevctl reads from a definition; it ignores every other one.
const KNOWN_KEYS: [&str; 3] = ["mdev_type", "start", "attrs"];

/// When mdevctl starts a defined mdev.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// At boot (`"auto"`).
    Auto,
    /// Only on `mdevctl start` (`"manual"`).
    Manual,
}

impl Start {
    /// `auto` or `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Start::Auto => "auto",
            Start::Manual => "manual",
        }
    }
}

/// Which of an mdev's three id lists an attribute changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// Adapters (`assign_adapter`).
    Adapter,
    /// Usage domains (`assign_domain`).
    Domain,
    /// Control domains (`assign_control_domain`).
    Control,
}

impl IdKind {
    /// The attribute name after `assign_` / `unassign_`.
    pub fn attribute(self) -> &'static str {
        match self {
            IdKind::Adapter => "adapter",
            IdKind::Domain => "domain",
            IdKind::Control => "control_domain",
        }
    }
}

/// A definition of a vfio_ap mdev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Definition {
    /// The UUID, lower case with hyphens.
    pub uuid: String,
    /// The file's name in `/etc/mdevctl.d/matrix` (the UUID in any form mdevctl reads).
    pub file_name: String,
    /// `mdev_type` (should be `vfio_ap-passthrough`).
    pub mdev_type: String,
    /// `start`, as mdevctl reads it.
    pub start: Start,
    /// The attributes in order: (attribute, value as written to the kernel).
    pub attrs: Vec<(String, String)>,
    /// Adapters after applying the attributes in order.
    pub adapters: Vec<Apid>,
    /// Usage domains after applying the attributes in order.
    pub domains: Vec<Apqi>,
    /// Control domains after applying the attributes in order.
    pub control_domains: Vec<Apqi>,
    /// Top-level keys mdevctl ignores (a typo such as `atrs` silently empties the matrix).
    pub unknown_keys: Vec<String>,
    /// What mdevctl accepts but reads differently than it looks (`"start": "AUTO"`), or
    /// what s390-tools' ap-check reads differently.
    pub warnings: Vec<String>,
    /// `start` as the file spells it when it is neither `"auto"` nor `"manual"`.
    #[serde(skip)]
    odd_start: Option<String>,
}

#[derive(Serialize)]
struct OnDisk<'a> {
    mdev_type: &'a str,
    start: &'a str,
    attrs: Vec<BTreeMap<&'a str, &'a str>>,
}

/// The three id sets the attributes build, in the kernel's order of application.
#[derive(Default)]
struct Built {
    adapters: BTreeSet<u8>,
    domains: BTreeSet<u8>,
    controls: BTreeSet<u8>,
    warnings: Vec<String>,
}

/// The value of an `ap_config` attribute: three masks (`apm,aqm,adm`) in the kernel's
/// absolute form (`ap_hex2bitmap`: optional `0x`, hex digits, bit 0 leftmost).
fn parse_ap_config(value: &str) -> std::result::Result<(Mask, Mask, Mask, bool), String> {
    let v = value.strip_suffix('\n').unwrap_or(value);
    let parts: Vec<&str> = v.split(',').collect();
    if parts.len() != 3 {
        return Err(format!(
            "ap_config value {value:?} is not three masks apm,aqm,adm"
        ));
    }
    let mut masks = [Mask::EMPTY; 3];
    let mut libap_readable = true;
    for (i, p) in parts.iter().enumerate() {
        masks[i] = Mask::parse_kernel_absolute(p.as_bytes())
            .map_err(|e| format!("ap_config value {value:?}: {e}"))?;
        // libap's get_hexbyte_value asserts 0x and 64 hex digits (ap-check aborts otherwise)
        libap_readable &= p.len() == 66 && p.starts_with("0x");
    }
    Ok((masks[0], masks[1], masks[2], libap_readable))
}

fn build(attrs: &[(String, String)]) -> std::result::Result<Built, String> {
    let mut b = Built::default();
    for (k, v) in attrs {
        if k == "ap_config" {
            let (apm, aqm, adm, libap_readable) = parse_ap_config(v)?;
            b.adapters = apm.iter().collect();
            b.domains = aqm.iter().collect();
            b.controls = adm.iter().collect();
            if !libap_readable {
                b.warnings.push(format!(
                    "ap_config {v:?}: s390-tools' ap-check reads only masks of 0x and 64 hex digits and stops on this one"
                ));
            }
            continue;
        }
        let (assign, rest) = if let Some(r) = k.strip_prefix("assign_") {
            (true, r)
        } else if let Some(r) = k.strip_prefix("unassign_") {
            (false, r)
        } else {
            continue;
        };
        let set = match rest {
            "adapter" => &mut b.adapters,
            "domain" => &mut b.domains,
            "control_domain" => &mut b.controls,
            _ => continue,
        };
        // mdevctl writes the value verbatim: the kernel reads it with base 0.
        let n = kstrtoul(v).filter(|n| *n <= 255).ok_or_else(|| {
            format!("{k} value {v:?} is not a number 0..255 as the kernel reads it")
        })? as u8;
        if assign {
            set.insert(n);
        } else {
            set.remove(&n);
            // libap (ap-check) skips unassign_* and so still counts the id
            b.warnings.push(format!(
                "{k} {v:?}: s390-tools' ap-check ignores unassign_* attributes and still counts this id as assigned"
            ));
        }
    }
    Ok(b)
}

impl Definition {
    /// A new definition assigning these ids (decimal values, adapters, then domains,
    /// then control domains, as mdevctl and ap-check write them).
    pub fn new(
        uuid: &str,
        start: Start,
        adapters: &[Apid],
        domains: &[Apqi],
        control_domains: &[Apqi],
    ) -> Definition {
        let mut attrs = Vec::new();
        for a in adapters {
            attrs.push(("assign_adapter".to_string(), a.0.to_string()));
        }
        for d in domains {
            attrs.push(("assign_domain".to_string(), d.0.to_string()));
        }
        for c in control_domains {
            attrs.push(("assign_control_domain".to_string(), c.0.to_string()));
        }
        let mut def = Definition {
            uuid: uuid.to_string(),
            file_name: uuid.to_string(),
            mdev_type: MDEV_TYPE.to_string(),
            start,
            attrs,
            adapters: Vec::new(),
            domains: Vec::new(),
            control_domains: Vec::new(),
            unknown_keys: Vec::new(),
            warnings: Vec::new(),
            odd_start: None,
        };
        // decimal assign_* values always build
        let _ = def.rebuild();
        def
    }

    /// Recomputes the id lists from `attrs`.
    fn rebuild(&mut self) -> std::result::Result<(), String> {
        let b = build(&self.attrs)?;
        self.adapters = b.adapters.into_iter().map(Apid).collect();
        self.domains = b.domains.into_iter().map(Apqi).collect();
        self.control_domains = b.controls.into_iter().map(Apqi).collect();
        self.warnings.clear();
        if let Some(other) = &self.odd_start {
            self.warnings.push(format!(
                "\"start\" is {other}: mdevctl starts a definition at boot only when it is exactly \"auto\", so this one is manual (and s390-tools' ap-check cannot read it)"
            ));
        }
        self.warnings.extend(b.warnings);
        Ok(())
    }

    /// The file's bytes, as mdevctl writes them (`start` normalized to `auto`/`manual`,
    /// attribute names and values verbatim, unknown keys dropped: `mdevctl modify` does
    /// the same).
    pub fn to_json(&self) -> String {
        let doc = OnDisk {
            mdev_type: &self.mdev_type,
            start: self.start.as_str(),
            attrs: self
                .attrs
                .iter()
                .map(|(k, v)| {
                    let mut m = BTreeMap::new();
                    m.insert(k.as_str(), v.as_str());
                    m
                })
                .collect(),
        };
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }

    /// Parses a definition file's text; `file_name` is the file's name (the UUID in any
    /// form mdevctl reads).
    pub fn parse(file_name: &str, text: &str) -> std::result::Result<Definition, String> {
        let uuid = definition_file_uuid(file_name).unwrap_or_else(|| file_name.to_string());
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let mut odd_start = None;
        let mdev_type = match obj.get("mdev_type") {
            None | Some(serde_json::Value::Null) => {
                return Err("no \"mdev_type\" (mdevctl: invalid json)".into())
            }
            Some(t) => t
                .as_str()
                .ok_or("\"mdev_type\" is not a string (mdevctl 1.2.0 aborts on it)")?
                .to_string(),
        };
        let start = match obj.get("start") {
            None | Some(serde_json::Value::Null) => {
                return Err("no \"start\" (mdevctl: invalid json)".into())
            }
            Some(serde_json::Value::String(s)) if s == "auto" => Start::Auto,
            Some(serde_json::Value::String(s)) if s == "manual" => Start::Manual,
            Some(other) => {
                odd_start = Some(other.to_string());
                Start::Manual
            }
        };
        let mut attrs = Vec::new();
        match obj.get("attrs") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Array(list)) => {
                for item in list {
                    let o = item
                        .as_object()
                        .ok_or("an \"attrs\" entry is not an object")?;
                    if o.len() != 1 {
                        return Err("an \"attrs\" entry is not a one-key object".into());
                    }
                    let (k, v) = o.iter().next().ok_or("empty attrs entry")?;
                    let v = v.as_str().ok_or_else(|| {
                        format!("attribute {k} has a non-string value (mdevctl 1.2.0 aborts on it)")
                    })?;
                    attrs.push((k.clone(), v.to_string()));
                }
            }
            Some(_) => return Err("\"attrs\" is not a list".into()),
        }
        let unknown_keys: Vec<String> = obj
            .keys()
            .filter(|k| !KNOWN_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        let mut def = Definition {
            uuid,
            file_name: file_name.to_string(),
            mdev_type,
            start,
            attrs,
            adapters: Vec::new(),
            domains: Vec::new(),
            control_domains: Vec::new(),
            unknown_keys,
            warnings: Vec::new(),
            odd_start,
        };
        def.rebuild()?;
        Ok(def)
    }

    /// Assigns (`assign`) or unassigns one id in the definition the way `mdevctl modify`
    /// edits it: an id already in (or already out of) the matrix changes nothing; an
    /// assignment appends `assign_<kind>` with the decimal value (`--addattr`); an
    /// unassignment deletes the entries that assign the id (`--delattr`) and clears its
    /// bit in `ap_config` values. Every other entry and spelling stays. Returns whether the
    /// attributes changed.
    pub fn edit(&mut self, kind: IdKind, id: u8, assign: bool) -> bool {
        let has = |d: &Definition| match kind {
            IdKind::Adapter => d.adapters.contains(&Apid(id)),
            IdKind::Domain => d.domains.contains(&Apqi(id)),
            IdKind::Control => d.control_domains.contains(&Apqi(id)),
        };
        if has(self) == assign {
            return false;
        }
        let name = format!("assign_{}", kind.attribute());
        if assign {
            self.attrs.push((name, id.to_string()));
        } else {
            self.attrs
                .retain(|(k, v)| !(*k == name && kstrtoul(v) == Some(u64::from(id))));
            for (k, v) in self.attrs.iter_mut() {
                if k != "ap_config" {
                    continue;
                }
                if let Ok((mut apm, mut aqm, mut adm, _)) = parse_ap_config(v) {
                    let m = match kind {
                        IdKind::Adapter => &mut apm,
                        IdKind::Domain => &mut aqm,
                        IdKind::Control => &mut adm,
                    };
                    if m.test(id) {
                        m.clear(id);
                        *v = format!(
                            "{},{},{}",
                            apm.to_kernel_hex(),
                            aqm.to_kernel_hex(),
                            adm.to_kernel_hex()
                        );
                    }
                }
            }
        }
        // the attributes parsed before the edit and the edit only adds decimal values
        let _ = self.rebuild();
        true
    }

    /// The APQNs this definition would assign.
    pub fn apqns(&self) -> Vec<crate::ap::Apqn> {
        let mut v = Vec::new();
        for a in &self.adapters {
            for d in &self.domains {
                v.push(crate::ap::Apqn::new(a.0, d.0));
            }
        }
        v
    }

    /// The APQNs s390-tools' ap-check counts for this definition when it compares it with
    /// other autostart definitions and the masks, together with the kernel's: libap
    /// (libap/ap.c `load_attr_to_device`) reads `assign_*` values as comma lists of
    /// `strtol` base-0 numbers, lets `ap_config` replace all lists, and skips `unassign_*`,
    /// so an id a later `unassign_*` takes away still counts for ap-check.
    pub fn ap_check_apqns(&self) -> Vec<crate::ap::Apqn> {
        let mut libap_adapters = BTreeSet::new();
        let mut libap_domains = BTreeSet::new();
        for (k, v) in &self.attrs {
            match k.as_str() {
                "assign_adapter" => {
                    libap_adapters.extend(v.split(',').filter_map(strtol_u8_prefix))
                }
                "assign_domain" => libap_domains.extend(v.split(',').filter_map(strtol_u8_prefix)),
                "ap_config" => {
                    if let Ok((apm, aqm, _, _)) = parse_ap_config(v) {
                        libap_adapters = apm.iter().collect();
                        libap_domains = aqm.iter().collect();
                    }
                }
                _ => {}
            }
        }
        let mut apqns: BTreeSet<crate::ap::Apqn> = self.apqns().into_iter().collect();
        for a in &libap_adapters {
            for d in &libap_domains {
                apqns.insert(crate::ap::Apqn::new(*a, *d));
            }
        }
        apqns.into_iter().collect()
    }

    /// The host path of this definition's file.
    pub fn path(&self) -> String {
        definition_path(&self.file_name)
    }
}

/// The UUID (lower case, hyphens) a definition file's name stands for, read as mdevctl
/// reads it (`Uuid::parse_str` of the uuid crate Debian builds it with: 32 hex digits,
/// 8-4-4-4-12, the latter in braces or after `urn:uuid:`; hex digits in either case).
/// `None` for a file mdevctl skips.
pub fn definition_file_uuid(name: &str) -> Option<String> {
    let hyphenated = name
        .strip_prefix('{')
        .and_then(|n| n.strip_suffix('}'))
        .or_else(|| name.strip_prefix("urn:uuid:"))
        .unwrap_or(name);
    if hyphenated.len() == 36 {
        return mdev_uuid::normalize(hyphenated).ok();
    }
    if name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
        let l = name.to_ascii_lowercase();
        return Some(format!(
            "{}-{}-{}-{}-{}",
            &l[0..8],
            &l[8..12],
            &l[12..16],
            &l[16..20],
            &l[20..32]
        ));
    }
    None
}

/// The host path of a definition file.
pub fn definition_path(file_name: &str) -> String {
    format!("{DEFINITIONS_DIR}/{file_name}")
}

/// The names of every file in `/etc/mdevctl.d/matrix` that mdevctl reads as a definition
/// of `uuid` (usually one, the lower-case name; mdevctl lists each of them).
pub fn definition_files(root: &HostRoot, uuid: &str) -> Result<Vec<String>> {
    let uuid = mdev_uuid::normalize(uuid)?;
    let names = match root.read_dir(DEFINITIONS_DIR) {
        Ok(n) => n,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(names
        .into_iter()
        .filter(|n| definition_file_uuid(n).as_deref() == Some(uuid.as_str()))
        .filter(|n| !root.is_dir(definition_path(n)))
        .collect())
}

/// Reads one definition file by its name.
pub fn read_definition_file(root: &HostRoot, file_name: &str) -> Result<Option<Definition>> {
    let path = definition_path(file_name);
    match root.read_optional(&path)? {
        None => Ok(None),
        Some(text) => Definition::parse(file_name, &text)
            .map(Some)
            .map_err(|reason| Error::Format {
                path: root.path(&path),
                reason,
            }),
    }
}

/// Reads the definition of `uuid`, whatever form its file name has; `Ok(None)` when
/// there is none. Several files for one UUID are an error (mdevctl: "Multiple definitions
/// found").
pub fn read_definition(root: &HostRoot, uuid: &str) -> Result<Option<Definition>> {
    let files = definition_files(root, uuid)?;
    match files.as_slice() {
        [] => Ok(None),
        [one] => read_definition_file(root, one),
        many => Err(Error::Refused {
            kind: ErrorKind::Definition,
            message: format!(
                "mdev {} has {} definition files in {}: {} (mdevctl reads each of them: \"Multiple definitions found\")",
                mdev_uuid::normalize(uuid)?,
                many.len(),
                root.path(DEFINITIONS_DIR).display(),
                many.join(", ")
            ),
            hint: "keep one of them (named by the lower-case UUID) and delete the others"
                .into(),
        }),
    }
}

/// The process's umask, from `/proc/self/status` (Linux 4.7+); 022 when it cannot be read.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// The mode a definition file gets, as mdevctl's `fs::write` gives it: a replaced file
/// keeps its mode (mdevctl truncates and rewrites it), a new one is `0666 & !umask`
/// (0644 under umask 022, 0600 under umask 077).
fn file_mode(root: &HostRoot, existing: Option<&str>) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    existing
        .and_then(|name| root.metadata(definition_path(name)).ok())
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o666 & !umask())
}

/// Writes a definition atomically under its lower-case name (temp file, fsync, rename,
/// fsync of the directory); refuses to replace an existing one unless `force`. A
/// definition read from a file of another name (`62177883-F1BB-...`) moves to the
/// lower-case name, the one `mdevctl undefine` and `mdevctl modify` use.
pub fn write_definition(root: &HostRoot, def: &Definition, force: bool) -> Result<PathBuf> {
    let uuid = mdev_uuid::normalize(&def.uuid)?;
    let target = root.path(definition_path(&uuid));
    let existing = definition_files(root, &uuid)?;
    if !force && !existing.is_empty() {
        return Err(Error::Refused {
            kind: ErrorKind::Exists,
            message: format!(
                "a definition of mdev {uuid} already exists: {}",
                root.path(definition_path(&existing[0])).display()
            ),
            hint: "pass --force to replace it".into(),
        });
    }
    let mode = file_mode(
        root,
        existing
            .iter()
            .find(|n| **n == def.file_name)
            .or(existing.first())
            .map(String::as_str),
    );
    // Inside the host root only: a link at the path is replaced, never written through.
    root.create_dir_all(DEFINITIONS_DIR, 0o755)?;
    root.write_file_atomic(
        definition_path(&uuid),
        def.to_json().as_bytes(),
        mode,
        force,
    )?;
    for other in existing.iter().filter(|n| **n != uuid) {
        root.remove_file(definition_path(other))?;
    }
    Ok(target)
}

/// Deletes every file that defines `uuid` (whatever its name's form); returns their
/// paths, none when there was no definition.
pub fn remove_definition(root: &HostRoot, uuid: &str) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in definition_files(root, uuid)? {
        if root.remove_file(definition_path(&name))? {
            removed.push(root.path(definition_path(&name)));
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "62177883-f1bb-47f0-914d-32a22e3a8804";

    #[test]
    fn the_example_definition_round_trips_byte_for_byte() {
        let path = testkit::hosttree::example_host("z16-se").join(definition_path(EXAMPLE));
        let text = std::fs::read_to_string(path).unwrap();
        let def = Definition::parse(EXAMPLE, &text).unwrap();
        assert_eq!(def.start, Start::Auto);
        assert_eq!(def.adapters, vec![Apid(5)]);
        assert_eq!(def.domains, vec![Apqi(4), Apqi(171)]);
        assert_eq!(def.control_domains, vec![Apqi(171)]);
        assert_eq!(def.to_json(), text);
        let made = Definition::new(
            EXAMPLE,
            Start::Auto,
            &[Apid(5)],
            &[Apqi(4), Apqi(171)],
            &[Apqi(171)],
        );
        assert_eq!(made.to_json(), text);
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn attrs_apply_in_order_with_kernel_numbers() {
        let text = r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[
            {"assign_adapter":"0x10"},{"assign_domain":"010"},{"assign_adapter":"3"},
            {"unassign_adapter":"16"},{"assign_control_domain":"+5"}]}"#;
        let d = Definition::parse(EXAMPLE, text).unwrap();
        assert_eq!(d.adapters, vec![Apid(3)]);
        assert_eq!(d.domains, vec![Apqi(8)]);
        assert_eq!(d.control_domains, vec![Apqi(5)]);
        assert_eq!(d.start, Start::Manual);
    }

    #[test]
    fn bad_definitions_say_why() {
        for (text, want) in [
            (
                r#"{"mdev_type":"x","start":"auto","attrs":{}}"#,
                "not a list",
            ),
            (
                r#"{"mdev_type":"x","start":"auto","attrs":[5]}"#,
                "not an object",
            ),
            (
                r#"{"mdev_type":"x","start":"auto","attrs":[{}]}"#,
                "one-key",
            ),
            (r#"{"mdev_type":5,"start":"auto"}"#, "not a string"),
            (r#"{"mdev_type":"x","start":null}"#, "start"),
            ("nope", "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"start":"auto"}"#, "mdev_type"),
            (
                r#"{"mdev_type":"x","start":"auto","attrs":[{"assign_adapter":"256"}]}"#,
                "256",
            ),
            (
                r#"{"mdev_type":"x","start":"auto","attrs":[{"assign_adapter":5}]}"#,
                "non-string",
            ),
            (
                r#"{"mdev_type":"x","start":"auto","attrs":[{"a":"1","b":"2"}]}"#,
                "one-key",
            ),
        ] {
            let e = Definition::parse(EXAMPLE, text).unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn writes_atomically_and_never_overwrites_without_force() {
        let tree = testkit::hosttree::HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let u = "11111111-2222-4333-8444-555555555555";
        let def = Definition::new(u, Start::Manual, &[Apid(3)], &[Apqi(4)], &[]);
        let p = write_definition(&root, &def, false).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), def.to_json());
        let e = write_definition(&root, &def, false).unwrap_err();
        assert!(matches!(
            e,
            Error::Refused {
                kind: ErrorKind::Exists,
                ..
            }
        ));
        let def2 = Definition::new(u, Start::Auto, &[Apid(3)], &[Apqi(4)], &[]);
        write_definition(&root, &def2, true).unwrap();
        assert_eq!(
            read_definition(&root, u).unwrap().unwrap().start,
            Start::Auto
        );
        // no temp files left behind
        let names = root.read_dir(DEFINITIONS_DIR).unwrap();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(remove_definition(&root, u).unwrap().len(), 1);
        assert!(remove_definition(&root, u).unwrap().is_empty());
    }

    #[test]
    fn ap_check_counts_what_unassign_takes_away_and_comma_lists() {
        let text = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[
            {"assign_adapter":"5"},{"assign_domain":"4"},{"unassign_domain":"4"},{"assign_domain":"0x10"}]}"#;
        let d = Definition::parse(EXAMPLE, text).unwrap();
        assert_eq!(d.apqns(), vec![crate::ap::Apqn::new(5, 16)]);
        assert_eq!(
            d.ap_check_apqns(),
            vec![crate::ap::Apqn::new(5, 4), crate::ap::Apqn::new(5, 16)]
        );
        assert!(d.warnings.iter().any(|w| w.contains("unassign")));
    }

    #[test]
    fn every_file_name_mdevctl_reads_is_a_definition() {
        let want = "62177883-f1bb-47f0-914d-32a22e3a8804";
        for name in [
            "62177883-f1bb-47f0-914d-32a22e3a8804",
            "62177883-F1BB-47F0-914D-32A22E3A8804",
            "62177883f1bb47f0914d32a22e3a8804",
            "{62177883-f1bb-47f0-914d-32a22e3a8804}",
            "urn:uuid:62177883-F1BB-47f0-914d-32a22e3a8804",
        ] {
            assert_eq!(definition_file_uuid(name).as_deref(), Some(want), "{name}");
        }
        for name in [
            "62177883-f1bb-47f0-914d-32a22e3a880",
            "62177883_f1bb_47f0_914d_32a22e3a8804",
            ".62177883-f1bb-47f0-914d-32a22e3a8804.12.0",
            "{62177883f1bb47f0914d32a22e3a8804}",
            "URN:UUID:62177883-f1bb-47f0-914d-32a22e3a8804",
            "scripts.d",
        ] {
            assert_eq!(definition_file_uuid(name), None, "{name}");
        }
    }

    #[test]
    fn hand_written_forms_read_as_mdevctl_reads_them() {
        // "AUTO" is manual for mdevctl (only "auto" starts at boot); attrs may be null or missing
        let d = Definition::parse(
            EXAMPLE,
            r#"{"mdev_type":"vfio_ap-passthrough","start":"AUTO","attrs":null}"#,
        )
        .unwrap();
        assert_eq!(d.start, Start::Manual);
        assert!(d.attrs.is_empty() && d.adapters.is_empty());
        assert!(
            d.warnings[0].contains("exactly \"auto\""),
            "{:?}",
            d.warnings
        );
        let d = Definition::parse(EXAMPLE, r#"{"mdev_type":"x","start":true}"#).unwrap();
        assert_eq!(d.start, Start::Manual);
        assert!(d.attrs.is_empty());
        // mdevctl writes start normalized, the attributes verbatim
        assert_eq!(
            d.to_json(),
            "{\n  \"mdev_type\": \"x\",\n  \"start\": \"manual\",\n  \"attrs\": []\n}"
        );
        let d = Definition::parse(
            "62177883-F1BB-47F0-914D-32A22E3A8804",
            r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","atrs":[{"assign_adapter":"5"}],"x":1}"#,
        )
        .unwrap();
        assert_eq!(d.uuid, EXAMPLE);
        assert_eq!(d.file_name, "62177883-F1BB-47F0-914D-32A22E3A8804");
        assert_eq!(d.unknown_keys, vec!["atrs".to_string(), "x".to_string()]);
        assert!(d.adapters.is_empty());
    }

    #[test]
    fn ap_config_replaces_the_matrix_like_the_kernel_and_libap() {
        let hex = |bits: &[u8]| Mask::from_bits(bits.iter().copied()).to_kernel_hex();
        let cfg = format!("{},{},{}", hex(&[3, 5]), hex(&[4, 171]), hex(&[171]));
        let text = format!(
            r#"{{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{{"assign_adapter":"9"}},{{"ap_config":"{cfg}"}},{{"assign_domain":"0x10"}}]}}"#
        );
        let d = Definition::parse(EXAMPLE, &text).unwrap();
        assert_eq!(d.adapters, vec![Apid(3), Apid(5)]);
        assert_eq!(d.domains, vec![Apqi(4), Apqi(16), Apqi(171)]);
        assert_eq!(d.control_domains, vec![Apqi(171)]);
        assert!(d.warnings.is_empty(), "{:?}", d.warnings);
        // the kernel also takes short masks; libap asserts 64 digits
        let d = Definition::parse(
            EXAMPLE,
            r#"{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{"ap_config":"0x1,0x08,0"}]}"#,
        )
        .unwrap();
        assert_eq!(d.adapters, vec![Apid(3)]);
        assert_eq!(d.domains, vec![Apqi(4)]);
        assert!(d.warnings[0].contains("ap-check"), "{:?}", d.warnings);
        for bad in ["0x1,0x2", "0x1,0x2,0x3,0x4", "0xg,0,0"] {
            let text = format!(
                r#"{{"mdev_type":"vfio_ap-passthrough","start":"manual","attrs":[{{"ap_config":"{bad}"}}]}}"#
            );
            let e = Definition::parse(EXAMPLE, &text).unwrap_err();
            assert!(e.contains("ap_config"), "{bad}: {e}");
        }
    }

    #[test]
    fn edits_keep_entries_and_spellings_like_mdevctl_modify() {
        let text = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[
            {"assign_adapter":"0x05"},{"assign_domain":"0x04"},{"assign_domain":"0xab"},
            {"assign_control_domain":"0xab"}]}"#;
        let mut d = Definition::parse(EXAMPLE, text).unwrap();
        assert!(!d.edit(IdKind::Adapter, 5, true), "already assigned");
        assert!(d.edit(IdKind::Adapter, 6, true));
        assert!(d.edit(IdKind::Domain, 4, false));
        assert!(!d.edit(IdKind::Domain, 4, false), "already gone");
        assert_eq!(
            d.attrs,
            vec![
                ("assign_adapter".to_string(), "0x05".to_string()),
                ("assign_domain".to_string(), "0xab".to_string()),
                ("assign_control_domain".to_string(), "0xab".to_string()),
                ("assign_adapter".to_string(), "6".to_string()),
            ]
        );
        assert_eq!(d.adapters, vec![Apid(5), Apid(6)]);
        assert_eq!(d.domains, vec![Apqi(171)]);
        // an id that comes from ap_config is cleared there, the rest of the value kept
        let hex = |bits: &[u8]| Mask::from_bits(bits.iter().copied()).to_kernel_hex();
        let cfg = format!("{},{},{}", hex(&[3, 5]), hex(&[4]), hex(&[]));
        let text = format!(
            r#"{{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{{"ap_config":"{cfg}"}}]}}"#
        );
        let mut d = Definition::parse(EXAMPLE, &text).unwrap();
        assert!(d.edit(IdKind::Adapter, 3, false));
        assert_eq!(
            d.attrs[0].1,
            format!("{},{},{}", hex(&[5]), hex(&[4]), hex(&[]))
        );
        assert_eq!(d.adapters, vec![Apid(5)]);
    }

    #[test]
    fn a_definition_under_another_name_is_found_rewritten_lower_case_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let tree = testkit::hosttree::HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let upper = "11111111-2222-4333-8444-55555555AAAA";
        let lower = "11111111-2222-4333-8444-55555555aaaa";
        let text = r#"{"mdev_type":"vfio_ap-passthrough","start":"auto","attrs":[{"assign_adapter":"0x3"}]}"#;
        let file = tree.path().join(definition_path(upper));
        std::fs::write(&file, text).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut d = read_definition(&root, lower).unwrap().unwrap();
        assert_eq!(d.file_name, upper);
        assert_eq!(d.adapters, vec![Apid(3)]);
        d.edit(IdKind::Domain, 7, true);
        let p = write_definition(&root, &d, true).unwrap();
        assert!(p.ends_with(lower));
        assert!(
            !file.exists(),
            "the upper-case file is replaced by the lower-case one"
        );
        // a replaced file keeps its mode, as mdevctl's rewrite in place does
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(std::fs::read_to_string(&p).unwrap().contains("\"0x3\""));
        // two files for one UUID: mdevctl refuses ("Multiple definitions found"), so do we
        std::fs::write(tree.path().join(definition_path(upper)), text).unwrap();
        let e = read_definition(&root, lower).unwrap_err();
        assert!(e.to_string().contains("2 definition files"), "{e}");
        assert_eq!(remove_definition(&root, lower).unwrap().len(), 2);
        assert!(read_definition(&root, lower).unwrap().is_none());
    }

    #[test]
    fn a_new_file_gets_mdevctls_mode_under_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let tree = testkit::hosttree::HostTree::from_example("z16-se");
        let root = HostRoot::open(tree.path()).unwrap();
        let u = "11111111-2222-4333-8444-555555555555";
        let def = Definition::new(u, Start::Manual, &[Apid(3)], &[Apqi(4)], &[]);
        let p = write_definition(&root, &def, false).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask());
    }
}
