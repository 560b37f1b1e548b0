//! Sessions: short, plausible sequences of actions, drawn fresh each time a
//! customer starts one, together with the channel they happen on.
//!
//! Every session first draws a web-or-app home channel, even the kinds that
//! then pick a channel of their own: the draw is part of the stream.

use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::action::Action as A;
use crate::model::Channel;

/// A kind of session: a short, plausible sequence of actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Session {
    /// First contact: an ad, social post or search result, then the site.
    Discover,
    /// A visit: login on the app, page views, maybe one product view.
    Browse,
    /// Two or three product views and a pricing/review/comparison/demo page.
    Research,
    /// A cart filled and abandoned, a third of the time at the checkout.
    Cart,
    /// A purchase online, or in a store.
    Buy,
    /// A marketing email opened, maybe clicked through.
    Email,
    /// One or two support tickets.
    Support,
    /// An NPS survey answered (detractors only).
    Survey,
    /// Review, NPS promoter score, referral.
    Advocacy,
    /// A subscription renewed, sometimes downgraded instead.
    Renewal,
    /// A failed payment.
    Billing,
    /// Unsubscribing from email.
    Farewell,
    /// Cancelling the subscription or closing the account.
    Cancel,
}

/// Up to six actions of one session.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plan {
    /// The actions, in order; only the first `len` count.
    pub(super) actions: [A; 6],
    /// How many actions the session has.
    pub(super) len: u8,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            actions: [A::PageView; 6],
            len: 0,
        }
    }
}

impl Plan {
    /// Appends `action`; ignored once the plan is full.
    fn push(&mut self, action: A) {
        if let Some(slot) = self.actions.get_mut(usize::from(self.len)) {
            *slot = action;
            self.len += 1;
        }
    }

    /// Appends `action` `n` times.
    fn push_n(&mut self, action: A, n: u8) {
        (0..n).for_each(|_| self.push(action));
    }
}

impl Session {
    /// Draws the session's actions and its home channel (actions with a
    /// channel of their own, like `ad_click`, override it).
    pub(super) fn plan(self, rng: &mut Pcg64Mcg) -> (Plan, Channel) {
        let mut p = Plan::default();
        // Drawn even when the session then picks a channel of its own.
        let home = web_or_app(rng);
        let channel = match self {
            Session::Discover => discover(&mut p, rng),
            Session::Browse => browse(&mut p, home, rng),
            Session::Research => research(&mut p, home, rng),
            Session::Cart => cart(&mut p, home, rng),
            Session::Buy => buy(&mut p, home, rng),
            Session::Email => email(&mut p, rng),
            Session::Support => support(&mut p, rng),
            Session::Survey => only(&mut p, home, A::NpsResponse),
            Session::Advocacy => advocacy(&mut p, home, rng),
            Session::Renewal => renewal(&mut p, home, rng),
            Session::Billing => billing(&mut p, home, rng),
            Session::Farewell => only(&mut p, home, A::Unsubscribe),
            Session::Cancel => cancel(&mut p, home, rng),
        };
        (p, channel)
    }
}

/// The home channel most sessions happen on.
fn web_or_app(rng: &mut Pcg64Mcg) -> Channel {
    if rng.random_bool(0.6) {
        Channel::Web
    } else {
        Channel::App
    }
}

/// A session of a single action, on the home channel.
fn only(p: &mut Plan, home: Channel, action: A) -> Channel {
    p.push(action);
    home
}

/// An ad, social post or search result; usually a landing on the website.
fn discover(p: &mut Plan, rng: &mut Pcg64Mcg) -> Channel {
    match rng.random_range(0..100) {
        0..30 => p.push(A::AdClick),
        30..40 => p.push(A::AdImpression),
        40..60 => p.push(A::SocialEngagement),
        _ => p.push(A::SearchClick),
    }
    if p.actions[0] == A::AdImpression {
        // Seen but not clicked: the visit comes another day.
        if rng.random_bool(0.4) {
            return Channel::Web;
        }
        p.push(A::AdClick);
    }
    p.push_n(A::PageView, rng.random_range(1..=2));
    p.push_n(A::ProductView, u8::from(rng.random_bool(0.5)));
    Channel::Web
}

/// Page views, maybe a product view; app visits often start with a login.
fn browse(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    p.push_n(
        A::Login,
        u8::from(home == Channel::App && rng.random_bool(0.6)),
    );
    p.push_n(A::PageView, rng.random_range(1..=2));
    p.push_n(A::ProductView, u8::from(rng.random_bool(0.5)));
    home
}

/// Product views and usually one page that weighs the decision.
fn research(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    p.push_n(A::ProductView, rng.random_range(2..=3));
    match rng.random_range(0..100) {
        0..25 => p.push(A::PricingView),
        25..45 => p.push(A::ReviewRead),
        45..65 => p.push(A::ComparisonView),
        65..75 => p.push(A::DemoRequest),
        _ => {}
    }
    home
}

/// A product added to the cart, and left there (the abandoned carts of
/// the `cart` journey moment), a third of the time after starting the
/// checkout (an abandoned `checkout`).
fn cart(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    p.push_n(A::PricingView, u8::from(rng.random_bool(0.3)));
    p.push(A::ProductView);
    p.push(A::AddToCart);
    p.push_n(A::CheckoutStarted, u8::from(rng.random_bool(0.33)));
    home
}

/// A purchase: sometimes in a store, otherwise through the cart.
fn buy(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    if rng.random_bool(0.15) {
        p.push(A::Purchase);
        return Channel::Store;
    }
    p.push_n(A::ProductView, rng.random_range(0..=1));
    p.push(A::AddToCart);
    p.push(A::CheckoutStarted);
    p.push(A::Purchase);
    home
}

/// An email opened, and half the time clicked through to the website.
fn email(p: &mut Plan, rng: &mut Pcg64Mcg) -> Channel {
    p.push(A::EmailOpen);
    if rng.random_bool(0.5) {
        p.push(A::EmailClick);
        p.push_n(A::PageView, u8::from(rng.random_bool(0.7)));
    }
    Channel::Web
}

/// One or two tickets, through the help desk, chat or phone.
fn support(p: &mut Plan, rng: &mut Pcg64Mcg) -> Channel {
    let channel = match rng.random_range(0..100) {
        0..60 => Channel::Support,
        60..85 => Channel::Chat,
        _ => Channel::Phone,
    };
    p.push_n(A::SupportTicket, rng.random_range(1..=2));
    // The survey after the ticket, answered now and then.
    p.push_n(A::CsatResponse, u8::from(rng.random_bool(0.4)));
    p.push_n(A::CesResponse, u8::from(rng.random_bool(0.25)));
    channel
}

/// A non-empty subset of review, promoter score and referral.
fn advocacy(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    let mask = rng.random_range(1..8u8);
    p.push_n(A::ReviewPosted, mask & 1);
    p.push_n(A::NpsResponse, (mask >> 1) & 1);
    p.push_n(A::ReferralSent, (mask >> 2) & 1);
    home
}

/// A subscription renewed or, less often, downgraded.
fn renewal(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    let action = if rng.random_bool(0.12) {
        A::SubscriptionDowngraded
    } else {
        A::SubscriptionRenewed
    };
    only(p, home, action)
}

/// A failed payment, sometimes followed by a login to fix it.
fn billing(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    p.push(A::PaymentFailed);
    p.push_n(A::Login, u8::from(rng.random_bool(0.4)));
    home
}

/// The subscription cancelled or, less often, the account closed.
fn cancel(p: &mut Plan, home: Channel, rng: &mut Pcg64Mcg) -> Channel {
    p.push_n(A::Login, u8::from(rng.random_bool(0.5)));
    if rng.random_bool(0.7) {
        p.push(A::SubscriptionCancelled);
    } else {
        p.push(A::AccountClosed);
    }
    home
}

#[cfg(test)]
mod tests {
    use super::super::test_rng;
    use super::*;

    #[test]
    fn every_session_plans_at_least_one_action() {
        let mut rng = test_rng();
        let sessions = [
            Session::Discover,
            Session::Browse,
            Session::Research,
            Session::Cart,
            Session::Buy,
            Session::Email,
            Session::Support,
            Session::Survey,
            Session::Advocacy,
            Session::Renewal,
            Session::Billing,
            Session::Farewell,
            Session::Cancel,
        ];
        for session in sessions {
            for _ in 0..200 {
                assert!(session.plan(&mut rng).0.len > 0, "{session:?}");
            }
        }
    }
}
