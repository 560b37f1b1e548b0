//! The changelog value: one customer's state as compact, versioned bytes.
//!
//! [`CustomerState`] is everything the engine needs to continue a customer's
//! journey exactly where it was, in a form independent of the in-memory
//! layout; [`encode`] and [`decode`] turn it into bytes and back. This
//! module knows nothing of the arena, the timers or Kafka. The changelog's
//! other kind of value, one partition's funnel windows ([`FunnelState`]),
//! has a format of its own, in [`funnel`].
//!
//! # Format, version 5
//!
//! Byte 0 is the format version. The rest is hand-written and little-endian:
//! `varint` is unsigned LEB128, `zz` a zigzag varint, a mask has one bit per
//! item (bit `i % 8` of byte `i / 8`), and times are milliseconds relative to
//! a base (`last_seen`, or 0 when it is absent), so most take 2 to 5 bytes.
//!
//! ```text
//! u8      version = 5
//! u8      flags: bit 0 conversion_pending, bit 1 cancelled,
//!                bits 2-3 band (0 none, 1 low, 2 medium, 3 high), others 0
//! varint  stage ordinal + 1 (0: no stage yet)
//! varint  stage_seq, churn_seq, touchpoints, purchases
//! varint  active_window + 1 (wrapping: u32::MAX, "none", is 0)
//! u8      present times: bit 0 last_seen, 1 stage_since, 2 first_purchase,
//!         3 last_purchase, 4 churn_due (absent: MIN, or MAX for churn_due)
//! zz      last_seen (absolute), then the other present times minus the base
//! varint  windowed signals; per signal: varint capacity, varint used
//!         (<= capacity), then the used times ascending: zz first - base,
//!         varint increments
//! varint  churn signals n; mask(n) present; zz time - base for each present
//! varint  dedupe entries n (>= 1); mask(n) occupied; u64 LE entry
//!         (non-zero) for each occupied one; varint floor
//!         (see `crate::engine::dedupe`)
//! varint  replay fence + 1 (0: none)
//! varint  awaiting count k (0 without a fence); then fence - first offset,
//!         and k - 1 strictly positive increments
//! u8      tail present: bit 0 NPS, 1 CSAT, 2 CES (the latest scores), 3
//!         first_seen, others 0; then one u8 response (< 255) for each
//!         present score, and zz first_seen - base if present
//! u8      consent: 0 unknown, 1 granted, 2 withdrawn (`[consent]`); then,
//!         unless unknown, zz consent_at - base (when it changed)
//! varint  moment_seq (the last journey-moment output's sequence)
//! varint  moments n; mask(n) open; for each open moment: zz first
//!         start - base, varint latest start - first start
//! ```
//!
//! The consent and the journey moments are tail sections of their own,
//! after the scores' tail: version 4 appends the consent to version 3, and
//! version 5 the moments to version 4; the decoder reads each only for the
//! versions that have it.
//!
//! A typical customer (a purchase, a few views, six remembered event ids)
//! takes about 100 bytes (`tests/golden/state-v2.bin`: 103), against ~260
//! in memory; the customer id is the record's key and is not repeated.
//! Decoding rejects an unknown version, truncation, stray bits,
//! out-of-range values and trailing bytes with a [`DecodeError`], and
//! allocates in proportion to the input's size only.
//!
//! # Versions
//!
//! A later format gets the next version byte and a decoder of its own;
//! [`decode`] keeps reading every earlier version into the current
//! [`CustomerState`]. `tests/golden/state-v1.bin` to `state-v4.bin` are
//! values of each version checked in for good, with tests that they decode
//! to the same state.
//!
//! Version 4 is version 5 without the moments (none open, `moment_seq`
//! 0). Version 3 is version 4 without the consent section (consent unknown).
//! Version 2 is version 3 without the tail (no latest scores, first_seen
//! unknown).
//! Version 1 differs from version 2 only in its de-duplication memory: a ring of the
//! latest event-id fingerprints, without their times
//! (`varint n; u8 cursor (< n); mask(n) occupied; u64 LE fingerprint`).
//! Read today, each fingerprint becomes an entry at `last_seen`, and the
//! floor is just below `last_seen`: a late touchpoint older than that,
//! unknown, may be a redelivery of one the ring had forgotten, and is
//! refused ([`crate::engine::dedupe::from_fingerprints`]).

pub mod funnel;
mod wire;

pub use funnel::{FunnelState, decode_funnel, encode_funnel};

use crate::engine::consent::ConsentState;
use crate::engine::dedupe;
use crate::model::{Band, EventTime};
use wire::{Reader, put_mask, put_varint, unzigzag, zigzag};

/// The format version [`encode`] writes.
pub const FORMAT_VERSION: u8 = 5;

/// One customer's journey state, as persisted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CustomerState {
    /// Ordinal of the current stage (the config's stable number, not the
    /// engine's index); `None` while the first touchpoint waits.
    pub stage: Option<u8>,
    /// When the current stage was entered; `MIN` if never.
    pub stage_since: EventTime,
    /// Current churn band; `None` before the first purchase.
    pub band: Option<Band>,
    /// A conversion deadline from the current stage is running.
    pub conversion_pending: bool,
    /// A cancellation set the churn risk to 1.
    pub cancelled: bool,
    /// Sequence of the last `StageChanged` emitted.
    pub stage_seq: u32,
    /// Sequence of the last `ChurnRiskChanged` emitted.
    pub churn_seq: u32,
    /// Touchpoints processed.
    pub touchpoints: u32,
    /// Purchases seen.
    pub purchases: u32,
    /// Funnel window marker the customer was last counted active in.
    pub active_window: u32,
    /// Latest event time of a processed touchpoint; `MIN` if none.
    pub last_seen: EventTime,
    /// First purchase; `MIN` if none.
    pub first_purchase: EventTime,
    /// Latest purchase; `MIN` if none.
    pub last_purchase: EventTime,
    /// Next churn-band change by time alone; `MAX` if none.
    pub churn_due: EventTime,
    /// Per windowed entry signal, in config order, its recent timestamps.
    pub windows: Vec<WindowState>,
    /// Per churn signal, in config order, its latest occurrence.
    pub churn_signals: Vec<Option<EventTime>>,
    /// The de-duplication entries as stored, 0 = empty (their order
    /// does not matter; see [`crate::engine::dedupe`]).
    pub dedupe: Vec<u64>,
    /// The de-duplication floor; 0 if none.
    pub dedupe_floor: u64,
    /// Offset of the newest touchpoint ingested from the customer's input
    /// partition: a re-read at or below it was ingested before.
    pub fence: Option<i64>,
    /// Offsets at or below `fence` ingested but not applied yet (they were
    /// waiting for the watermark), ascending: a re-read of these is applied.
    pub awaiting: Vec<i64>,
    /// The customer's latest NPS, CSAT and CES responses (`journey.scores`).
    pub latest_scores: [Option<u8>; 3],
    /// Event time of the journey's first touchpoint; `MIN` if unknown
    /// (none yet, or restored from a version that did not keep it).
    pub first_seen: EventTime,
    /// Consent for `consent.purpose` (`Unknown` before version 4).
    pub consent: ConsentState,
    /// When it last changed; `MIN` with `Unknown`.
    pub consent_at: EventTime,
    /// Sequence of the last `MomentCompleted` or `MomentAbandoned`.
    pub moment_seq: u32,
    /// Per journey moment, in config order, its open instance.
    pub moments: Vec<Option<OpenMoment>>,
}

/// A journey moment open for the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenMoment {
    /// The start that opened it.
    pub first: EventTime,
    /// Its latest start (its deadline runs from here); `>= first`.
    pub latest: EventTime,
}

/// The recent timestamps of one windowed entry signal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowState {
    /// How many timestamps the signal keeps (its `count`).
    pub capacity: u32,
    /// The kept timestamps, ascending, at most `capacity`.
    pub times: Vec<EventTime>,
}

/// Why bytes are not a customer state. The variants are stable, low
/// cardinality labels ([`DecodeError::reason`]); the field says where.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Zero bytes (a tombstone is a missing value, not an empty one).
    #[error("empty customer state")]
    Empty,
    /// A version this build cannot read (written by a newer journeyd).
    #[error("unknown customer state format version {0}")]
    UnknownVersion(u8),
    /// The bytes end inside a field.
    #[error("customer state truncated in {0}")]
    Truncated(&'static str),
    /// A field holds a value the format does not allow.
    #[error("invalid {0} in customer state")]
    Invalid(&'static str),
    /// Bytes left after the last field.
    #[error("{0} bytes after the end of the customer state")]
    Trailing(usize),
}

impl DecodeError {
    /// A metric label for the error.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::UnknownVersion(_) => "unknown_version",
            DecodeError::Truncated(_) => "truncated",
            DecodeError::Invalid(_) => "invalid",
            DecodeError::Trailing(_) => "trailing_bytes",
        }
    }
}

const CONVERSION_PENDING: u8 = 1;
const CANCELLED: u8 = 1 << 1;
const BAND_SHIFT: u8 = 2;
const KNOWN_FLAGS: u8 = 0b1111;

/// Appends the current-version encoding of `state` to `out`.
pub fn encode(state: &CustomerState, out: &mut Vec<u8>) {
    out.push(FORMAT_VERSION);
    out.push(flags(state));
    put_varint(out, state.stage.map_or(0, |o| u64::from(o) + 1));
    for n in [
        state.stage_seq,
        state.churn_seq,
        state.touchpoints,
        state.purchases,
        state.active_window.wrapping_add(1),
    ] {
        put_varint(out, u64::from(n));
    }
    let base = put_times(state, out);
    put_windows(&state.windows, base, out);
    put_varint(out, state.churn_signals.len() as u64);
    put_mask(out, state.churn_signals.iter().map(Option::is_some));
    for t in state.churn_signals.iter().flatten() {
        put_varint(out, zigzag(t.0.wrapping_sub(base)));
    }
    put_dedupe(state, out);
    put_awaiting(state, out);
    let present = (0..).zip(&state.latest_scores);
    let mask = present.fold(0, |mask, (i, s)| mask | (u8::from(s.is_some()) << i));
    let first_seen = state.first_seen != EventTime::MIN;
    out.push(mask | (u8::from(first_seen) << FIRST_SEEN_BIT));
    out.extend(state.latest_scores.iter().flatten());
    if first_seen {
        put_varint(out, zigzag(state.first_seen.0.wrapping_sub(base)));
    }
    put_consent(state, base, out);
    put_moments(state, base, out);
}

/// The consent section (version 4): the state, then when it changed.
fn put_consent(state: &CustomerState, base: i64, out: &mut Vec<u8>) {
    out.push(state.consent as u8);
    if state.consent != ConsentState::Unknown {
        put_varint(out, zigzag(state.consent_at.0.wrapping_sub(base)));
    }
}

/// The moments section (version 5): the moments' sequence and the open moments.
fn put_moments(state: &CustomerState, base: i64, out: &mut Vec<u8>) {
    put_varint(out, u64::from(state.moment_seq));
    put_varint(out, state.moments.len() as u64);
    put_mask(out, state.moments.iter().map(Option::is_some));
    for open in state.moments.iter().flatten() {
        put_varint(out, zigzag(open.first.0.wrapping_sub(base)));
        put_varint(out, open.latest.0.wrapping_sub(open.first.0) as u64);
    }
}

/// Reads the consent section of version 4.
fn read_consent(
    r: &mut Reader<'_>,
    base: i64,
    state: &mut CustomerState,
) -> Result<(), DecodeError> {
    let byte = r.byte("consent")?;
    state.consent = ConsentState::from_byte(byte).ok_or(DecodeError::Invalid("consent"))?;
    if state.consent != ConsentState::Unknown {
        state.consent_at = EventTime(unzigzag(r.varint("consent")?).wrapping_add(base));
        if state.consent_at == EventTime::MIN {
            return Err(DecodeError::Invalid("consent"));
        }
    }
    Ok(())
}

/// Reads the moments section of version 5.
fn read_moments(
    r: &mut Reader<'_>,
    base: i64,
    state: &mut CustomerState,
) -> Result<(), DecodeError> {
    state.moment_seq = r.varint_u32("moment_seq")?;
    let n = r.count(0, "moments")?;
    if n > r.remaining().saturating_mul(8) {
        return Err(DecodeError::Truncated("moments"));
    }
    let open = r.mask(n, "moments")?;
    state.moments = (0..n)
        .map(|i| {
            if !open.get(i) {
                return Ok(None);
            }
            let first = unzigzag(r.varint("moments")?).wrapping_add(base);
            let latest = i64::try_from(r.varint("moments")?)
                .ok()
                .and_then(|step| first.checked_add(step))
                .ok_or(DecodeError::Invalid("moments"))?;
            if first == i64::MIN {
                return Err(DecodeError::Invalid("moments"));
            }
            Ok(Some(OpenMoment {
                first: EventTime(first),
                latest: EventTime(latest),
            }))
        })
        .collect::<Result<_, _>>()?;
    Ok(())
}

/// The bit of the tail's presence byte that says `first_seen` follows.
const FIRST_SEEN_BIT: u8 = 3;

fn flags(state: &CustomerState) -> u8 {
    let band = match state.band {
        None => 0,
        Some(Band::Low) => 1,
        Some(Band::Medium) => 2,
        Some(Band::High) => 3,
    };
    let mut flags = band << BAND_SHIFT;
    if state.conversion_pending {
        flags |= CONVERSION_PENDING;
    }
    if state.cancelled {
        flags |= CANCELLED;
    }
    flags
}

/// The five scalar times with their "absent" values, in mask-bit order.
fn times(state: &CustomerState) -> [(EventTime, EventTime); 5] {
    [
        (state.last_seen, EventTime::MIN),
        (state.stage_since, EventTime::MIN),
        (state.first_purchase, EventTime::MIN),
        (state.last_purchase, EventTime::MIN),
        (state.churn_due, EventTime::MAX),
    ]
}

/// Writes the scalar times; returns the base the other times are relative to.
fn put_times(state: &CustomerState, out: &mut Vec<u8>) -> i64 {
    let times = times(state);
    put_mask(out, times.iter().map(|(t, absent)| t != absent));
    let base = if state.last_seen == EventTime::MIN {
        0
    } else {
        state.last_seen.0
    };
    for (i, (t, absent)) in times.into_iter().enumerate() {
        if t != absent {
            let relative = if i == 0 { t.0 } else { t.0.wrapping_sub(base) };
            put_varint(out, zigzag(relative));
        }
    }
    base
}

fn put_windows(windows: &[WindowState], base: i64, out: &mut Vec<u8>) {
    put_varint(out, windows.len() as u64);
    for w in windows {
        put_varint(out, u64::from(w.capacity));
        put_varint(out, w.times.len() as u64);
        let mut previous = None;
        for t in &w.times {
            match previous {
                None => put_varint(out, zigzag(t.0.wrapping_sub(base))),
                Some(p) => put_varint(out, t.0.wrapping_sub(p) as u64),
            }
            previous = Some(t.0);
        }
    }
}

fn put_dedupe(state: &CustomerState, out: &mut Vec<u8>) {
    put_varint(out, state.dedupe.len() as u64);
    put_mask(out, state.dedupe.iter().map(|&e| e != 0));
    for &e in state.dedupe.iter().filter(|&&e| e != 0) {
        out.extend_from_slice(&e.to_le_bytes());
    }
    put_varint(out, state.dedupe_floor);
}

fn put_awaiting(state: &CustomerState, out: &mut Vec<u8>) {
    let Some(fence) = state.fence else {
        put_varint(out, 0);
        put_varint(out, 0);
        return;
    };
    put_varint(out, fence as u64 + 1);
    put_varint(out, state.awaiting.len() as u64);
    let mut previous = None;
    for &offset in &state.awaiting {
        match previous {
            None => put_varint(out, (fence - offset) as u64),
            Some(p) => put_varint(out, (offset - p) as u64),
        }
        previous = Some(offset);
    }
}

/// Reads a customer state written by any known format version.
pub fn decode(bytes: &[u8]) -> Result<CustomerState, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    let mut r = Reader::new(body);
    let state = match version {
        1..=5 => decode_body(&mut r, version)?,
        other => return Err(DecodeError::UnknownVersion(other)),
    };
    match r.remaining() {
        0 => Ok(state),
        n => Err(DecodeError::Trailing(n)),
    }
}

/// Versions 1 to 4 (see the module docs for how they differ).
fn decode_body(r: &mut Reader<'_>, version: u8) -> Result<CustomerState, DecodeError> {
    let flags = r.byte("flags")?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(DecodeError::Invalid("flags"));
    }
    let mut state = CustomerState {
        conversion_pending: flags & CONVERSION_PENDING != 0,
        cancelled: flags & CANCELLED != 0,
        band: [None, Some(Band::Low), Some(Band::Medium), Some(Band::High)]
            [usize::from(flags >> BAND_SHIFT)],
        stage: match r.varint("stage")? {
            0 => None,
            n => Some(u8::try_from(n - 1).map_err(|_| DecodeError::Invalid("stage"))?),
        },
        stage_seq: r.varint_u32("stage_seq")?,
        churn_seq: r.varint_u32("churn_seq")?,
        touchpoints: r.varint_u32("touchpoints")?,
        purchases: r.varint_u32("purchases")?,
        active_window: r.varint_u32("active_window")?.wrapping_sub(1),
        first_seen: EventTime::MIN,
        consent_at: EventTime::MIN,
        ..CustomerState::default()
    };
    let base = read_times(r, &mut state)?;
    state.windows = read_windows(r, base)?;
    state.churn_signals = read_churn(r, base)?;
    if version == 1 {
        read_dedupe_v1(r, &mut state)?;
    } else {
        read_dedupe(r, &mut state)?;
    }
    read_awaiting(r, &mut state)?;
    if version >= 3 {
        let present = r.byte("latest scores")?;
        if present >> (FIRST_SEEN_BIT + 1) != 0 {
            return Err(DecodeError::Invalid("latest scores"));
        }
        for (i, score) in (0..).zip(&mut state.latest_scores) {
            if present & (1 << i) != 0 {
                let v = r.byte("latest scores")?;
                *score = Some(v).filter(|&v| v != u8::MAX);
                if score.is_none() {
                    return Err(DecodeError::Invalid("latest scores"));
                }
            }
        }
        if present & (1 << FIRST_SEEN_BIT) != 0 {
            state.first_seen = EventTime(unzigzag(r.varint("first_seen")?).wrapping_add(base));
            if state.first_seen == EventTime::MIN {
                return Err(DecodeError::Invalid("first_seen"));
            }
        }
    }
    if version >= 4 {
        read_consent(r, base, &mut state)?;
    }
    if version >= 5 {
        read_moments(r, base, &mut state)?;
    }
    Ok(state)
}

fn read_times(r: &mut Reader<'_>, state: &mut CustomerState) -> Result<i64, DecodeError> {
    let present = r.mask(5, "times")?;
    let mut read = |i: usize, base: i64, absent: EventTime| -> Result<EventTime, DecodeError> {
        if !present.get(i) {
            return Ok(absent);
        }
        let t = EventTime(unzigzag(r.varint("times")?).wrapping_add(base));
        // The absent value is not written as present: that would be a second encoding.
        if t == absent {
            return Err(DecodeError::Invalid("times"));
        }
        Ok(t)
    };
    state.last_seen = read(0, 0, EventTime::MIN)?;
    let base = if present.get(0) { state.last_seen.0 } else { 0 };
    state.stage_since = read(1, base, EventTime::MIN)?;
    state.first_purchase = read(2, base, EventTime::MIN)?;
    state.last_purchase = read(3, base, EventTime::MIN)?;
    state.churn_due = read(4, base, EventTime::MAX)?;
    Ok(base)
}

fn read_windows(r: &mut Reader<'_>, base: i64) -> Result<Vec<WindowState>, DecodeError> {
    let n = r.count(2, "windows")?;
    let mut windows = Vec::with_capacity(n);
    for _ in 0..n {
        let capacity = r.varint_u32("window capacity")?;
        let used = r.count(1, "window times")?;
        if used > capacity as usize {
            return Err(DecodeError::Invalid("window times"));
        }
        let mut times = Vec::with_capacity(used);
        let mut previous: Option<i64> = None;
        for _ in 0..used {
            let t = match previous {
                None => unzigzag(r.varint("window times")?).wrapping_add(base),
                Some(p) => i64::try_from(r.varint("window times")?)
                    .ok()
                    .and_then(|step| p.checked_add(step))
                    .ok_or(DecodeError::Invalid("window times"))?,
            };
            if t == i64::MIN {
                return Err(DecodeError::Invalid("window times"));
            }
            times.push(EventTime(t));
            previous = Some(t);
        }
        windows.push(WindowState { capacity, times });
    }
    Ok(windows)
}

fn read_churn(r: &mut Reader<'_>, base: i64) -> Result<Vec<Option<EventTime>>, DecodeError> {
    let n = r.count(0, "churn signals")?;
    if n > r.remaining().saturating_mul(8) {
        return Err(DecodeError::Truncated("churn signals"));
    }
    let present = r.mask(n, "churn signals")?;
    (0..n)
        .map(|i| {
            if !present.get(i) {
                return Ok(None);
            }
            let t = unzigzag(r.varint("churn signals")?).wrapping_add(base);
            if t == i64::MIN {
                return Err(DecodeError::Invalid("churn signals"));
            }
            Ok(Some(EventTime(t)))
        })
        .collect()
}

fn read_dedupe(r: &mut Reader<'_>, state: &mut CustomerState) -> Result<(), DecodeError> {
    let n = dedupe_len(r)?;
    state.dedupe = read_entries(r, n)?;
    state.dedupe_floor = r.varint("dedupe floor")?;
    Ok(())
}

/// The version-1 ring of bare fingerprints, as today's entries and floor.
fn read_dedupe_v1(r: &mut Reader<'_>, state: &mut CustomerState) -> Result<(), DecodeError> {
    let n = dedupe_len(r)?;
    let cursor = r.byte("dedupe cursor")?;
    if usize::from(cursor) >= n {
        return Err(DecodeError::Invalid("dedupe cursor"));
    }
    let fingerprints = read_entries(r, n)?;
    let (floor, entries) = dedupe::from_fingerprints(&fingerprints, state.last_seen);
    (state.dedupe, state.dedupe_floor) = (entries, floor);
    Ok(())
}

fn dedupe_len(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let n = r.varint("dedupe")?;
    if !(1..=u64::from(u8::MAX)).contains(&n) {
        return Err(DecodeError::Invalid("dedupe"));
    }
    Ok(n as usize)
}

fn read_entries(r: &mut Reader<'_>, n: usize) -> Result<Vec<u64>, DecodeError> {
    let occupied = r.mask(n, "dedupe")?;
    let mut entries = vec![0; n];
    for (i, e) in entries.iter_mut().enumerate() {
        if occupied.get(i) {
            *e = r.u64_le("dedupe")?;
            if *e == 0 {
                return Err(DecodeError::Invalid("dedupe"));
            }
        }
    }
    Ok(entries)
}

fn read_awaiting(r: &mut Reader<'_>, state: &mut CustomerState) -> Result<(), DecodeError> {
    state.fence = match r.varint("fence")? {
        0 => None,
        n => Some(i64::try_from(n - 1).map_err(|_| DecodeError::Invalid("fence"))?),
    };
    let k = r.count(1, "awaiting")?;
    let Some(fence) = state.fence else {
        return if k == 0 {
            Ok(())
        } else {
            Err(DecodeError::Invalid("awaiting"))
        };
    };
    state.awaiting.reserve(k);
    let mut previous: Option<i64> = None;
    for _ in 0..k {
        let step = i64::try_from(r.varint("awaiting")?).ok();
        let offset = match previous {
            None => step.map(|back| fence - back).filter(|&o| o >= 0),
            Some(p) => step
                .filter(|&s| s > 0)
                .and_then(|s| p.checked_add(s))
                .filter(|&o| o <= fence),
        }
        .ok_or(DecodeError::Invalid("awaiting"))?;
        state.awaiting.push(offset);
        previous = Some(offset);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
