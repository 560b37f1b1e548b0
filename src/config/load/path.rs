//! Key paths (`journey.signals[2].actions`) and the few edits the loader
//! makes to a `toml::Value` tree: look up, remove, lay one tree over another.

use std::borrow::Cow;
use std::fmt;

use toml::Value;

/// One step into a tree: a table key or a list index.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Segment {
    /// A key of a table.
    Key(String),
    /// A position in a list.
    Index(usize),
}

/// Where a value sits in the configuration, printed the way users write it:
/// `journey.signals[2].actions`, `kafka.properties."sasl.mechanism"`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The path of a key `serde_ignored` skipped.
    pub(super) fn from_ignored(path: &serde_ignored::Path<'_>) -> KeyPath {
        use serde_ignored::Path as P;
        match path {
            P::Root => KeyPath::default(),
            P::Seq { parent, index } => KeyPath::from_ignored(parent).index(*index),
            P::Map { parent, key } => KeyPath::from_ignored(parent).key(key),
            P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => {
                KeyPath::from_ignored(parent)
            }
        }
    }

    /// The path at which `serde_path_to_error` saw a deserialization fail.
    pub(super) fn from_tracked(path: &serde_path_to_error::Path) -> KeyPath {
        use serde_path_to_error::Segment as S;
        let segments = path.iter().map(|segment| match segment {
            S::Seq { index } => Segment::Index(*index),
            S::Map { key } | S::Enum { variant: key } => Segment::Key(key.clone()),
            S::Unknown => Segment::Key("?".to_owned()),
        });
        KeyPath(segments.collect())
    }

    /// This path extended by a table key.
    pub(super) fn key(mut self, key: &str) -> KeyPath {
        self.0.push(Segment::Key(key.to_owned()));
        self
    }

    /// This path extended by a list index.
    pub(super) fn index(mut self, index: usize) -> KeyPath {
        self.0.push(Segment::Index(index));
        self
    }

    /// How many steps from the root.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether `prefix` is this path or one of its ancestors.
    pub(super) fn starts_with(&self, prefix: &KeyPath) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The nearest path, this one or an ancestor, that ends in a table key:
    /// the smallest thing that can be removed without shifting list indices.
    /// `None` for the root.
    pub(super) fn removable(&self) -> Option<KeyPath> {
        let end = self.0.iter().rposition(|s| matches!(s, Segment::Key(_)))?;
        Some(KeyPath(self.0[..=end].to_vec()))
    }

    /// The value at this path in `tree`, if there is one.
    pub(super) fn lookup<'a>(&self, tree: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(tree, |node, segment| match segment {
            Segment::Key(key) => node.get(key.as_str()),
            Segment::Index(index) => node.get(*index),
        })
    }

    /// The path one step up; `None` for the root.
    pub(super) fn parent(&self) -> Option<KeyPath> {
        let (_, parent) = self.0.split_last()?;
        Some(KeyPath(parent.to_vec()))
    }

    /// Sets the value at this path, which must end in a key of an existing
    /// table. Returns whether it could.
    pub(super) fn set_in(&self, tree: &mut Value, value: Value) -> bool {
        let Some((table, key)) = self.parent_table(tree) else {
            return false;
        };
        table.insert(key.to_owned(), value);
        true
    }

    /// Removes the value at this path, which must end in a table key.
    /// Returns whether there was one.
    pub(super) fn remove_from(&self, tree: &mut Value) -> bool {
        self.parent_table(tree)
            .is_some_and(|(table, key)| table.remove(key).is_some())
    }

    /// The table holding this path's last key, and that key.
    fn parent_table<'a>(&'a self, tree: &'a mut Value) -> Option<(&'a mut toml::Table, &'a str)> {
        let (Segment::Key(last), parents) = self.0.split_last()? else {
            return None;
        };
        let parent = parents
            .iter()
            .try_fold(tree, |node, segment| match segment {
                Segment::Key(key) => node.get_mut(key.as_str()),
                Segment::Index(index) => node.get_mut(*index),
            });
        match parent {
            Some(Value::Table(table)) => Some((table, last.as_str())),
            _ => None,
        }
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(&toml_key(key))?,
                Segment::Key(key) => write!(f, ".{}", toml_key(key))?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// `key` as TOML writes it: bare when it can be, otherwise quoted, as a
/// librdkafka property name with dots is (`"security.protocol"`).
pub(in crate::config) fn toml_key(key: &str) -> Cow<'_, str> {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !key.is_empty() && key.chars().all(bare) {
        return Cow::Borrowed(key);
    }
    let escaped = key.replace('\\', "\\\\").replace('"', "\\\"");
    Cow::Owned(format!("\"{escaped}\""))
}

/// Lays `top` over `base`: tables merge key by key, anything else (lists
/// included) in `top` replaces what `base` has. This is what
/// `#[serde(default)]` does when `top` is a file and `base` the defaults.
pub(super) fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Table(base), Value::Table(top)) => {
            for (key, value) in top {
                match base.get_mut(&key) {
                    Some(slot) => overlay(slot, value),
                    None => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, top) => *base = top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Value {
        Value::Table(toml::from_str(text).unwrap())
    }

    #[test]
    fn displays_like_toml_keys() {
        let path = KeyPath::default()
            .key("journey")
            .key("signals")
            .index(2)
            .key("actoins");
        assert_eq!(path.to_string(), "journey.signals[2].actoins");
        assert_eq!(KeyPath::default().to_string(), "(top level)");
        let dotted = KeyPath::default()
            .key("kafka")
            .key("properties")
            .key("sasl.mechanism");
        assert_eq!(dotted.to_string(), "kafka.properties.\"sasl.mechanism\"");
        assert_eq!(toml_key("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn removable_drops_trailing_indices() {
        let path = KeyPath::default().key("a").index(1).key("b").index(3);
        assert_eq!(
            path.removable(),
            Some(KeyPath::default().key("a").index(1).key("b"))
        );
        assert_eq!(KeyPath::default().removable(), None);
    }

    #[test]
    fn removes_inside_lists_of_tables() {
        let mut value = tree("[[a]]\nx = 1\n[[a]]\nx = 2\ny = 3\n");
        let path = KeyPath::default().key("a").index(1).key("y");
        assert!(path.remove_from(&mut value));
        assert!(!path.remove_from(&mut value));
        assert_eq!(value, tree("[[a]]\nx = 1\n[[a]]\nx = 2\n"));
    }

    #[test]
    fn overlay_merges_tables_and_replaces_lists() {
        let mut base = tree("[t]\na = 1\nb = [1, 2]\n[u]\nc = 'x'\n");
        overlay(&mut base, tree("[t]\nb = [3]\nd = true\n"));
        assert_eq!(base, tree("[t]\na = 1\nb = [3]\nd = true\n[u]\nc = 'x'\n"));
    }
}
