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
