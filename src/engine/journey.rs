//! The stage machine: what one touchpoint or one timer does to one customer.
//!
//! Everything here works on a single [`Customer`] plus the shared parts the
//! engine lends it ([`Ctx`]). A touchpoint, processed in event-time order:
//!
//! 1. counts toward the funnel window (activity, revenue) and the windowed
//!    entry signals ("3 product views within 7 days");
//! 2. moves the stage: a new customer enters the entry stage or the higher
//!    stage their first event signals; a lapsed one returns; a lapse action
//!    lapses; a matching regress rule moves down; otherwise the highest
//!    signalled stage, if above the current one, is entered (advance or
//!    skip). An event that merely signals a lower stage changes nothing;
//! 3. updates the churn inputs (purchases, cancellation, negative signals)
//!    and re-assesses the band when they changed.
//!
//! 4. completes, opens or extends journey moments ([`moments`]).
//!
//! A timer fires whatever is due for the customer at that event time: a churn
//! band crossing, a conversion deadline (drop-off), a moment's deadline
//! (abandoned), lapse by inactivity, and finally eviction after `state_ttl`.

use super::Emit;
use super::churn::{ChurnModel, PurchaseHistory};
use super::customer::{Customer, CustomerMut, NO_STAGE};
use super::funnel::{Counted, Funnel, Touch};
use super::moments;
use super::reorder::PendingEvent;
use super::rules::{Rules, StageIdx};
use super::stats::EngineStats;
use crate::model::{ChurnCause, ChurnRiskChanged, Direction, EventTime, Output, StageChanged};

/// Durations the stage machine needs, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// `time.lapse_after`: inactivity that lapses a customer.
    pub lapse_after_ms: i64,
    /// `time.state_ttl`: inactivity after which a customer is evicted.
    pub state_ttl_ms: i64,
    /// `churn.signal_window`: how long a negative signal raises the risk.
    pub signal_window_ms: i64,
}

/// The engine parts a customer update may touch.
pub struct Ctx<'a, E: Emit> {
    pub rules: &'a Rules,
    pub churn: &'a ChurnModel,
    pub settings: &'a Settings,
    pub funnel: &'a mut Funnel,
    pub stats: &'a mut EngineStats,
    /// Detection (processing) time stamped on outputs.
    pub detected_at: EventTime,
    pub out: &'a mut E,
}

/// Applies one touchpoint to its customer.
pub fn apply_event<E: Emit>(c: &mut CustomerMut<'_>, ev: &PendingEvent, cx: &mut Ctx<'_, E>) {
    // The journey's first touchpoint; unknown (`MIN`) stays unknown for a
    // customer restored from a state that did not keep it.
    if c.touchpoints == 0 {
        c.first_seen = ev.at;
    } else if c.first_seen != EventTime::MIN {
        c.first_seen = c.first_seen.min(ev.at);
    }
    c.touchpoints = c.touchpoints.saturating_add(1);
    c.last_seen = c.last_seen.max(ev.at);
    cx.stats.events += 1;
    if let Some(kind) = cx.rules.action(ev.action).score
        && let Some(response) = cx.rules.scales.response(kind, ev.value)
    {
        c.latest_scores[kind as usize] = response;
    }
    count_activity(c, ev, cx);
    let signalled = signalled_stage(c, ev, cx.rules);
    move_stage(c, ev, signalled, cx);
    update_churn_inputs(c, ev, cx);
    moments::apply(c, ev, cx);
}

fn count_activity<E: Emit>(c: &mut CustomerMut<'_>, ev: &PendingEvent, cx: &mut Ctx<'_, E>) {
    let partition = u32::from(c.partition);
    if cx.funnel.is_closed(partition, ev.at) {
        // A late touchpoint is counted in the engine's stats on arrival.
        let _ = cx.funnel.late(partition, ev.at);
        return;
    }
    let marker = cx.funnel.window_marker(ev.at);
    let active = c.active_window != marker;
    c.active_window = marker;
    let action = cx.rules.action(ev.action);
    // A score answers in the stage the customer was in: before this
    // touchpoint moves them.
    let stage = (c.stage != NO_STAGE).then_some(c.stage);
    let touch = Touch {
        active,
        revenue: ev.value.filter(|_| action.revenue),
        channel: ev.channel,
        score: action.score.map(|kind| (kind, stage, ev.value)),
    };
    if !cx
        .funnel
        .touchpoint(partition, ev.at, touch, &cx.rules.scales)
    {
        cx.stats.scores_off_scale += 1;
    }
}

/// The highest stage this event signals, updating windowed counts.
fn signalled_stage(c: &mut CustomerMut<'_>, ev: &PendingEvent, rules: &Rules) -> Option<StageIdx> {
    let mut best = None;
    for &i in &rules.action(ev.action).signals {
        let signal = &rules.signals[usize::from(i)];
        if !signal.condition.matches(ev.channel, ev.value) {
            continue;
        }
        let fired = match &signal.window {
            Some(window) => c.count_in_window(window, ev.at),
            None => true,
        };
        if fired {
            best = best.max(Some(signal.stage));
        }
    }
    best
}

fn move_stage<E: Emit>(
    c: &mut CustomerMut<'_>,
    ev: &PendingEvent,
    signalled: Option<StageIdx>,
    cx: &mut Ctx<'_, E>,
) {
    let rules = cx.rules;
    let actions = rules.action(ev.action);
    let above_lapse = signalled.filter(|&s| s > rules.lapse_stage);
    if c.stage == NO_STAGE {
        let to = above_lapse.map_or(rules.entry_stage, |s| s.max(rules.entry_stage));
        transition(c, to, ev.at, Some(ev), cx);
        if actions.lapse {
            transition(c, rules.lapse_stage, ev.at, Some(ev), cx);
        }
    } else if c.stage == rules.lapse_stage {
        if !actions.lapse {
            transition(
                c,
                above_lapse.unwrap_or(rules.entry_stage),
                ev.at,
                Some(ev),
                cx,
            );
        }
    } else if actions.lapse {
        transition(c, rules.lapse_stage, ev.at, Some(ev), cx);
    } else if let Some(to) = regress_target(c, ev, rules) {
        transition(c, to, ev.at, Some(ev), cx);
    } else if let Some(to) = signalled.filter(|&s| s > c.stage) {
        transition(c, to, ev.at, Some(ev), cx);
    }
}

fn regress_target(c: &Customer, ev: &PendingEvent, rules: &Rules) -> Option<StageIdx> {
    rules.action(ev.action).regress.iter().find_map(|&i| {
        let rule = &rules.regress[usize::from(i)];
        let applies = rule.from_mask & (1 << c.stage) != 0
            && rule.to < c.stage
            && rule.condition.matches(ev.channel, ev.value);
        applies.then_some(rule.to)
    })
}

/// How a move from `from` to `to` is described.
fn direction(rules: &Rules, from: StageIdx, to: StageIdx) -> Direction {
    if to == rules.lapse_stage {
        return Direction::Lapse;
    }
    if from == rules.lapse_stage {
        return Direction::Return;
    }
    // Entering the journey counts from just below the entry stage.
    let from_pos = if from == NO_STAGE {
        i32::from(rules.entry_stage) - 1
    } else {
        i32::from(from)
    };
    match i32::from(to) - from_pos {
        1 => Direction::Advance,
        d if d > 1 => Direction::Skip,
        _ => Direction::Regress,
    }
}

/// Moves the customer to `to` at event time `at` and emits the change.
/// `trigger` is `None` for timer-driven moves.
fn transition<E: Emit>(
    c: &mut CustomerMut<'_>,
    to: StageIdx,
    at: EventTime,
    trigger: Option<&PendingEvent>,
    cx: &mut Ctx<'_, E>,
) {
    let (rules, from) = (cx.rules, c.stage);
    settle_conversion(c, to, at, cx);
    let time_in_previous = if from == NO_STAGE {
        0
    } else {
        at.since(c.stage_since).max(0)
    };
    cx.stats.record_transition(from, to);
    let counted = cx.funnel.entry(u32::from(c.partition), at, to);
    count_late(counted, cx.stats);
    c.stage = to;
    c.stage_since = at;
    c.conversion_pending =
        to != rules.lapse_stage && rules.conversion_from[usize::from(to)].is_some();
    count_in_flight(cx.funnel, rules, c, 1, Some(at));
    c.stage_seq = c.stage_seq.saturating_add(1);
    cx.out.emit(Output::StageChanged(StageChanged {
        customer_id: c.id.clone(),
        sequence: u64::from(c.stage_seq),
        from_stage: (from != NO_STAGE).then(|| rules.stage_name(from).clone()),
        to_stage: rules.stage_name(to).clone(),
        direction: direction(rules, from, to),
        trigger_event_id: trigger.map(|t| t.event_id.clone()),
        trigger_action: trigger.map(|t| t.action_name.clone()),
        trigger_channel: trigger.map(|t| t.channel.as_str()),
        event_time: at.0,
        detected_at: cx.detected_at.0,
        time_in_previous_stage_ms: time_in_previous,
        touchpoint_count: u64::from(c.touchpoints),
        time_since_first_touchpoint_ms: (c.first_seen != EventTime::MIN)
            .then(|| at.since(c.first_seen).max(0)),
    }));
}

/// Leaving a stage with a running conversion deadline: reaching the pair's
/// target (or beyond) converts; any other move just ends the deadline.
fn settle_conversion<E: Emit>(
    c: &mut CustomerMut<'_>,
    to: StageIdx,
    at: EventTime,
    cx: &mut Ctx<'_, E>,
) {
    if !c.conversion_pending || c.stage == NO_STAGE {
        return;
    }
    count_in_flight(cx.funnel, cx.rules, c, -1, Some(at));
    c.conversion_pending = false;
    if let Some(conv) = cx.rules.conversion_from[usize::from(c.stage)]
        && to != cx.rules.lapse_stage
        && to >= conv.to
    {
        cx.stats.conversions += 1;
        let took = at.since(c.stage_since);
        let counted = cx
            .funnel
            .conversion(u32::from(c.partition), at, conv.index, took);
        count_late(counted, cx.stats);
    }
}

/// A stage entry, conversion or drop-off fell into a funnel window already
/// emitted, and its item (a timer firing: a late touchpoint is counted on
/// arrival and in `count_activity`) is counted as late for it.
pub(super) fn count_late(counted: Counted, stats: &mut EngineStats) {
    if counted == Counted::Late {
        stats.late += 1;
    }
}

fn update_churn_inputs<E: Emit>(c: &mut CustomerMut<'_>, ev: &PendingEvent, cx: &mut Ctx<'_, E>) {
    let rules = cx.rules;
    let actions = rules.action(ev.action);
    let mut changed = false;
    if actions.purchase {
        c.first_purchase = if c.purchases == 0 {
            ev.at
        } else {
            c.first_purchase.min(ev.at)
        };
        c.last_purchase = c.last_purchase.max(ev.at);
        c.purchases = c.purchases.saturating_add(1);
        c.cancelled = false;
        changed = true;
    }
    if actions.cancel {
        c.cancelled = true;
        changed = true;
    }
    for &i in &actions.churn_signals {
        let signal = &rules.churn_signals[usize::from(i)];
        if signal.condition.matches(ev.channel, ev.value) {
            c.set_churn_signal(&rules.layout, signal.slot, ev.at);
            changed = true;
        }
    }
    if changed && c.purchases > 0 {
        assess_churn(c, ev.at, Some(ev), cx);
    }
}

/// Re-assesses churn risk at `now`, emits on a band change, and sets the
/// time of the next change by time alone.
fn assess_churn<E: Emit>(
    c: &mut CustomerMut<'_>,
    now: EventTime,
    trigger: Option<&PendingEvent>,
    cx: &mut Ctx<'_, E>,
) {
    let (logit, next_expiry) = signal_logit(c, now, cx);
    let history = PurchaseHistory {
        purchases: c.purchases,
        first: c.first_purchase,
        last: c.last_purchase,
    };
    let assessment = cx.churn.assess(&history, logit, c.cancelled, now);
    let band = cx.churn.band(assessment.risk, c.band);
    if c.band != Some(band) {
        cx.stats.record_band(c.band, Some(band));
        c.churn_seq = c.churn_seq.saturating_add(1);
        cx.out.emit(Output::ChurnRiskChanged(ChurnRiskChanged {
            customer_id: c.id.clone(),
            sequence: u64::from(c.churn_seq),
            risk: assessment.risk,
            band,
            previous_band: c.band,
            p_alive: assessment.p_alive,
            signals: active_signal_names(c, now, cx),
            cause: if trigger.is_some() {
                ChurnCause::Event
            } else {
                ChurnCause::Timer
            },
            trigger_event_id: trigger.map(|t| t.event_id.clone()),
            event_time: now.0,
            detected_at: cx.detected_at.0,
        }));
        c.band = Some(band);
    }
    c.churn_due = if c.cancelled {
        EventTime::MAX
    } else {
        let crossing = cx.churn.next_band_change(&history, logit, band, now);
        crossing.unwrap_or(EventTime::MAX).min(next_expiry)
    };
}

/// The logit contribution of the signals active at `now`, and when the
/// next of them expires.
fn signal_logit<E: Emit>(c: &CustomerMut<'_>, now: EventTime, cx: &Ctx<'_, E>) -> (f64, EventTime) {
    let (mut logit, mut next_expiry) = (0.0, EventTime::MAX);
    for signal in &cx.rules.churn_signals {
        if let Some(at) = c.churn_signal_at(&cx.rules.layout, signal.slot) {
            let expiry = at.plus_ms(cx.settings.signal_window_ms);
            if at <= now && now < expiry {
                logit += signal.weight;
                next_expiry = next_expiry.min(expiry);
            }
        }
    }
    (logit, next_expiry)
}

fn active_signal_names<E: Emit>(
    c: &CustomerMut<'_>,
    now: EventTime,
    cx: &Ctx<'_, E>,
) -> Vec<compact_str::CompactString> {
    let window = cx.settings.signal_window_ms;
    cx.rules
        .churn_signals
        .iter()
        .filter(|s| {
            c.churn_signal_at(&cx.rules.layout, s.slot)
                .is_some_and(|at| at <= now && now < at.plus_ms(window))
        })
        .map(|s| s.name.clone())
        .collect()
}

/// What a timer firing at `now` did to the customer.
#[derive(Debug, PartialEq, Eq)]
pub enum Fired {
    /// The customer stays; re-file them at their next due time.
    Keep,
    /// `state_ttl` passed: the journey is over. Buffered touchpoints of the
    /// customer, if any, are all later and start a new journey.
    Evict,
}

/// Fires everything due for the customer at or before `now`.
pub fn fire<E: Emit>(c: &mut CustomerMut<'_>, now: EventTime, cx: &mut Ctx<'_, E>) -> Fired {
    cx.stats.timers_fired += 1;
    if c.purchases > 0 && c.churn_due <= now {
        assess_churn(c, c.churn_due, None, cx);
    }
    if let Some(deadline) = conversion_deadline(c, cx.rules).filter(|&d| d <= now)
        && let Some(conv) = cx.rules.conversion_from[usize::from(c.stage)]
    {
        count_in_flight(cx.funnel, cx.rules, c, -1, Some(deadline));
        c.conversion_pending = false;
        cx.stats.dropoffs += 1;
        let counted = cx
            .funnel
            .dropoff(u32::from(c.partition), deadline, conv.index);
        count_late(counted, cx.stats);
    }
    moments::expire(c, now, cx);
    if let Some(due) = lapse_due(c, cx.rules, cx.settings).filter(|&d| d <= now) {
        transition(c, cx.rules.lapse_stage, due, None, cx);
    }
    if c.seen().plus_ms(cx.settings.state_ttl_ms) <= now {
        if c.purchases > 0 {
            assess_churn(c, now, None, cx);
        }
        return Fired::Evict;
    }
    Fired::Keep
}

/// The conversion pair whose deadline is running for `c`, if any.
fn running_pair(c: &Customer, rules: &Rules) -> Option<usize> {
    if !c.conversion_pending || c.stage == NO_STAGE {
        return None;
    }
    Some(rules.conversion_from[usize::from(c.stage)]?.index)
}

/// Keeps the funnel's count of customers in flight in step with `c`: its
/// running deadline, if any, starts or ends (`delta` 1 or -1) at `at`, or
/// without a time when the customer is restored or no longer held
/// ([`Funnel::in_flight`]).
pub fn count_in_flight(
    funnel: &mut Funnel,
    rules: &Rules,
    c: &Customer,
    delta: i64,
    at: Option<EventTime>,
) {
    if let Some(pair) = running_pair(c, rules) {
        funnel.in_flight(u32::from(c.partition), pair, delta, at);
    }
}

fn conversion_deadline(c: &Customer, rules: &Rules) -> Option<EventTime> {
    if !c.conversion_pending || c.stage == NO_STAGE {
        return None;
    }
    let conv = rules.conversion_from[usize::from(c.stage)]?;
    Some(c.stage_since.plus_ms(conv.timeout_ms))
}

fn lapse_due(c: &Customer, rules: &Rules, settings: &Settings) -> Option<EventTime> {
    let active = c.stage != NO_STAGE && c.stage != rules.lapse_stage;
    active.then(|| c.last_seen.plus_ms(settings.lapse_after_ms))
}

/// The earliest time anything is due for this customer; `MAX` if nothing.
/// A function of the customer's state alone, so that a restored customer's
/// timer is derived rather than persisted.
pub fn next_due(c: &Customer, words: &[i64], rules: &Rules, settings: &Settings) -> EventTime {
    if c.stage == NO_STAGE {
        // Only a consent (a grant before any journey, or what a withdrawal
        // left) lives on, for `state_ttl` after it changed.
        return match c.consent_at {
            EventTime::MIN => EventTime::MAX,
            at => at.plus_ms(settings.state_ttl_ms),
        };
    }
    let churn = if c.purchases > 0 {
        c.churn_due
    } else {
        EventTime::MAX
    };
    let ttl = c.seen().plus_ms(settings.state_ttl_ms);
    let moment = moments::next_deadline(words, rules);
    [conversion_deadline(c, rules), lapse_due(c, rules, settings)]
        .into_iter()
        .flatten()
        .fold(churn.min(ttl).min(moment), EventTime::min)
}
