//! Journey moments: a start action opens one for a customer, a completion
//! action before its deadline completes it, and when the deadline passes
//! first it is abandoned (`[[journey.moments]]`, docs/journey-model.md).
//!
//! # State: one open instance per moment, two words each
//!
//! A customer holds at most one open instance of each moment, as two words
//! at `layout.moments + 2 * i`: the time of the start that opened it and
//! the time of its latest start (`i64::MIN` in both: not open). So the
//! state is bounded whatever the customer sends: 16 bytes per configured
//! moment.
//!
//! A start while the moment is open does not open a second one: it
//! extends the open one, whose deadline is `within` after its latest
//! start. A customer who adds a second item to the cart 50 minutes after
//! the first is still shopping, and is not told a minute later that the
//! cart was abandoned; the moment's duration still counts from the first
//! start, so "time to purchase" is from the first item.
//!
//! # The deadline is exclusive
//!
//! With `within = 1h`, a moment started at `t` completes with a
//! completion action at any time in `[t, t + 1h)`; at `t + 1h` it is
//! abandoned. A touchpoint is processed before a timer at the same event
//! time, so [`apply`] first abandons what is due at or before the
//! touchpoint's time, and only then completes; the timer then finds
//! nothing left. The deadline is filed with the customer's other
//! deadlines ([`super::journey::next_due`]) and fires when the partition's
//! time passes it, like a drop-off.
//!
//! A completion older than the moment's first start (a late touchpoint)
//! does not complete it. Outputs of the same touchpoint or timer come in
//! moment order.

use super::Emit;
use super::customer::CustomerMut;
use super::funnel::convert_time;
use super::journey::{Ctx, count_late};
use super::reorder::PendingEvent;
use super::rules::Rules;
use crate::model::{EventTime, MomentEnded, MomentOutcome, Output};

/// The words of a moment that is not open.
const CLOSED: i64 = i64::MIN;

/// An open moment: when it opened and when it was last started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Open {
    pub first: EventTime,
    pub latest: EventTime,
}

/// Moment `i`'s open instance, from the customer's words.
pub fn open(words: &[i64], rules: &Rules, i: usize) -> Option<Open> {
    let at = rules.layout.moments + 2 * i;
    (words[at] != CLOSED).then(|| Open {
        first: EventTime(words[at]),
        latest: EventTime(words[at + 1]),
    })
}

/// Sets (or, with `None`, clears) moment `i`'s open instance.
pub fn set_open(words: &mut [i64], rules: &Rules, i: usize, open: Option<Open>) {
    let at = rules.layout.moments + 2 * i;
    let (first, latest) = open.map_or((CLOSED, CLOSED), |o| (o.first.0, o.latest.0));
    words[at] = first;
    words[at + 1] = latest;
}

/// Applies a touchpoint: abandons the moments due at or before it, then
/// completes and opens what its action says.
pub fn apply<E: Emit>(c: &mut CustomerMut<'_>, ev: &PendingEvent, cx: &mut Ctx<'_, E>) {
    let action = cx.rules.action(ev.action);
    let (starts, completes) = (action.moment_start, action.moment_complete);
    if starts | completes == 0 && next_deadline(c.words(), cx.rules) > ev.at {
        return;
    }
    expire(c, ev.at, cx);
    for i in bits(completes) {
        if let Some(o) = open(c.words(), cx.rules, i).filter(|o| o.first <= ev.at) {
            set_open(c.words_mut(), cx.rules, i, None);
            end(c, i, o.first, ev.at, Some(ev), cx);
        }
    }
    for i in bits(starts) {
        let extended = match open(c.words(), cx.rules, i) {
            Some(o) => Open {
                first: o.first.min(ev.at),
                latest: o.latest.max(ev.at),
            },
            None => {
                cx.stats.moments[i][0] += 1;
                let counted = cx.funnel.moment(u32::from(c.partition), ev.at, i, 0, 0);
                count_late(counted, cx.stats);
                Open {
                    first: ev.at,
                    latest: ev.at,
                }
            }
        };
        set_open(c.words_mut(), cx.rules, i, Some(extended));
    }
}

/// Abandons every open moment whose deadline is at or before `now`, at
/// its deadline.
pub fn expire<E: Emit>(c: &mut CustomerMut<'_>, now: EventTime, cx: &mut Ctx<'_, E>) {
    for (i, moment) in cx.rules.moments.iter().enumerate() {
        if let Some(o) = open(c.words(), cx.rules, i) {
            let deadline = o.latest.plus_ms(moment.within_ms);
            if deadline <= now {
                set_open(c.words_mut(), cx.rules, i, None);
                end(c, i, o.first, deadline, None, cx);
            }
        }
    }
}

/// The earliest deadline of the customer's open moments; `MAX` if none.
pub fn next_deadline(words: &[i64], rules: &Rules) -> EventTime {
    (rules.moments.iter().enumerate())
        .filter_map(|(i, m)| open(words, rules, i).map(|o| o.latest.plus_ms(m.within_ms)))
        .fold(EventTime::MAX, EventTime::min)
}

/// Emits the end of moment `i`, opened at `first`: completed by
/// `trigger` at `at`, or abandoned at its deadline `at`.
fn end<E: Emit>(
    c: &mut CustomerMut<'_>,
    i: usize,
    first: EventTime,
    at: EventTime,
    trigger: Option<&PendingEvent>,
    cx: &mut Ctx<'_, E>,
) {
    let outcome = match trigger {
        Some(_) => MomentOutcome::Completed,
        None => MomentOutcome::Abandoned,
    };
    cx.stats.moments[i][1 + outcome as usize] += 1;
    let duration_ms = at.since(first).max(0);
    let partition = u32::from(c.partition);
    let counted = (cx.funnel).moment(partition, at, i, 1 + outcome as usize, duration_ms);
    count_late(counted, cx.stats);
    if outcome == MomentOutcome::Completed {
        cx.stats.moment_times[i][convert_time::bucket(duration_ms)] += 1;
        cx.stats.moment_ms[i] = cx.stats.moment_ms[i].saturating_add(duration_ms);
    }
    c.moment_seq = c.moment_seq.saturating_add(1);
    let ended = MomentEnded {
        customer_id: c.id.clone(),
        sequence: u64::from(c.moment_seq),
        moment: cx.rules.moments[i].name.clone(),
        outcome,
        started_at: first.0,
        event_time: at.0,
        duration_ms,
        trigger_event_id: trigger.map(|t| t.event_id.clone()),
        detected_at: cx.detected_at.0,
    };
    cx.out.emit(match outcome {
        MomentOutcome::Completed => Output::MomentCompleted(ended),
        MomentOutcome::Abandoned => Output::MomentAbandoned(ended),
    });
}

/// The indices of the bits set in `mask`, lowest first.
fn bits(mut mask: u32) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (mask != 0).then(|| {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            i
        })
    })
}
