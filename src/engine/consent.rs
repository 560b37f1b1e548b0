//! Consent for one purpose (`[consent]`, docs/personal-data.md#consent):
//! which touchpoints a customer's consent lets through, and what a consent
//! touchpoint does.
//!
//! A touchpoint is classified once, when it is ingested: a consent signal
//! (the configured grant or withdrawal action, with the configured purpose
//! in its kept purpose attribute) or an ordinary touchpoint. In `off` mode
//! nothing is classified and every touchpoint is ordinary: the hot path
//! then does one comparison more and allocates nothing.
//!
//! What a touchpoint does is decided when it is processed, in event-time
//! order like every touchpoint (out of the reorder buffer, or at once when
//! late), against the customer's consent as it stands then:
//!
//! | touchpoint | decision |
//! |---|---|
//! | older than the customer's latest consent change | ignored: the consent at its time is not known (a consent signal: superseded) |
//! | the same grant or withdrawal as the latest change, at its time | ignored: a retry |
//! | grant | consent granted from its time on |
//! | withdrawal | the customer is erased but for their consent, withdrawn from its time on |
//! | ordinary, `opt_in` | processed if consent is granted, else ignored |
//! | ordinary, `opt_out` | processed unless consent is withdrawn, else ignored |
//!
//! An ignored touchpoint leaves nothing: no journey change, no funnel
//! count, no de-duplication entry; it is counted in
//! `journeyd_touchpoints_without_consent_total`. A consent signal for
//! another purpose is an ordinary touchpoint. Touchpoints still waiting in
//! the reorder buffer when a withdrawal is processed are younger than it
//! (or as old, and after it in the buffer's order): each is judged when its
//! turn comes, so they are ignored unless a later grant came before them.

use crate::codec::AttributeSelection;
use crate::config::{Config, ConsentMode};
use crate::model::{EventTime, Touchpoint};

use compact_str::CompactString;

/// A customer's consent for the purpose.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub enum ConsentState {
    /// Never granted nor withdrawn (as far as journeyd knows).
    #[default]
    Unknown = 0,
    /// Granted by the latest consent touchpoint.
    Granted = 1,
    /// Withdrawn by the latest consent touchpoint.
    Withdrawn = 2,
}

impl ConsentState {
    /// The state's name, as the customer view shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConsentState::Unknown => "unknown",
            ConsentState::Granted => "granted",
            ConsentState::Withdrawn => "withdrawn",
        }
    }

    /// The state stored as `byte` in a changelog value, if any.
    pub const fn from_byte(byte: u8) -> Option<ConsentState> {
        match byte {
            0 => Some(ConsentState::Unknown),
            1 => Some(ConsentState::Granted),
            2 => Some(ConsentState::Withdrawn),
            _ => None,
        }
    }
}

/// What a touchpoint is, for consent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signal {
    /// An ordinary touchpoint (every touchpoint in `off` mode).
    #[default]
    None,
    /// Grants consent for the purpose.
    Grant,
    /// Withdraws consent for the purpose.
    Withdraw,
}

/// What to do with a touchpoint now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Apply it to the journey.
    Process,
    /// Neither keep nor derive anything from it; count it.
    Ignore,
    /// Record the grant.
    Grant,
    /// Erase the customer but for their consent, now withdrawn.
    Withdraw,
}

/// The compiled `[consent]` section.
#[derive(Clone, Debug)]
pub struct Consent {
    mode: ConsentMode,
    purpose: CompactString,
    granted: CompactString,
    withdrawn: CompactString,
    /// Where touchpoints keep the purpose attribute; `None` in `off` mode.
    slot: Option<usize>,
}

impl Consent {
    /// Consent as `config` sets it; the purpose attribute is found where
    /// the decoders keep it ([`AttributeSelection::from_config`]).
    pub fn new(config: &Config) -> Consent {
        let c = &config.consent;
        let slot = match c.mode {
            ConsentMode::Off => None,
            _ => AttributeSelection::from_config(config).slot(&c.purpose_attribute),
        };
        Consent {
            mode: c.mode,
            purpose: c.purpose.clone(),
            granted: c.granted_action.clone(),
            withdrawn: c.withdrawn_action.clone(),
            slot,
        }
    }

    /// The configured mode.
    pub fn mode(&self) -> ConsentMode {
        self.mode
    }

    /// What `tp` is, for consent: a grant or withdrawal for the purpose,
    /// or an ordinary touchpoint.
    #[inline]
    pub fn classify(&self, tp: &Touchpoint<'_>) -> Signal {
        let Some(slot) = self.slot else {
            return Signal::None;
        };
        let signal = if tp.action == self.granted.as_str() {
            Signal::Grant
        } else if tp.action == self.withdrawn.as_str() {
            Signal::Withdraw
        } else {
            return Signal::None;
        };
        match tp.attributes.get(slot) == Some(self.purpose.as_str()) {
            true => signal,
            false => Signal::None,
        }
    }

    /// What a touchpoint of `signal` at `at` does to a customer whose
    /// consent is `state` since `since` (see the module docs).
    pub fn decide(
        &self,
        signal: Signal,
        at: EventTime,
        state: ConsentState,
        since: EventTime,
    ) -> Decision {
        if self.mode == ConsentMode::Off {
            return Decision::Process;
        }
        if at < since {
            return Decision::Ignore;
        }
        match (signal, state, self.mode) {
            // The same change at the same time: a producer's retry (the
            // de-duplication memory does not see consent touchpoints).
            (Signal::Grant, ConsentState::Granted, _)
            | (Signal::Withdraw, ConsentState::Withdrawn, _)
                if at == since =>
            {
                Decision::Ignore
            }
            (Signal::Grant, _, _) => Decision::Grant,
            (Signal::Withdraw, _, _) => Decision::Withdraw,
            (Signal::None, ConsentState::Granted, _) => Decision::Process,
            (Signal::None, ConsentState::Unknown, ConsentMode::OptOut) => Decision::Process,
            (Signal::None, _, _) => Decision::Ignore,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Channel;

    fn consent(mode: ConsentMode) -> Consent {
        let mut config = Config::default();
        config.consent.mode = mode;
        Consent::new(&config)
    }

    fn tp<'a>(action: &'a str, purpose: Option<&'a str>, slot: usize) -> Touchpoint<'a> {
        let mut tp = Touchpoint {
            event_id: "e".into(),
            customer_id: "c".into(),
            occurred_at: EventTime(1),
            channel: Channel::Web,
            action: action.into(),
            value: None,
            session_id: None,
            attributes: Default::default(),
        };
        if let Some(p) = purpose {
            tp.attributes.set(slot, p.into());
        }
        tp
    }

    #[test]
    fn only_the_configured_actions_for_the_purpose_are_signals() {
        let c = consent(ConsentMode::OptIn);
        let slot = c.slot.unwrap();
        let signal = |action, purpose| c.classify(&tp(action, purpose, slot));
        assert_eq!(signal("consent_granted", Some("analytics")), Signal::Grant);
        assert_eq!(
            signal("consent_withdrawn", Some("analytics")),
            Signal::Withdraw
        );
        assert_eq!(signal("consent_granted", Some("marketing")), Signal::None);
        assert_eq!(signal("consent_granted", None), Signal::None);
        assert_eq!(signal("page_view", Some("analytics")), Signal::None);
        let off = consent(ConsentMode::Off);
        assert_eq!(
            off.classify(&tp("consent_granted", Some("analytics"), slot)),
            Signal::None
        );
    }

    #[test]
    fn decisions_follow_the_table() {
        use ConsentState::{Granted, Unknown, Withdrawn};
        use Decision::{Grant, Ignore, Process, Withdraw};
        let (t, later) = (EventTime(10), EventTime(20));
        let opt_in = consent(ConsentMode::OptIn);
        let opt_out = consent(ConsentMode::OptOut);
        let off = consent(ConsentMode::Off);
        for (c, state, want) in [
            (&opt_in, Unknown, Ignore),
            (&opt_in, Granted, Process),
            (&opt_in, Withdrawn, Ignore),
            (&opt_out, Unknown, Process),
            (&opt_out, Granted, Process),
            (&opt_out, Withdrawn, Ignore),
            (&off, Withdrawn, Process),
        ] {
            assert_eq!(c.decide(Signal::None, later, state, t), want, "{state:?}");
        }
        assert_eq!(opt_in.decide(Signal::Grant, later, Withdrawn, t), Grant);
        assert_eq!(opt_out.decide(Signal::Withdraw, t, Granted, t), Withdraw);
        // A retry of the latest change changes nothing (and erases nothing
        // twice); a withdrawal later than a withdrawal erases again.
        assert_eq!(opt_out.decide(Signal::Withdraw, t, Withdrawn, t), Ignore);
        assert_eq!(opt_in.decide(Signal::Grant, t, Granted, t), Ignore);
        assert_eq!(
            opt_out.decide(Signal::Withdraw, later, Withdrawn, t),
            Withdraw
        );
        // Older than the latest change: not known, not applied.
        assert_eq!(opt_in.decide(Signal::Grant, t, Withdrawn, later), Ignore);
        assert_eq!(opt_out.decide(Signal::None, t, Granted, later), Ignore);
    }
}
