//! mdevctl's persistent mdev definitions: `/etc/mdevctl.d/matrix/<uuid>`.
//!
//! The file is the JSON mdevctl itself writes (pretty-printed with two-space indentation,
//! no trailing newline): `mdev_type`, `start` (`auto` or `manual`) and `attrs`, an ordered
//! list of one-key objects with string values that are written to the mdev's attributes
//! in order when it is started.

use crate::ap::{kstrtoul, Apid, Apqi};
use crate::error::{normalize_uuid, Error, Result};
use crate::mdev::MDEV_TYPE;
use host::HostRoot;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Where vfio_ap definitions live (host path; the parent device is `matrix`).
pub const DEFINITIONS_DIR: &str = "etc/mdevctl.d/matrix";

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

/// A definition of a vfio_ap mdev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Definition {
    /// The UUID (the file name).
    pub uuid: String,
    /// `mdev_type` (should be `vfio_ap-passthrough`).
    pub mdev_type: String,
    /// `start`.
    pub start: Start,
    /// The attributes in order: (attribute, value as written to the kernel).
    pub attrs: Vec<(String, String)>,
    /// Adapters after applying the attributes in order.
    pub adapters: Vec<Apid>,
    /// Usage domains after applying the attributes in order.
    pub domains: Vec<Apqi>,
    /// Control domains after applying the attributes in order.
    pub control_domains: Vec<Apqi>,
}

#[derive(Serialize)]
struct OnDisk<'a> {
    mdev_type: &'a str,
    start: &'a str,
    attrs: Vec<BTreeMap<&'a str, &'a str>>,
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
        let sorted = |v: &[Apqi]| {
            v.iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        Definition {
            uuid: uuid.to_string(),
            mdev_type: MDEV_TYPE.to_string(),
            start,
            attrs,
            adapters: adapters
                .iter()
                .copied()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
            domains: sorted(domains),
            control_domains: sorted(control_domains),
        }
    }

    /// The file's bytes, as mdevctl writes them.
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

    /// Parses a definition file's text.
    pub fn parse(uuid: &str, text: &str) -> std::result::Result<Definition, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        let mdev_type = obj
            .get("mdev_type")
            .and_then(|t| t.as_str())
            .ok_or("no \"mdev_type\" string")?
            .to_string();
        let start = match obj.get("start").and_then(|s| s.as_str()) {
            Some("auto") => Start::Auto,
            Some("manual") => Start::Manual,
            other => {
                return Err(format!(
                    "\"start\" is {other:?}, not \"auto\" or \"manual\""
                ))
            }
        };
        let mut attrs = Vec::new();
        if let Some(list) = obj.get("attrs") {
            let list = list.as_array().ok_or("\"attrs\" is not a list")?;
            for item in list {
                let o = item
                    .as_object()
                    .filter(|o| o.len() == 1)
                    .ok_or("an \"attrs\" entry is not a one-key object")?;
                let (k, v) = o.iter().next().ok_or("empty attrs entry")?;
                let v = v
                    .as_str()
                    .ok_or_else(|| format!("attribute {k} has a non-string value"))?;
                attrs.push((k.clone(), v.to_string()));
            }
        }
        let mut adapters = BTreeSet::new();
        let mut domains = BTreeSet::new();
        let mut controls = BTreeSet::new();
        for (k, v) in &attrs {
            let set = match k.as_str() {
                "assign_adapter" | "unassign_adapter" => None,
                "assign_domain" | "unassign_domain" => Some(false),
                "assign_control_domain" | "unassign_control_domain" => Some(true),
                _ => continue,
            };
            // mdevctl writes the value verbatim: the kernel reads it with base 0.
            let n = kstrtoul(v).filter(|n| *n <= 255).ok_or_else(|| {
                format!("{k} value {v:?} is not a number 0..255 as the kernel reads it")
            })? as u8;
            let assign = k.starts_with("assign");
            match set {
                None => {
                    if assign {
                        adapters.insert(Apid(n));
                    } else {
                        adapters.remove(&Apid(n));
                    }
                }
                Some(false) => {
                    if assign {
                        domains.insert(Apqi(n));
                    } else {
                        domains.remove(&Apqi(n));
                    }
                }
                Some(true) => {
                    if assign {
                        controls.insert(Apqi(n));
                    } else {
                        controls.remove(&Apqi(n));
                    }
                }
            }
        }
        Ok(Definition {
            uuid: uuid.to_string(),
            mdev_type,
            start,
            attrs,
            adapters: adapters.into_iter().collect(),
            domains: domains.into_iter().collect(),
            control_domains: controls.into_iter().collect(),
        })
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
}

/// The host path of a definition.
pub fn definition_path(uuid: &str) -> String {
    format!("{DEFINITIONS_DIR}/{uuid}")
}

/// Reads one definition; `Ok(None)` when there is none.
pub fn read_definition(root: &HostRoot, uuid: &str) -> Result<Option<Definition>> {
    let uuid = normalize_uuid(uuid)?;
    let path = definition_path(&uuid);
    match root.read_optional(&path)? {
        None => Ok(None),
        Some(text) => Definition::parse(&uuid, &text)
            .map(Some)
            .map_err(|reason| Error::Format {
                path: root.path(&path),
                reason,
            }),
    }
}

/// Writes a definition atomically (temp file, fsync, rename, fsync of the directory);
/// refuses to replace an existing one unless `force`.
pub fn write_definition(root: &HostRoot, def: &Definition, force: bool) -> Result<PathBuf> {
    let target = root.path(definition_path(&def.uuid));
    if !force && root.entry_exists(definition_path(&def.uuid)) {
        return Err(Error::Refused {
            kind: "exists",
            message: format!(
                "a definition of mdev {} already exists: {}",
                def.uuid,
                target.display()
            ),
            hint: "pass --force to replace it".into(),
        });
    }
    // Inside the host root only: a link at the path is replaced, never written through.
    root.create_dir_all(DEFINITIONS_DIR, 0o755)?;
    root.write_file_atomic(
        definition_path(&def.uuid),
        def.to_json().as_bytes(),
        0o644,
        force,
    )?;
    Ok(target)
}

/// Deletes a definition; `Ok(false)` when there was none.
pub fn remove_definition(root: &HostRoot, uuid: &str) -> Result<bool> {
    Ok(root.remove_file(definition_path(uuid))?)
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
            ("nope", "not JSON"),
            ("[]", "not a JSON object"),
            (r#"{"start":"auto"}"#, "mdev_type"),
            (r#"{"mdev_type":"x","start":"sometimes"}"#, "start"),
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
        assert!(matches!(e, Error::Refused { kind: "exists", .. }));
        let def2 = Definition::new(u, Start::Auto, &[Apid(3)], &[Apqi(4)], &[]);
        write_definition(&root, &def2, true).unwrap();
        assert_eq!(
            read_definition(&root, u).unwrap().unwrap().start,
            Start::Auto
        );
        // no temp files left behind
        let names = root.read_dir(DEFINITIONS_DIR).unwrap();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(remove_definition(&root, u).unwrap());
        assert!(!remove_definition(&root, u).unwrap());
    }
}
