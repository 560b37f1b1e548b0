//! Every action the generator emits, with its wire name, the channel it
//! always comes through, its value and its attributes.
//!
//! Values are computed from integers (cents, points) so the output is the
//! same on every platform.

use rand::RngExt;
use rand_pcg::Pcg64Mcg;

use super::persona::Persona;
use crate::model::Channel;

/// Declares [`Action`], its wire names and the list of all actions at once.
macro_rules! actions {
    ($($variant:ident => $name:literal,)*) => {
        /// Every action the generator emits.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(super) enum Action {
            $($variant,)*
        }

        impl Action {
            pub(super) const ALL: [Action; [$($name),*].len()] = [$(Action::$variant),*];

            /// The wire name, as in `"action":"ad_click"`.
            pub(super) fn name(self) -> &'static str {
                match self {
                    $(Action::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    AdImpression => "ad_impression",
    AdClick => "ad_click",
    SocialEngagement => "social_engagement",
    SearchClick => "search_click",
    EmailOpen => "email_open",
    EmailClick => "email_click",
    PageView => "page_view",
    Login => "login",
    ProductView => "product_view",
    PricingView => "pricing_view",
    ReviewRead => "review_read",
    ComparisonView => "comparison_view",
    DemoRequest => "demo_request",
    AddToCart => "add_to_cart",
    CheckoutStarted => "checkout_started",
    Purchase => "purchase",
    SubscriptionRenewed => "subscription_renewed",
    SubscriptionDowngraded => "subscription_downgraded",
    ReviewPosted => "review_posted",
    NpsResponse => "nps_response",
    ReferralSent => "referral_sent",
    SupportTicket => "support_ticket",
    CsatResponse => "csat_response",
    CesResponse => "ces_response",
    PaymentFailed => "payment_failed",
    Unsubscribe => "unsubscribe",
    SubscriptionCancelled => "subscription_cancelled",
    AccountClosed => "account_closed",
}

/// A set of attributes, as key-value pairs.
type Attributes = &'static [(&'static str, &'static str)];

const AD_ATTRIBUTES: &[Attributes] = &[
    &[("campaign", "spring-sale"), ("utm_source", "google")],
    &[("campaign", "retargeting"), ("utm_source", "meta")],
    &[("campaign", "brand"), ("utm_source", "bing")],
];
/// Search queries include characters that JSON must escape.
const SEARCH_ATTRIBUTES: &[Attributes] = &[
    &[("query", "running shoes")],
    &[("query", "\"waterproof\" jacket")],
    &[("query", "café table")],
    &[("query", "gift ideas\tunder 50")],
    &[("query", "usb-c \\ hdmi adapter")],
];
const EMAIL_ATTRIBUTES: &[Attributes] = &[
    &[("campaign", "weekly-digest")],
    &[("campaign", "cart-reminder")],
    &[("campaign", "win-back")],
];
const PAGE_ATTRIBUTES: &[Attributes] = &[
    &[("path", "/")],
    &[("path", "/pricing")],
    &[("path", "/blog/how-to-choose")],
    &[("path", "/help")],
];
const PRODUCT_ATTRIBUTES: &[Attributes] = &[
    &[("sku", "sku-1042"), ("category", "shoes")],
    &[("sku", "sku-2210"), ("category", "outdoor")],
    &[("sku", "sku-3307"), ("category", "home")],
    &[("sku", "sku-4481"), ("category", "gifts")],
];
const ORDER_ATTRIBUTES: &[Attributes] = &[
    &[("currency", "EUR"), ("items", "1")],
    &[("currency", "EUR"), ("items", "2")],
    &[("currency", "EUR"), ("items", "3"), ("coupon", "WELCOME10")],
];
const TICKET_ATTRIBUTES: &[Attributes] = &[
    &[("topic", "delivery")],
    &[("topic", "billing")],
    &[("topic", "defect")],
    &[("topic", "returns")],
];
const LOGIN_ATTRIBUTES: &[Attributes] = &[&[("device", "ios")], &[("device", "android")]];

impl Action {
    /// The channel this action always comes through, if any.
    pub(super) fn fixed_channel(self) -> Option<Channel> {
        match self {
            Action::AdImpression | Action::AdClick => Some(Channel::Ads),
            Action::SocialEngagement => Some(Channel::Social),
            Action::SearchClick => Some(Channel::Search),
            Action::EmailOpen
            | Action::EmailClick
            | Action::Unsubscribe
            | Action::NpsResponse
            | Action::CsatResponse
            | Action::CesResponse => Some(Channel::Email),
            Action::ReviewPosted => Some(Channel::Review),
            Action::ReferralSent => Some(Channel::Referral),
            _ => None,
        }
    }

    /// Whether the next action follows within seconds (a landing page load).
    pub(super) fn is_landing(self) -> bool {
        matches!(
            self,
            Action::AdImpression
                | Action::AdClick
                | Action::SocialEngagement
                | Action::SearchClick
                | Action::EmailClick
        )
    }

    /// Order value, subscription price, rating, or NPS, CSAT or CES score. Computed from
    /// integers (cents, points) so the output is the same on every platform.
    pub(super) fn value(self, persona: Persona, rng: &mut Pcg64Mcg) -> Option<f64> {
        let points =
            |lo: u8, hi: u8, rng: &mut Pcg64Mcg| Some(f64::from(rng.random_range(lo..=hi)));
        match (self, persona) {
            (Action::Purchase, _) => {
                // 9.99 to 399.99, most orders small.
                let u = rng.random_range(0..1_000u32);
                Some(f64::from(999 + u * u * 39 / 1_000) / 100.0)
            }
            (Action::SubscriptionRenewed, _) => Some([9.99, 19.99, 49.99][rng.random_range(0..3)]),
            (Action::SubscriptionDowngraded, _) => Some([4.99, 9.99][rng.random_range(0..2)]),
            (Action::ReviewPosted, Persona::Advocate) => points(4, 5, rng),
            (Action::ReviewPosted, Persona::Detractor) => points(1, 2, rng),
            (Action::ReviewPosted, _) => points(3, 5, rng),
            (Action::NpsResponse, Persona::Advocate) => points(9, 10, rng),
            (Action::NpsResponse, Persona::Detractor) => points(0, 6, rng),
            (Action::NpsResponse, _) => points(7, 8, rng),
            // Satisfaction 1 to 5 and effort 1 (easy) to 7 after support.
            (Action::CsatResponse, Persona::Advocate) => points(4, 5, rng),
            (Action::CsatResponse, Persona::Detractor) => points(1, 2, rng),
            (Action::CsatResponse, _) => points(3, 5, rng),
            (Action::CesResponse, Persona::Advocate) => points(1, 3, rng),
            (Action::CesResponse, Persona::Detractor) => points(5, 7, rng),
            (Action::CesResponse, _) => points(2, 5, rng),
            _ => None,
        }
    }

    /// Attributes for about 60% of the actions that have any.
    pub(super) fn attributes(self, rng: &mut Pcg64Mcg) -> Attributes {
        let table = match self {
            Action::AdImpression | Action::AdClick => AD_ATTRIBUTES,
            Action::SearchClick => SEARCH_ATTRIBUTES,
            Action::EmailOpen | Action::EmailClick | Action::Unsubscribe => EMAIL_ATTRIBUTES,
            Action::PageView => PAGE_ATTRIBUTES,
            Action::ProductView | Action::AddToCart => PRODUCT_ATTRIBUTES,
            Action::Purchase => ORDER_ATTRIBUTES,
            Action::SupportTicket => TICKET_ATTRIBUTES,
            Action::Login => LOGIN_ATTRIBUTES,
            _ => return &[],
        };
        if rng.random_bool(0.6) {
            table[rng.random_range(0..table.len())]
        } else {
            &[]
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::test_rng;
    use super::*;

    #[test]
    fn wire_names_are_distinct_snake_case() {
        let names: HashSet<_> = Action::ALL.iter().map(|a| a.name()).collect();
        assert_eq!(names.len(), Action::ALL.len());
        for name in names {
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }

    #[test]
    fn scores_stay_on_their_scales() {
        let mut rng = test_rng();
        for _ in 0..500 {
            let rating = Action::ReviewPosted.value(Persona::Buyer, &mut rng);
            assert!(rating.is_some_and(|r| (1.0..=5.0).contains(&r)));
            let nps = Action::NpsResponse.value(Persona::Detractor, &mut rng);
            assert!(nps.is_some_and(|s| (0.0..=10.0).contains(&s)));
            let csat = Action::CsatResponse.value(Persona::Detractor, &mut rng);
            assert!(csat.is_some_and(|s| (1.0..=5.0).contains(&s)));
            let ces = Action::CesResponse.value(Persona::Buyer, &mut rng);
            assert!(ces.is_some_and(|s| (1.0..=7.0).contains(&s)));
            let order = Action::Purchase.value(Persona::Buyer, &mut rng);
            assert!(order.is_some_and(|v| (9.99..=399.99).contains(&v)));
        }
    }
}
