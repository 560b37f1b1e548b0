//! The fields of a touchpoint as a decoder found them, before the checks
//! every encoding shares: ids present and non-empty, time and action
//! present, no field longer than its limit, value finite.
//!
//! Decoders fill [`Parts`] and call [`Parts::finish`], so that the same
//! input problem gets the same reason whatever the encoding, and each
//! check runs once per touchpoint.

use std::borrow::Cow;

use super::invalid::{Invalid, InvalidReason};
use super::limits::{AttributeSizes, FieldLimits};
use crate::model::{Channel, EventTime, KeptAttributes, Touchpoint};

/// A touchpoint's fields, any of which may be absent.
#[derive(Debug, Default)]
pub(crate) struct Parts<'a> {
    pub event_id: Option<Cow<'a, str>>,
    pub customer_id: Option<Cow<'a, str>>,
    pub occurred_at: Option<i64>,
    /// As written; mapped to a [`Channel`] once its length is checked.
    pub channel: Option<Cow<'a, str>>,
    pub action: Option<Cow<'a, str>>,
    pub value: Option<f64>,
    pub session_id: Option<Cow<'a, str>>,
    /// The sizes of `attributes`, which the touchpoint does not keep.
    pub attributes: AttributeSizes<'a>,
    /// The values of the selected attributes ([`super::AttributeSelection`]).
    pub kept: KeptAttributes<'a>,
}

impl<'a> Parts<'a> {
    /// The validated touchpoint, or the first problem found.
    pub fn finish(self, limits: &FieldLimits) -> Result<Touchpoint<'a>, Invalid> {
        let event_id = require_id(self.event_id, InvalidReason::MissingEventId)?;
        let customer_id = require_id(self.customer_id, InvalidReason::MissingCustomerId)?;
        let occurred_at = self.occurred_at.ok_or_else(|| absent("occurred_at"))?;
        let action = self.action.ok_or_else(|| absent("action"))?;
        if action.is_empty() {
            return Err(Invalid::new(InvalidReason::InvalidField, "action empty"));
        }
        FieldLimits::check("customer_id", &customer_id, limits.id)?;
        FieldLimits::check("event_id", &event_id, limits.id)?;
        FieldLimits::check("action", &action, limits.action)?;
        let channel = match &self.channel {
            Some(name) => {
                FieldLimits::check("channel", name, limits.channel)?;
                Channel::parse(name)
            }
            None => Channel::Other,
        };
        limits.check_attributes(&self.attributes)?;
        if let Some(v) = self.value.filter(|v| !v.is_finite()) {
            return Err(Invalid::new(
                InvalidReason::InvalidField,
                format!("value is not finite: {v}"),
            ));
        }
        Ok(Touchpoint {
            event_id,
            customer_id,
            occurred_at: EventTime(occurred_at),
            channel,
            action,
            value: self.value,
            session_id: self.session_id,
            attributes: self.kept,
        })
    }
}

fn absent(field: &str) -> Invalid {
    Invalid::new(InvalidReason::InvalidField, format!("{field} absent"))
}

/// Rejects an absent or empty id with the given reason.
fn require_id(id: Option<Cow<'_, str>>, reason: InvalidReason) -> Result<Cow<'_, str>, Invalid> {
    match id {
        Some(id) if !id.is_empty() => Ok(id),
        Some(_) => Err(Invalid::new(reason, "empty")),
        None => Err(Invalid::new(reason, "absent")),
    }
}

/// A copy of `tp` that owns its strings.
pub fn into_owned(tp: Touchpoint<'_>) -> Touchpoint<'static> {
    fn own(s: Cow<'_, str>) -> Cow<'static, str> {
        Cow::Owned(s.into_owned())
    }
    Touchpoint {
        event_id: own(tp.event_id),
        customer_id: own(tp.customer_id),
        occurred_at: tp.occurred_at,
        channel: tp.channel,
        action: own(tp.action),
        value: tp.value,
        session_id: tp.session_id.map(own),
        attributes: tp.attributes.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Parts<'static> {
        Parts {
            event_id: Some("e".into()),
            customer_id: Some("c".into()),
            occurred_at: Some(1),
            channel: Some("web".into()),
            action: Some("login".into()),
            value: Some(1.0),
            session_id: None,
            attributes: AttributeSizes::default(),
            kept: KeptAttributes::default(),
        }
    }

    fn finish(p: Parts<'_>) -> Result<Touchpoint<'_>, Invalid> {
        p.finish(&FieldLimits::default())
    }

    fn reason(p: Parts<'_>) -> InvalidReason {
        finish(p).unwrap_err().reason
    }

    #[test]
    fn complete_parts_finish() {
        let tp = finish(full()).unwrap();
        assert_eq!((tp.channel, tp.occurred_at), (Channel::Web, EventTime(1)));
        let tp = finish(Parts {
            channel: None,
            ..full()
        })
        .unwrap();
        assert_eq!(tp.channel, Channel::Other);
        let tp = finish(Parts {
            channel: Some("carrier-pigeon".into()),
            ..full()
        })
        .unwrap();
        assert_eq!(tp.channel, Channel::Other);
    }

    #[test]
    fn empty_and_absent_ids_are_missing() {
        use InvalidReason::{MissingCustomerId, MissingEventId};
        assert_eq!(
            reason(Parts {
                event_id: None,
                ..full()
            }),
            MissingEventId
        );
        assert_eq!(
            reason(Parts {
                event_id: Some("".into()),
                ..full()
            }),
            MissingEventId
        );
        assert_eq!(
            reason(Parts {
                customer_id: None,
                ..full()
            }),
            MissingCustomerId
        );
        assert_eq!(
            reason(Parts {
                customer_id: Some("".into()),
                ..full()
            }),
            MissingCustomerId
        );
    }

    #[test]
    fn absent_time_or_action_and_non_finite_value_are_invalid_fields() {
        let field = InvalidReason::InvalidField;
        assert_eq!(
            reason(Parts {
                occurred_at: None,
                ..full()
            }),
            field
        );
        assert_eq!(
            reason(Parts {
                action: None,
                ..full()
            }),
            field
        );
        assert_eq!(
            reason(Parts {
                action: Some("".into()),
                ..full()
            }),
            field
        );
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                reason(Parts {
                    value: Some(v),
                    ..full()
                }),
                field
            );
        }
    }

    #[test]
    fn into_owned_keeps_every_field() {
        let mut kept = KeptAttributes::default();
        kept.set(1, "v".into());
        let tp = finish(Parts {
            session_id: Some("s".into()),
            kept,
            ..full()
        })
        .unwrap();
        assert_eq!(tp.attributes.get(1), Some("v"));
        assert_eq!(into_owned(tp.clone()), tp);
    }

    #[test]
    fn every_bounded_field_is_checked_against_its_limit() {
        let limits = FieldLimits {
            id: 3,
            action: 5,
            channel: 4,
            attribute_key: 2,
            attribute_value: 2,
        };
        let at_the_limits = Parts {
            event_id: Some("eee".into()),
            customer_id: Some("ccc".into()),
            action: Some("login".into()),
            channel: Some("chat".into()),
            ..full()
        };
        let mut attributes = AttributeSizes::default();
        attributes.add(2, Some("ab".into()), 2);
        let at_the_limits = Parts {
            attributes,
            ..at_the_limits
        };
        assert!(at_the_limits.finish(&limits).is_ok());

        let mut attributes = AttributeSizes::default();
        attributes.add(1, Some("k".into()), 3);
        let cases = [
            (
                Parts {
                    customer_id: Some("cccc".into()),
                    ..full()
                },
                "customer_id is 4 bytes long, limit 3",
            ),
            (
                Parts {
                    event_id: Some("eeee".into()),
                    ..full()
                },
                "event_id is 4 bytes long, limit 3",
            ),
            (
                Parts {
                    action: Some("logout".into()),
                    ..full()
                },
                "action is 6 bytes long, limit 5",
            ),
            (
                Parts {
                    channel: Some("email".into()),
                    ..full()
                },
                "channel is 5 bytes long, limit 4",
            ),
            (
                Parts {
                    attributes,
                    ..full()
                },
                "attributes[\"k\"] is 3 bytes long, limit 2",
            ),
        ];
        for (parts, detail) in cases {
            let err = parts.finish(&limits).unwrap_err();
            assert_eq!(err.reason, InvalidReason::FieldTooLong, "{detail}");
            assert_eq!(err.detail, detail);
        }
    }

    #[test]
    fn a_missing_id_is_reported_before_a_long_field() {
        let limits = FieldLimits {
            action: 1,
            ..FieldLimits::default()
        };
        let parts = Parts {
            customer_id: None,
            ..full()
        };
        assert_eq!(
            parts.finish(&limits).unwrap_err().reason,
            InvalidReason::MissingCustomerId
        );
    }
}
