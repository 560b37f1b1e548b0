//! A decoded touchpoint, borrowing from the bytes it was decoded from.

use std::borrow::Cow;

use super::EventTime;

/// The channel a touchpoint came through. Unknown channel names decode as
/// [`Channel::Other`] rather than being rejected: a new channel in the source
/// system must not send valid events to the dead-letter topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Channel {
    Web,
    App,
    Email,
    Social,
    Search,
    Ads,
    Store,
    Phone,
    Chat,
    Support,
    Referral,
    Review,
    Other,
}

impl Channel {
    /// Every channel, in declaration order.
    pub const ALL: [Channel; 13] = [
        Channel::Web,
        Channel::App,
        Channel::Email,
        Channel::Social,
        Channel::Search,
        Channel::Ads,
        Channel::Store,
        Channel::Phone,
        Channel::Chat,
        Channel::Support,
        Channel::Referral,
        Channel::Review,
        Channel::Other,
    ];

    /// The channel's wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::App => "app",
            Channel::Email => "email",
            Channel::Social => "social",
            Channel::Search => "search",
            Channel::Ads => "ads",
            Channel::Store => "store",
            Channel::Phone => "phone",
            Channel::Chat => "chat",
            Channel::Support => "support",
            Channel::Referral => "referral",
            Channel::Review => "review",
            Channel::Other => "other",
        }
    }

    /// Parses a wire name; anything unknown is [`Channel::Other`].
    pub fn parse(name: &str) -> Channel {
        Channel::parse_known(name).unwrap_or(Channel::Other)
    }

    /// Parses a wire name, `None` if it is not one of the known channels
    /// (used by config validation, where a typo must be reported).
    pub fn parse_known(name: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// One customer touchpoint, validated: ids are non-empty and the time is
/// plausible. Strings borrow from the decoded buffer where the encoding allows.
#[derive(Clone, Debug, PartialEq)]
pub struct Touchpoint<'a> {
    /// Unique id of the event; the de-duplication key.
    pub event_id: Cow<'a, str>,
    /// The customer; also the Kafka key.
    pub customer_id: Cow<'a, str>,
    /// When it happened (event time).
    pub occurred_at: EventTime,
    /// Where it happened.
    pub channel: Channel,
    /// What happened (`purchase`, `product_view`, ...).
    pub action: Cow<'a, str>,
    /// Order value, rating or NPS score, depending on the action.
    pub value: Option<f64>,
    /// The session, when the source has one.
    pub session_id: Option<Cow<'a, str>>,
    /// The values of the few attributes selected at start-up
    /// (`crate::codec::AttributeSelection`); every other attribute is
    /// checked and dropped by the decoder.
    pub attributes: KeptAttributes<'a>,
}

/// How many attribute values a touchpoint keeps at most: the attributes
/// the configured features read (the consent purpose, the known user id,
/// a segment key), never the whole map.
pub const MAX_KEPT_ATTRIBUTES: usize = 4;

/// The selected attributes' values, by the position of their name in the
/// selection; `None` when the touchpoint does not carry the attribute.
/// Fixed size and borrowed from the input where the encoding allows, so a
/// touchpoint without them costs no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeptAttributes<'a>([Option<Cow<'a, str>>; MAX_KEPT_ATTRIBUTES]);

impl<'a> KeptAttributes<'a> {
    /// The value of the selected attribute at `slot`, if carried.
    pub fn get(&self, slot: usize) -> Option<&str> {
        self.0.get(slot).and_then(|v| v.as_deref())
    }

    /// Sets the value at `slot` (the last occurrence of a repeated key
    /// wins); a slot beyond [`MAX_KEPT_ATTRIBUTES`] is ignored.
    pub fn set(&mut self, slot: usize, value: Cow<'a, str>) {
        if let Some(v) = self.0.get_mut(slot) {
            *v = Some(value);
        }
    }

    /// Whether no selected attribute is carried.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// A copy that owns its strings.
    pub fn into_owned(self) -> KeptAttributes<'static> {
        KeptAttributes(self.0.map(|v| v.map(|s| Cow::Owned(s.into_owned()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), c);
        }
        assert_eq!(Channel::parse("carrier-pigeon"), Channel::Other);
        assert_eq!(Channel::parse_known("carrier-pigeon"), None);
    }
}
