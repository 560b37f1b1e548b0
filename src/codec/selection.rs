//! Which attributes a touchpoint keeps.
//!
//! `attributes` is a free-form map; the engine reads only a few of its
//! values, chosen once at start-up from the configuration: the consent
//! purpose (`consent.purpose_attribute`, when `consent.mode` is not `off`)
//! and `user_id` (carried for identity stitching). The decoders look every
//! attribute key up in this short list while they check the map, and keep
//! the value of a selected one in the touchpoint's
//! [`KeptAttributes`](crate::model::KeptAttributes), at the name's
//! position; everything else is checked (types, lengths) and dropped.
//!
//! The same rules hold in every decoder (JSON, the Avro fast path, Avro
//! schema resolution):
//!
//! - an attribute that is absent is `None`; an empty string is kept as the
//!   empty string;
//! - `attributes` maps strings to strings, so a selected attribute whose
//!   value is not a string is `invalid_field`, like any other attribute;
//! - a selected value is bounded like every attribute value, by
//!   `limits.max_attribute_value_length` (`field_too_long`);
//! - a key repeated in one map (possible in JSON and in Avro's blocks):
//!   the last value wins.
//!
//! Kept values borrow from the input where the encoding allows (JSON
//! without escapes, the Avro fast path), so a touchpoint costs no
//! allocation for them, and nothing at all when it carries none of them.

use compact_str::CompactString;

use crate::config::{Config, ConsentMode};
use crate::model::MAX_KEPT_ATTRIBUTES;

/// The attribute `user_id`, carried for identity stitching.
pub const USER_ID: &str = "user_id";

/// The attribute names whose values touchpoints keep, at most
/// [`MAX_KEPT_ATTRIBUTES`]; a name's position is its slot in
/// [`KeptAttributes`](crate::model::KeptAttributes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttributeSelection {
    /// The names, without repeats.
    names: Vec<CompactString>,
}

impl AttributeSelection {
    /// No attribute kept: what the decoders' plain `decode` functions use.
    pub const fn none() -> AttributeSelection {
        AttributeSelection { names: Vec::new() }
    }

    /// The given names, without repeats; names beyond
    /// [`MAX_KEPT_ATTRIBUTES`] are not kept.
    pub fn of<'n>(names: impl IntoIterator<Item = &'n str>) -> AttributeSelection {
        let mut selection = AttributeSelection::none();
        for name in names {
            let new = selection.slot(name).is_none();
            if new && selection.names.len() < MAX_KEPT_ATTRIBUTES {
                selection.names.push(name.into());
            }
        }
        selection
    }

    /// The attributes `config` reads: the consent purpose attribute when
    /// consent is on, and [`USER_ID`].
    pub fn from_config(config: &Config) -> AttributeSelection {
        let consent = &config.consent;
        let purpose = (consent.mode != ConsentMode::Off).then_some(&*consent.purpose_attribute);
        AttributeSelection::of(purpose.into_iter().chain([USER_ID]))
    }

    /// The slot of attribute `name`, if it is selected.
    #[inline]
    pub fn slot(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Whether no attribute is selected (the decoders skip the look-up).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The selected names, by slot.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(CompactString::as_str)
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn names_keep_their_positions_without_repeats_up_to_the_bound() {
        let s = AttributeSelection::of(["purpose", "user_id", "purpose", "a", "b", "c"]);
        assert_eq!(
            s.names().collect::<Vec<_>>(),
            ["purpose", "user_id", "a", "b"]
        );
        assert_eq!(s.slot("user_id"), Some(1));
        assert_eq!(s.slot("c"), None);
        assert!(AttributeSelection::none().is_empty());
    }

    #[test]
    fn the_configuration_selects_the_purpose_only_when_consent_is_on() {
        let mut config = Config::default();
        let names = |c: &Config| {
            let s = AttributeSelection::from_config(c);
            s.names().map(str::to_owned).collect::<Vec<_>>()
        };
        assert_eq!(names(&config), ["user_id"]);
        config.consent.mode = ConsentMode::OptIn;
        config.consent.purpose_attribute = "consent_purpose".into();
        assert_eq!(names(&config), ["consent_purpose", "user_id"]);
    }
}
