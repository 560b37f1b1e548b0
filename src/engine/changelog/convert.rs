//! Between a customer in the arena and its layout-independent
//! [`CustomerState`].
//!
//! Capturing reuses the state's vectors, so a warm drain allocates nothing.
//! Installing adapts a state written under another journey model: the
//! stage is found by ordinal (an unknown one is refused by the caller),
//! and the word sections are fitted to the current layout (see
//! [`install`]).

use crate::engine::customer::{Customer, CustomerMut, NO_SCORE, NO_STAGE};
use crate::engine::moments;
use crate::engine::rules::{Rules, StageIdx};
use crate::engine::snapshot::{CustomerState, OpenMoment, WindowState};
use crate::model::EventTime;

/// Fills `state` from a customer and its words; `awaiting` are the offsets
/// it ingested but has not applied, ascending and distinct.
pub fn capture(
    state: &mut CustomerState,
    c: &Customer,
    words: &[i64],
    rules: &Rules,
    awaiting: impl Iterator<Item = i64>,
) {
    let layout = rules.layout;
    state.stage = (c.stage != NO_STAGE).then(|| rules.stages[usize::from(c.stage)].ordinal);
    state.stage_since = c.stage_since;
    state.band = c.band;
    state.conversion_pending = c.conversion_pending;
    state.cancelled = c.cancelled;
    state.stage_seq = c.stage_seq;
    state.churn_seq = c.churn_seq;
    state.touchpoints = c.touchpoints;
    state.purchases = c.purchases;
    state.active_window = c.active_window;
    state.last_seen = c.last_seen;
    state.first_purchase = c.first_purchase;
    state.last_purchase = c.last_purchase;
    state.churn_due = c.churn_due;
    state.latest_scores = c.latest_scores.map(|s| (s != NO_SCORE).then_some(s));
    state.first_seen = c.first_seen;
    state.consent = c.consent;
    state.consent_at = c.consent_at;
    state.moment_seq = c.moment_seq;
    state.moments.clear();
    state.moments.extend((0..rules.moments.len()).map(|i| {
        moments::open(words, rules, i).map(|o| OpenMoment {
            first: o.first,
            latest: o.latest,
        })
    }));
    state
        .windows
        .resize_with(rules.windows().count(), WindowState::default);
    for (kept, window) in state.windows.iter_mut().zip(rules.windows()) {
        kept.capacity = window.count;
        kept.times.clear();
        let times = &words[window.offset..][..window.count as usize];
        kept.times.extend(
            times
                .iter()
                .filter(|&&t| t != i64::MIN)
                .map(|&t| EventTime(t)),
        );
    }
    state.churn_signals.clear();
    state.churn_signals.extend(
        words[layout.churn..layout.moments]
            .iter()
            .map(|&t| (t != i64::MIN).then_some(EventTime(t))),
    );
    let (floor, entries) = words[layout.dedupe..]
        .split_first()
        .expect("a de-dup floor");
    state.dedupe.clear();
    state.dedupe.extend(entries.iter().map(|&e| e as u64));
    state.dedupe_floor = *floor as u64;
    state.fence = (c.fence >= 0).then_some(c.fence);
    state.awaiting.clear();
    if let Some(fence) = state.fence {
        // Only offsets the fence covers can be read again as awaited.
        state
            .awaiting
            .extend(awaiting.filter(|&o| (0..=fence).contains(&o)));
    }
}

/// Writes `state` into a customer whose words are fresh, in `stage` (the
/// index of the state's ordinal). The id, partition and pending count are
/// the caller's. Word sections written under another layout are fitted:
/// windowed-signal times are kept per signal (the latest that fit) when
/// the number of windowed signals is unchanged and dropped otherwise;
/// churn-signal times and open moments are kept by position (those past
/// the configured ones are dropped); the de-duplication memory
/// keeps its newest entries, the others raising its floor.
pub fn install(c: &mut CustomerMut<'_>, state: &CustomerState, stage: StageIdx, rules: &Rules) {
    c.stage = stage;
    c.stage_since = state.stage_since;
    c.band = state.band;
    c.conversion_pending = state.conversion_pending;
    c.cancelled = state.cancelled;
    c.stage_seq = state.stage_seq;
    c.churn_seq = state.churn_seq;
    c.touchpoints = state.touchpoints;
    c.purchases = state.purchases;
    c.active_window = state.active_window;
    c.last_seen = state.last_seen;
    c.first_purchase = state.first_purchase;
    c.last_purchase = state.last_purchase;
    c.churn_due = state.churn_due;
    c.latest_scores = state.latest_scores.map(|s| s.unwrap_or(NO_SCORE));
    c.first_seen = state.first_seen;
    c.consent = state.consent;
    c.consent_at = state.consent_at;
    c.moment_seq = state.moment_seq;
    c.fence = state.fence.unwrap_or(-1);
    c.timer_at = EventTime::MAX;
    install_windows(c, state, rules);
    let layout = rules.layout;
    let words = c.words_mut();
    for (word, t) in words[layout.churn..layout.moments]
        .iter_mut()
        .zip(&state.churn_signals)
    {
        *word = t.map_or(i64::MIN, |t| t.0);
    }
    for (i, open) in state.moments.iter().take(rules.moments.len()).enumerate() {
        let open = open.map(|o| moments::Open {
            first: o.first,
            latest: o.latest,
        });
        moments::set_open(words, rules, i, open);
    }
    install_dedupe(&mut words[layout.dedupe..], state);
}

fn install_windows(c: &mut CustomerMut<'_>, state: &CustomerState, rules: &Rules) {
    if state.windows.len() != rules.windows().count() {
        return;
    }
    let words = c.words_mut();
    for (kept, window) in state.windows.iter().zip(rules.windows()) {
        let slots = &mut words[window.offset..][..window.count as usize];
        let latest = &kept.times[kept.times.len().saturating_sub(slots.len())..];
        let start = slots.len() - latest.len();
        slots[..start].fill(i64::MIN);
        for (slot, t) in slots[start..].iter_mut().zip(latest) {
            *slot = t.0;
        }
    }
}

/// Fills `words` (the floor, then the entries) from the state's memory.
/// When fewer entries fit than were kept, the newest are kept and the
/// floor rises to the newest of those dropped: every entry above the floor
/// is still remembered.
fn install_dedupe(words: &mut [i64], state: &CustomerState) {
    let (floor, entries) = words.split_first_mut().expect("a de-dup floor");
    if entries.len() == state.dedupe.len() {
        *floor = state.dedupe_floor as i64;
        for (word, &e) in entries.iter_mut().zip(&state.dedupe) {
            *word = e as i64;
        }
        return;
    }
    let mut kept: Vec<u64> = state.dedupe.iter().copied().filter(|&e| e != 0).collect();
    kept.sort_unstable();
    let dropped = kept.len().saturating_sub(entries.len());
    let raised = dropped.checked_sub(1).map_or(0, |i| kept[i]);
    *floor = state.dedupe_floor.max(raised) as i64;
    entries.fill(0);
    for (word, &e) in entries.iter_mut().zip(&kept[dropped..]) {
        *word = e as i64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::customer::Customers;
    use crate::engine::dedupe::{self, Verdict};

    fn rules(dedupe: usize) -> Rules {
        let mut config = Config::default();
        config.limits.dedupe_per_customer = dedupe;
        Rules::compile(&config).unwrap()
    }

    #[test]
    fn capture_then_install_gives_the_same_customer() {
        let rules = rules(4);
        let mut customers = Customers::new(rules.layout);
        let (slot, _) = customers.find_or_insert("ann");
        {
            let mut c = customers.get_mut(slot);
            c.stage = 2;
            c.stage_seq = 3;
            c.fence = 41;
            c.last_seen = EventTime(5_000);
            for i in 1..=9i64 {
                let entry = dedupe::entry(EventTime(1_767_225_600_000 + i), 7 << 42);
                assert_eq!(c.dedupe(entry, 86_400_000, &rules.layout), Verdict::New);
            }
            let window = rules.windows().next().copied().unwrap();
            c.count_in_window(&window, EventTime(4_000));
            c.set_churn_signal(&rules.layout, 1, EventTime(4_500));
            c.moment_seq = 4;
            let open = moments::Open {
                first: EventTime(4_200),
                latest: EventTime(4_800),
            };
            moments::set_open(c.words_mut(), &rules, 1, Some(open));
        }
        let mut state = CustomerState::default();
        let c = customers.get(slot).clone();
        capture(
            &mut state,
            &c,
            customers.words(slot),
            &rules,
            [40, 41].into_iter(),
        );
        assert_eq!(state.awaiting, [40, 41]);
        let open = OpenMoment {
            first: EventTime(4_200),
            latest: EventTime(4_800),
        };
        assert_eq!(
            (state.moment_seq, &state.moments[..]),
            (4, &[None, Some(open)][..])
        );
        let (copy, _) = customers.find_or_insert("copy");
        install(&mut customers.get_mut(copy), &state, 2, &rules);
        assert_eq!(customers.words(copy), customers.words(slot));
        let installed = customers.get(copy);
        assert_eq!(
            (installed.stage, installed.stage_seq, installed.fence),
            (2, 3, 41)
        );
        assert_eq!(installed.moment_seq, 4);
        assert_ne!(state.dedupe_floor, 0, "one entry forgotten");
    }

    #[test]
    fn a_smaller_memory_keeps_the_newest_entries_and_raises_its_floor() {
        let state = CustomerState {
            dedupe: vec![50, 0, 20, 30, 40],
            dedupe_floor: 10,
            ..CustomerState::default()
        };
        let mut smaller = [0i64; 3];
        install_dedupe(&mut smaller, &state);
        assert_eq!(smaller, [30, 40, 50]);
        let mut bigger = [0i64; 7];
        install_dedupe(&mut bigger, &state);
        assert_eq!(bigger, [10, 20, 30, 40, 50, 0, 0]);
    }
}
