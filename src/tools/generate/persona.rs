//! Personas and their scripts: who a customer is decides which sessions
//! they go through, how often, and how many days apart.
//!
//! The scripts are tuned to the default journey model and churn signals;
//! the comments on a script say which threshold it stays below or crosses.

use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::session::Session;

/// Who a customer is: decides the script of sessions they go through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Persona {
    /// Ads and page views, a product view or two, never buys.
    Browser,
    /// Researches (3+ product views within days), abandons carts, never buys.
    Considerer,
    /// Buys once, then fades out (lapses by inactivity).
    Buyer,
    /// Buys again within months; renews a subscription.
    RepeatBuyer,
    /// Repeat buyer who reviews well, scores 9-10 and refers friends.
    Advocate,
    /// Buys, then tickets, low NPS, failed payments, unsubscribes, cancels.
    Detractor,
    /// Cancels the subscription or closes the account.
    Lapser,
    /// Buys, goes silent for over 90 days, comes back.
    Returner,
}

/// Persona shares, in percent.
const PERSONA_SHARES: [(Persona, u32); 8] = [
    (Persona::Browser, 29),
    (Persona::Considerer, 22),
    (Persona::Buyer, 16),
    (Persona::RepeatBuyer, 12),
    (Persona::Advocate, 6),
    (Persona::Detractor, 6),
    (Persona::Lapser, 5),
    (Persona::Returner, 4),
];

/// One step of a script: `min..=max` sessions of a kind, each starting
/// `gap_hours` (a range) after the previous session's last action.
#[derive(Clone, Copy, Debug)]
pub(super) struct Step {
    /// The kind of session.
    pub(super) session: Session,
    /// Hours from the previous session's last action, `(min, max)`.
    pub(super) gap_hours: (u32, u32),
    /// Fewest sessions of this step; zero makes the step optional.
    pub(super) min: u8,
    /// Most sessions of this step.
    pub(super) max: u8,
}

/// A script step; short, so that the scripts below read as tables.
pub(super) const fn step(session: Session, gap_hours: (u32, u32), min: u8, max: u8) -> Step {
    Step {
        session,
        gap_hours,
        min,
        max,
    }
}

/// A day, in the hours `gap_hours` counts.
pub(super) const D: u32 = 24;
const DISCOVER: Step = step(Session::Discover, (0, 0), 1, 1);

/// Browse sessions at least 4 days apart keep browsers below 3 product
/// views in 7 days: they never reach consideration.
const BROWSER: &[Step] = &[
    DISCOVER,
    step(Session::Browse, (4 * D, 12 * D), 0, 2),
    step(Session::Email, (2 * D, 20 * D), 0, 1),
];
const CONSIDERER: &[Step] = &[
    DISCOVER,
    step(Session::Browse, (D, 4 * D), 0, 1),
    step(Session::Research, (D, 3 * D), 2, 2),
    step(Session::Cart, (1, 3 * D), 1, 2),
    step(Session::Email, (D, 4 * D), 0, 2),
    step(Session::Research, (10 * D, 30 * D), 0, 1),
    step(Session::Cart, (1, 2 * D), 0, 1),
];
const BUYER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 1, 2),
    step(Session::Buy, (2, 4 * D), 1, 1),
    step(Session::Email, (5 * D, 25 * D), 0, 2),
    step(Session::Browse, (7 * D, 40 * D), 0, 2),
];
const REPEAT_BUYER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 1, 1),
    step(Session::Buy, (2, 3 * D), 1, 1),
    step(Session::Email, (4 * D, 15 * D), 0, 1),
    step(Session::Buy, (15 * D, 70 * D), 1, 3),
    step(Session::Renewal, (25 * D, 35 * D), 0, 3),
    step(Session::Browse, (5 * D, 20 * D), 0, 2),
];
const ADVOCATE: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 4 * D), 1, 1),
    step(Session::Buy, (1, 3 * D), 1, 1),
    step(Session::Buy, (10 * D, 50 * D), 1, 2),
    step(Session::Advocacy, (3 * D, 20 * D), 1, 2),
    step(Session::Renewal, (25 * D, 35 * D), 0, 2),
    step(Session::Browse, (5 * D, 20 * D), 0, 2),
];
const DETRACTOR: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 1, 1),
    step(Session::Buy, (1, 3 * D), 1, 1),
    step(Session::Support, (D, 14 * D), 1, 3),
    step(Session::Survey, (D, 10 * D), 1, 1),
    step(Session::Billing, (5 * D, 30 * D), 0, 1),
    step(Session::Farewell, (D, 20 * D), 0, 1),
    step(Session::Cancel, (D, 15 * D), 0, 1),
];
const LAPSER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 5 * D), 0, 1),
    step(Session::Buy, (1, 5 * D), 1, 1),
    step(Session::Renewal, (25 * D, 35 * D), 0, 1),
    step(Session::Cancel, (3 * D, 40 * D), 1, 1),
    // Win-back campaigns.
    step(Session::Email, (10 * D, 45 * D), 0, 2),
];
/// The 91-105 day gap is longer than the default `lapse_after` (90 days).
const RETURNER: &[Step] = &[
    DISCOVER,
    step(Session::Research, (D, 4 * D), 1, 1),
    step(Session::Buy, (1, 3 * D), 1, 1),
    step(Session::Browse, (3 * D, 15 * D), 0, 1),
    step(Session::Browse, (91 * D, 105 * D), 1, 1),
    step(Session::Research, (D, 5 * D), 0, 1),
    step(Session::Buy, (1, 5 * D), 0, 1),
];

impl Persona {
    /// A persona drawn by [`PERSONA_SHARES`].
    pub(super) fn draw(rng: &mut Pcg64Mcg) -> Persona {
        let mut roll = rng.random_range(0..100);
        for (persona, share) in PERSONA_SHARES {
            if roll < share {
                return persona;
            }
            roll -= share;
        }
        Persona::Browser
    }

    /// The persona's sessions; the first step is always a single discovery.
    pub(super) fn script(self) -> &'static [Step] {
        match self {
            Persona::Browser => BROWSER,
            Persona::Considerer => CONSIDERER,
            Persona::Buyer => BUYER,
            Persona::RepeatBuyer => REPEAT_BUYER,
            Persona::Advocate => ADVOCATE,
            Persona::Detractor => DETRACTOR,
            Persona::Lapser => LAPSER,
            Persona::Returner => RETURNER,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_start_with_one_discovery_and_persona_shares_sum_to_100() {
        for (persona, _) in PERSONA_SHARES {
            let first = persona.script()[0];
            assert_eq!(
                (first.session, first.min, first.max),
                (Session::Discover, 1, 1)
            );
            assert!(persona.script().iter().all(|s| s.min <= s.max));
        }
        assert_eq!(PERSONA_SHARES.iter().map(|(_, s)| s).sum::<u32>(), 100);
    }
}
