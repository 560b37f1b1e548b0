//! Environment overrides: `JOURNEYD__TIME__ALLOWED_LATENESS=10s` sets
//! `time.allowed_lateness`.
//!
//! The variable name after the prefix is split at `__` into lower-cased
//! keys; a number indexes into a list (`JOURNEYD__JOURNEY__SIGNALS__2__COUNT`).
//! The value is read as a TOML value when it is one (`10`, `true`, `0.7`,
//! `["a", "b"]`, `"quoted"`), otherwise taken as a plain string (`10s`,
//! `awareness`). Overrides are written into the value tree before it is
//! deserialized, so a misspelt key is reported like any other unknown key,
//! naming the variable that set it.
//!
//! Two kinds of value are always taken verbatim, never read as TOML:
//! `http.auth_token`, and single librdkafka properties
//! (`JOURNEYD__KAFKA__PROPERTIES__SASL.PASSWORD`). Both are strings whose
//! text must arrive unchanged: a token `0x1F` is not the number 31, and a
//! secret must never end up quoted in a type error. A property name holds
//! dots, so its variable name does too; the environment of a container or
//! `env(1)` allows that, a POSIX shell's `export` does not.

use toml::Value;

use super::ENV_PREFIX;
use super::path::KeyPath;

/// A value set from the environment: which variable, at which key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Override {
    /// The variable's name, as given.
    pub var: String,
    /// The key it set.
    pub path: KeyPath,
}

/// Applies every variable starting with `ENV_PREFIX` and `__` to `tree`, in
/// name order. Variables that cannot be applied become problems; the others
/// are returned so later problems can name the variable behind a key.
pub(super) fn apply(
    tree: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
    problems: &mut Vec<String>,
) -> Vec<Override> {
    let prefix = format!("{ENV_PREFIX}__");
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(&prefix))
        .collect();
    vars.sort();
    let mut applied = Vec::new();
    for (var, raw) in vars {
        let keys: Vec<String> = var[prefix.len()..]
            .split("__")
            .map(str::to_lowercase)
            .collect();
        if keys.iter().any(String::is_empty) {
            problems.push(format!(
                "{var}: malformed override name (expected {prefix}SECTION__KEY, e.g. {prefix}TIME__ALLOWED_LATENESS)"
            ));
            continue;
        }
        let value = if verbatim(&keys) {
            Value::String(raw)
        } else {
            parse_value(&raw)
        };
        match set(tree, &keys, value) {
            Ok(path) => applied.push(Override { var, path }),
            Err(why) => problems.push(format!("{var}: {why}")),
        }
    }
    applied
}

/// Appends the variable behind a `key: problem` line, if any: the one
/// that set the key, a key above it or a key below it.
pub(super) fn annotate(overrides: &[Override], problem: String) -> String {
    let Some((key, _)) = problem.split_once(": ") else {
        return problem;
    };
    let related = |a: &str, b: &str| {
        a.strip_prefix(b)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    let var = overrides.iter().find(|o| {
        let path = o.path.to_string();
        related(key, &path) || related(&path, key)
    });
    match var {
        Some(o) => format!("{problem} (set by environment variable {})", o.var),
        None => problem,
    }
}

/// The librdkafka property tables of `[kafka]`.
const PROPERTY_TABLES: [&str; 3] = ["properties", "consumer_properties", "producer_properties"];

/// Whether the value for `keys` is taken as written: the HTTP token, or
/// one property of a librdkafka property table.
fn verbatim(keys: &[String]) -> bool {
    match keys {
        [section, key] => section == "http" && key == "auth_token",
        [section, table, _] => section == "kafka" && PROPERTY_TABLES.contains(&table.as_str()),
        _ => false,
    }
}

/// A TOML value if `raw` is one, else `raw` as a string.
fn parse_value(raw: &str) -> Value {
    raw.parse::<Value>()
        .unwrap_or_else(|_| Value::String(raw.to_owned()))
}

/// Writes `value` at `keys`, creating tables on the way; returns its path.
fn set(tree: &mut Value, keys: &[String], value: Value) -> Result<KeyPath, String> {
    let mut path = KeyPath::default();
    let mut node = tree;
    for key in keys {
        node = match node {
            Value::Table(table) => {
                path = path.key(key);
                table
                    .entry(key.clone())
                    .or_insert_with(|| Value::Table(toml::Table::new()))
            }
            Value::Array(items) => {
                let len = items.len();
                let Ok(index) = key.parse::<usize>() else {
                    return Err(format!(
                        "{path} is a list; expected an index, found `{key}`"
                    ));
                };
                path = path.index(index);
                items
                    .get_mut(index)
                    .ok_or_else(|| format!("{path} does not exist (the list has {len} entries)"))?
            }
            _ => return Err(format!("{path} is a single value, it has no key `{key}`")),
        };
    }
    *node = value;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn tree(text: &str) -> Value {
        Value::Table(toml::from_str(text).unwrap())
    }

    #[test]
    fn values_parse_as_toml_or_fall_back_to_strings() {
        assert_eq!(parse_value("10"), Value::Integer(10));
        assert_eq!(parse_value("true"), Value::Boolean(true));
        assert_eq!(parse_value("10s"), Value::String("10s".into()));
        assert_eq!(parse_value("\"true\""), Value::String("true".into()));
        assert_eq!(parse_value("[\"a\", \"b\"]"), tree("v = ['a', 'b']")["v"]);
    }

    #[test]
    fn sets_nested_keys_and_list_entries() {
        let mut value = tree("[time]\nmode = 'event'\n[[j]]\nx = 1\n");
        let env = vars(&[
            ("JOURNEYD__TIME__ALLOWED_LATENESS", "10s"),
            ("JOURNEYD__J__0__X", "2"),
            ("JOURNEYD_IGNORED", "1"),
            ("OTHER__TIME__MODE", "x"),
        ]);
        let mut problems = Vec::new();
        let applied = apply(&mut value, env, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(applied.len(), 2);
        let expected = "[time]\nmode = 'event'\nallowed_lateness = '10s'\n[[j]]\nx = 2\n";
        assert_eq!(value, tree(expected));
    }

    #[test]
    fn tokens_and_properties_are_taken_verbatim() {
        let mut value = tree("[kafka.properties]\n[http]\n");
        let env = vars(&[
            ("JOURNEYD__HTTP__AUTH_TOKEN", "0x1F"),
            ("JOURNEYD__KAFKA__PROPERTIES__LINGER.MS", "5"),
            ("JOURNEYD__KAFKA__PROPERTIES", "{ a = 1 }"),
            ("JOURNEYD__KAFKA__POLL_TIMEOUT", "1"),
        ]);
        let mut problems = Vec::new();
        apply(&mut value, env, &mut problems);
        assert!(problems.is_empty(), "{problems:?}");
        let expected = "[http]\nauth_token = '0x1F'\n[kafka]\npoll_timeout = 1\n\
                        [kafka.properties]\na = 1\n'linger.ms' = '5'\n";
        assert_eq!(value, tree(expected));
    }

    #[test]
    fn reports_what_cannot_be_applied() {
        let mut value = tree("[time]\nmode = 'event'\n[[j]]\nx = 1\n");
        let env = vars(&[
            ("JOURNEYD__TIME__MODE__X", "1"),
            ("JOURNEYD__J__5__X", "1"),
            ("JOURNEYD____X", "1"),
        ]);
        let mut problems = Vec::new();
        apply(&mut value, env, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("JOURNEYD__J__5__X: j[5] does not exist"));
        assert!(problems[1].starts_with("JOURNEYD__TIME__MODE__X: time.mode is a single value"));
        assert!(problems[2].starts_with("JOURNEYD____X: malformed"));
    }
}
