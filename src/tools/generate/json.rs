//! The wire form of a record: valid events as one-line JSON objects
//! (docs/outputs.md#touchpoints-the-input), and the deliberate deviations [`super::fault`] turns
//! into invalid records.
//!
//! Written by hand rather than through serde: the field order, number
//! formatting and escaping are part of the stream's bytes and must not move.

use std::fmt::Display;
use std::io::Write;

use super::{GeneratedEvent, GeneratedRecord};

/// How [`GeneratedEvent::write_variant`] deviates from the valid form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Variant {
    /// The valid form.
    Clean,
    /// Without `event_id`.
    NoEventId,
    /// Without `customer_id`.
    NoCustomerId,
    /// With `"customer_id":""`.
    EmptyCustomerId,
    /// With this `occurred_at` instead of the event's.
    OccurredAt(i64),
    /// With `"value":"twelve"`.
    ValueAsText,
    /// With the channel as its number rather than its name.
    ChannelAsNumber,
}

impl GeneratedRecord {
    /// Appends the record's message bytes (JSON or raw invalid bytes), with
    /// no trailing newline.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        match self {
            GeneratedRecord::Valid(event) => event.write_json(out),
            GeneratedRecord::Invalid { bytes, .. } => out.extend_from_slice(bytes),
        }
    }
}

impl GeneratedEvent {
    /// Appends the event as one JSON object (docs/outputs.md#touchpoints-the-input: `occurred_at`
    /// in epoch milliseconds; `value`, `session_id` and `attributes` only
    /// when present), with no trailing newline.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        self.write_variant(out, Variant::Clean);
    }

    /// Appends the event as JSON, deviating from the valid form as
    /// `variant` says.
    pub(super) fn write_variant(&self, out: &mut Vec<u8>, variant: Variant) {
        out.push(b'{');
        self.write_ids(out, variant);
        push_field(out, "occurred_at");
        match variant {
            Variant::OccurredAt(ms) => push_display(out, ms),
            _ => push_display(out, self.occurred_at.millis()),
        }
        out.extend_from_slice(b",\"channel\":");
        match variant {
            Variant::ChannelAsNumber => push_display(out, self.channel as u8),
            _ => push_str(out, self.channel.as_str()),
        }
        out.extend_from_slice(b",\"action\":");
        push_str(out, self.action);
        self.write_value(out, variant);
        if let Some(session_id) = &self.session_id {
            out.extend_from_slice(b",\"session_id\":");
            push_str(out, session_id);
        }
        self.write_attributes(out);
        out.push(b'}');
    }

    /// `"event_id":...,"customer_id":...,`, unless `variant` leaves one out.
    fn write_ids(&self, out: &mut Vec<u8>, variant: Variant) {
        if variant != Variant::NoEventId {
            push_field(out, "event_id");
            push_str(out, &self.event_id);
            out.push(b',');
        }
        if variant != Variant::NoCustomerId {
            push_field(out, "customer_id");
            let empty = variant == Variant::EmptyCustomerId;
            push_str(out, if empty { "" } else { &self.customer_id });
            out.push(b',');
        }
    }

    /// `,"value":...` when there is a finite value (or `variant` says text).
    fn write_value(&self, out: &mut Vec<u8>, variant: Variant) {
        match (variant, self.value) {
            (Variant::ValueAsText, _) => out.extend_from_slice(b",\"value\":\"twelve\""),
            (_, Some(value)) if value.is_finite() => {
                out.extend_from_slice(b",\"value\":");
                push_display(out, value);
            }
            _ => {}
        }
    }

    /// `,"attributes":{...}` when there are any.
    fn write_attributes(&self, out: &mut Vec<u8>) {
        if self.attributes.is_empty() {
            return;
        }
        out.extend_from_slice(b",\"attributes\":{");
        for (i, (key, value)) in self.attributes.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, key);
            out.push(b':');
            push_str(out, value);
        }
        out.push(b'}');
    }
}

/// `"name":`
fn push_field(out: &mut Vec<u8>, name: &str) {
    push_str(out, name);
    out.push(b':');
}

/// A number, formatted by [`Display`].
fn push_display(out: &mut Vec<u8>, value: impl Display) {
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{value}");
}

/// A JSON string literal: quotes, backslashes and control characters escaped.
fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    // The common case, no escapes, in one branch-free pass.
    if bytes.iter().fold(false, |any, &b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    }) {
        push_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// `bytes` with quotes, backslashes and control characters escaped.
fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..0x20 => &[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ],
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use super::super::DEFAULT_START;
    use super::*;
    use crate::model::Channel;

    #[test]
    fn json_strings_are_escaped() {
        let nasty = "a\"b\\c\nd\te\u{1}é";
        let mut out = Vec::new();
        push_str(&mut out, nasty);
        let back: String = serde_json::from_slice(&out).expect("valid JSON string");
        assert_eq!(back, nasty);
        assert!(!out.contains(&b'\n'));
    }

    #[test]
    fn optional_fields_appear_only_when_present() {
        let mut event = GeneratedEvent {
            event_id: "e-7-1".into(),
            customer_id: "c-0000000007".into(),
            occurred_at: DEFAULT_START,
            channel: Channel::Store,
            action: "purchase",
            value: Some(12.5),
            session_id: None,
            attributes: &[],
        };
        let mut out = Vec::new();
        event.write_json(&mut out);
        assert_eq!(
            String::from_utf8(out).expect("UTF-8"),
            r#"{"event_id":"e-7-1","customer_id":"c-0000000007","occurred_at":1767225600000,"channel":"store","action":"purchase","value":12.5}"#
        );
        event.value = Some(f64::NAN);
        event.session_id = Some("s-7-1".into());
        event.attributes = &[("items", "1")];
        let mut out = Vec::new();
        event.write_json(&mut out);
        assert!(
            out.ends_with(
                br#""action":"purchase","session_id":"s-7-1","attributes":{"items":"1"}}"#
            )
        );
    }
}
