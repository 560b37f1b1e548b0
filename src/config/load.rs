//! Reading `journeyd.toml`: parse the file, lay it over the defaults, apply
//! environment overrides, deserialize and validate, reporting every problem
//! at once with its key.
//!
//! This module turns text into a [`Config`]; it reads the one file it is
//! given and the process environment, and nothing else. It does not log:
//! problems go back to the caller in a [`ConfigError`].

mod deser;
mod env;
mod path;

use std::fmt;
use std::path::{Path, PathBuf};

use toml::Value;

use super::Config;
use super::secret::is_secret_property;

pub(super) use path::toml_key;

/// Environment variables named `JOURNEYD__<SECTION>__<KEY>` override file
/// values (e.g. `JOURNEYD__TIME__ALLOWED_LATENESS=10s`); see [`Config::load`].
pub const ENV_PREFIX: &str = "JOURNEYD";

/// Every problem found in a configuration, each naming its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the configuration came from, if any.
    pub file: Option<PathBuf>,
    /// One line per problem, `key: what is wrong`.
    pub problems: Vec<String>,
}

impl ConfigError {
    /// An error made of these problems, not tied to a file.
    pub fn new(problems: Vec<String>) -> ConfigError {
        ConfigError {
            file: None,
            problems,
        }
    }

    /// The same problems, found in `file`.
    pub fn in_file(self, file: &Path) -> ConfigError {
        ConfigError {
            file: Some(file.to_owned()),
            ..self
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid configuration")?;
        if let Some(file) = &self.file {
            write!(f, " in {}", file.display())?;
        }
        let n = self.problems.len();
        write!(f, " ({n} problem{})", if n == 1 { "" } else { "s" })?;
        for problem in &self.problems {
            // Multi-line problems (TOML syntax errors) stay indented under their bullet.
            write!(f, "\n  - {}", problem.trim_end().replace('\n', "\n    "))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Loads the configuration: the TOML file at `path` (the defaults when
    /// `None`), then overrides from the process environment, then
    /// [`Config::validate`].
    ///
    /// An override is a variable `JOURNEYD__<KEY>__<KEY>...`: the keys after
    /// the prefix, separated by `__` and lower-cased, name the setting, so
    /// `JOURNEYD__TIME__ALLOWED_LATENESS=10s` sets `time.allowed_lateness`.
    /// A number indexes a list (`JOURNEYD__JOURNEY__SIGNALS__2__COUNT=4`).
    /// The value is read as TOML when it is valid TOML (`10`, `0.7`, `true`,
    /// `["a", "b"]`, `"quoted"`), otherwise as a string (`10s`). Variables
    /// not starting with `JOURNEYD__` are ignored; a `JOURNEYD__` variable
    /// naming no setting is an error.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            None => String::new(),
            Some(file) => std::fs::read_to_string(file).map_err(|e| {
                ConfigError::new(vec![format!("cannot read the file: {e}")]).in_file(file)
            })?,
        };
        let env = std::env::vars_os().filter_map(|(name, value)| {
            Some((
                name.into_string().ok()?,
                value.to_string_lossy().into_owned(),
            ))
        });
        Config::from_toml_str(&text, env).map_err(|e| match path {
            Some(file) => e.in_file(file),
            None => e,
        })
    }

    /// Builds a configuration from TOML text and environment variables
    /// (`(name, value)` pairs, as [`std::env::vars`] yields them); the
    /// core of [`Config::load`], without touching the process.
    ///
    /// Missing keys take their defaults; lists given in the text replace the
    /// default list as a whole. Every problem is reported: unknown keys
    /// (with list indices, e.g. `journey.signals[2].actoins`), values of the
    /// wrong type, and what [`Config::validate`] finds.
    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let file: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError::new(vec![syntax_problem(text, &e)]))?;
        let mut tree = defaults_tree();
        path::overlay(&mut tree, Value::Table(file));
        let mut problems = Vec::new();
        let overrides = env::apply(&mut tree, env, &mut problems);
        let outcome = deser::deserialize(tree, &overrides);
        problems.extend(outcome.problems);
        if let Some(config) = &outcome.config
            && let Err(invalid) = config.validate()
        {
            let annotated = invalid
                .problems
                .into_iter()
                .map(|p| env::annotate(&overrides, p));
            problems.extend(annotated);
        }
        match outcome.config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError::new(problems)),
        }
    }
}

/// A TOML syntax error as a problem. The error quotes the offending line;
/// when that line may hold a secret (a password property, the HTTP token)
/// only its number is given.
fn syntax_problem(text: &str, error: &toml::de::Error) -> String {
    let offset = error.span().map_or(0, |span| span.start);
    let before = text.get(..offset).unwrap_or(text);
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    let end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line = &text[start..end];
    if is_secret_property(line) || line.contains("auth_token") {
        let number = before.matches('\n').count() + 1;
        let message = error.message().trim_end();
        format!(
            "TOML syntax error at line {number}: {message} (the line is not shown: it may hold a secret)"
        )
    } else {
        format!("TOML syntax error: {error}")
    }
}

/// The default configuration as a value tree, for files and overrides to be
/// laid over (so that an override can reach into a default list). Should it
/// ever fail to serialize, serde's defaults still apply; only that reach is
/// lost (and `defaults_round_trip_through_the_tree` fails).
fn defaults_tree() -> Value {
    Value::try_from(Config::default()).unwrap_or_else(|_| Value::Table(toml::Table::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_the_tree() {
        let config: Config = defaults_tree().try_into().unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn a_syntax_error_hides_a_line_that_may_hold_a_secret() {
        let text = "[kafka.properties]\n\"sasl.password\" = \"hunter2\n";
        let error = Config::from_toml_str(text, []).unwrap_err();
        assert_eq!(error.problems.len(), 1);
        let problem = &error.problems[0];
        assert!(
            problem.starts_with("TOML syntax error at line 2: "),
            "{problem}"
        );
        assert!(!problem.contains("hunter2"), "{problem}");
    }

    #[test]
    fn display_lists_each_problem() {
        let error = ConfigError::new(vec!["a: bad".into(), "b: worse\nsecond line".into()])
            .in_file(Path::new("journeyd.toml"));
        assert_eq!(
            error.to_string(),
            "invalid configuration in journeyd.toml (2 problems)\n  - a: bad\n  - b: worse\n    second line"
        );
    }
}
