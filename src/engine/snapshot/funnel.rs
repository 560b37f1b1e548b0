//! The changelog value of one partition's funnel windows, as versioned
//! bytes: the counts that partition's customers added to the windows that
//! are still open for it, and its floor ([`crate::engine::funnel`]).
//!
//! # Format, version 5
//!
//! Little-endian and hand-written like the customer state (`varint`, `zz`
//! as there). Columns are named by the journey model's stable numbers (stage
//! ordinals), not by the engine's indices, so a value written under another
//! model restores what still fits it.
//!
//! ```text
//! u8      version = 5
//! u64 LE  writer: the engine that wrote it (see `Engine::set_writer`)
//! varint  window size, ms (>= 1)
//! u8      flags: bit 0 floor present (absent: none yet), others 0
//! zz      floor, if present
//! varint  stage columns n; n distinct u8 stage ordinals
//! varint  pair columns m; m distinct (u8 from, u8 to) ordinal pairs
//! varint  channel columns h (<= 13): the first h channels of `web`, `app`,
//!         `email`, `social`, `search`, `ads`, `store`, `phone`, `chat`,
//!         `support`, `referral`, `review`, `other`
//! varint  windows k; per window, ascending by start: zz start (the first),
//!         or varint start - previous start (> 0); then the scalar
//!         columns sparsely: varint p, the columns that are not zero, and
//!         for each, ascending, varint gap (column - previous column - 1,
//!         or the column for the first) and its value. The columns are n
//!         entries, m conversions, m drop-offs, active customers, revenue
//!         (millionths, zz), late events, h touchpoints per channel and m
//!         changes of the customers in flight (deadlines started less
//!         ended, zz). Then varint score rows s; per row, ascending: varint
//!         row (i < n: stage column i; n: customers in no stage yet), 7
//!         varint counts (NPS detractors, passives, promoters, CSAT
//!         responses, satisfied, CES responses, sum); varint
//!         time-to-convert rows t; per row, ascending: varint pair column
//!         (< m), 14 varint counts (`crate::engine::funnel::convert_time`);
//!         varint moment rows u; per row, ascending: varint moment index
//!         (< 16, in config order), 17 varint counts (started, completed,
//!         abandoned, then the completed ones' 14 duration buckets)
//! varint  claims c; per claim, ascending by partition: varint partition,
//!         zz floor (the writer's other parts and their floors)
//! ```
//!
//! Version 4 writes every scalar column of a window in the order above
//! (varints, revenue and changes in flight zz), then the score and
//! time-to-convert rows, and has no moment rows. Version 3 is version 4
//! without the changes in flight (read as none); version 2 is version 3
//! without the channel columns, channel counts, score rows and
//! time-to-convert rows; version 1 is version 2 without the claims.
//!
//! A partition with a few open windows takes tens of bytes; a window takes
//! about 2 bytes per count that is not zero. A backlog read faster in one
//! partition than the others can hold thousands of windows open (the
//! watermark waits for the slowest), so the window is what must stay
//! small: most of its columns are zero. Decoding
//! rejects what [`super::decode`] rejects, and allocates in proportion to
//! the input's size only.

use super::DecodeError;
use super::wire::{Reader, put_varint, unzigzag, zigzag};
use crate::config::MAX_MOMENTS;
use crate::engine::funnel::Accumulator;
use crate::engine::funnel::CHANNELS;

/// The funnel record format version [`encode_funnel`] writes.
pub const FUNNEL_FORMAT_VERSION: u8 = 5;

const FLOOR_PRESENT: u8 = 1;

/// One partition's funnel windows, as persisted.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FunnelState {
    /// Which engine wrote it: the floors of one writer's records are
    /// settled together on restore.
    pub writer: u64,
    /// Window size, ms.
    pub window_ms: i64,
    /// Windows ending at or before this had been emitted, with the
    /// partition's counts, when the record was written.
    pub floor: Option<i64>,
    /// Stage ordinal of each entry column.
    pub stages: Vec<u8>,
    /// `(from, to)` stage ordinals of each conversion and drop-off column.
    pub pairs: Vec<(u8, u8)>,
    /// The windows by start, ascending, with their counts in the columns
    /// above.
    pub windows: Vec<(i64, Accumulator)>,
    /// The other partitions whose parts the writer held, ascending, each
    /// with its floor: the writer had emitted their windows up to it, with
    /// their counts (see [`crate::engine::funnel::durable`]).
    pub claims: Vec<(u32, i64)>,
}

/// Appends the current-version encoding of `state` to `out`.
pub fn encode_funnel(state: &FunnelState, out: &mut Vec<u8>) {
    out.push(FUNNEL_FORMAT_VERSION);
    out.extend_from_slice(&state.writer.to_le_bytes());
    put_varint(out, state.window_ms as u64);
    out.push(if state.floor.is_some() {
        FLOOR_PRESENT
    } else {
        0
    });
    if let Some(floor) = state.floor {
        put_varint(out, zigzag(floor));
    }
    put_varint(out, state.stages.len() as u64);
    out.extend_from_slice(&state.stages);
    put_varint(out, state.pairs.len() as u64);
    for &(from, to) in &state.pairs {
        out.extend_from_slice(&[from, to]);
    }
    put_varint(out, CHANNELS as u64);
    put_varint(out, state.windows.len() as u64);
    let mut previous = None;
    for (start, counts) in &state.windows {
        match previous {
            None => put_varint(out, zigzag(*start)),
            Some(p) => put_varint(out, start.wrapping_sub(p) as u64),
        }
        previous = Some(*start);
        put_counts(counts, out);
    }
    put_varint(out, state.claims.len() as u64);
    for &(partition, floor) in &state.claims {
        put_varint(out, u64::from(partition));
        put_varint(out, zigzag(floor));
    }
}

/// The scalar counts of a window in format 5, in their column order: the
/// entries, conversions, drop-offs, active customers, revenue, late
/// events, channels and changes in flight. Revenue and the changes in
/// flight are signed (zigzag on the wire).
fn scalar_columns(counts: &Accumulator) -> impl Iterator<Item = u64> + '_ {
    let unsigned = counts.entries.iter().chain(&counts.conversions);
    let unsigned = unsigned.chain(&counts.dropoffs).copied();
    let scalars = [
        counts.active_customers,
        zigzag(counts.revenue),
        counts.late_events,
    ];
    let channels = counts.channels.iter().copied();
    let in_flight = counts.in_flight.iter().map(|&n| zigzag(n));
    unsigned.chain(scalars).chain(channels).chain(in_flight)
}

/// A window's counts in format 5: the scalar columns sparsely (how many
/// are not zero, then each as the gap since the previous one and its
/// value), then the score, time-to-convert and moment rows.
fn put_counts(counts: &Accumulator, out: &mut Vec<u8>) {
    let present = scalar_columns(counts).filter(|&v| v != 0).count();
    put_varint(out, present as u64);
    let mut next = 0u64;
    for (column, value) in (0u64..).zip(scalar_columns(counts)) {
        if value != 0 {
            put_varint(out, column - next);
            put_varint(out, value);
            next = column + 1;
        }
    }
    put_rows(&counts.scores, out);
    put_rows(&counts.convert_times, out);
    put_rows(&counts.moments, out);
}

/// The rows with a count: how many, then each with its index.
fn put_rows<const N: usize>(rows: &[[u64; N]], out: &mut Vec<u8>) {
    let counted = || {
        (0u64..)
            .zip(rows)
            .filter(|(_, row)| row.iter().any(|&n| n > 0))
    };
    put_varint(out, counted().count() as u64);
    for (i, row) in counted() {
        put_varint(out, i);
        for &n in row {
            put_varint(out, n);
        }
    }
}

/// Reads a funnel record written by any known format version.
pub fn decode_funnel(bytes: &[u8]) -> Result<FunnelState, DecodeError> {
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    let mut r = Reader::new(body);
    let state = match version {
        1..=5 => {
            let mut state = decode_body(&mut r, version)?;
            if version >= 2 {
                state.claims = read_claims(&mut r)?;
            }
            state
        }
        other => return Err(DecodeError::UnknownVersion(other)),
    };
    match r.remaining() {
        0 => Ok(state),
        n => Err(DecodeError::Trailing(n)),
    }
}

/// Everything but the claims, of a record of `version`.
fn decode_body(r: &mut Reader<'_>, version: u8) -> Result<FunnelState, DecodeError> {
    let writer = r.u64_le("writer")?;
    let window_ms = i64::try_from(r.varint("window size")?)
        .ok()
        .filter(|&ms| ms >= 1)
        .ok_or(DecodeError::Invalid("window size"))?;
    let floor = match r.byte("flags")? {
        0 => None,
        FLOOR_PRESENT => Some(unzigzag(r.varint("floor")?)),
        _ => return Err(DecodeError::Invalid("flags")),
    };
    let n = r.count(1, "stages")?;
    let stages = r.take(n, "stages")?.to_vec();
    let m = r.count(2, "pairs")?;
    let pairs: Vec<(u8, u8)> = r
        .take(2 * m, "pairs")?
        .chunks(2)
        .map(|p| (p[0], p[1]))
        .collect();
    if has_duplicates(&stages) || has_duplicates(&pairs) {
        return Err(DecodeError::Invalid("columns"));
    }
    let h = if version >= 3 {
        r.count(0, "channels")?
    } else {
        0
    };
    if h > CHANNELS {
        return Err(DecodeError::Invalid("channels"));
    }
    let windows = read_windows(r, Shape { n, m, h, version })?;
    Ok(FunnelState {
        writer,
        window_ms,
        floor,
        stages,
        pairs,
        windows,
        claims: Vec::new(),
    })
}

fn read_claims(r: &mut Reader<'_>) -> Result<Vec<(u32, i64)>, DecodeError> {
    let c = r.count(2, "claims")?;
    let mut claims = Vec::with_capacity(c);
    for _ in 0..c {
        let partition = u32::try_from(r.varint("claim partition")?)
            .ok()
            .filter(|&p| claims.last().is_none_or(|&(last, _)| p > last))
            .ok_or(DecodeError::Invalid("claim partition"))?;
        claims.push((partition, unzigzag(r.varint("claim floor")?)));
    }
    Ok(claims)
}

fn has_duplicates<T: Ord + Copy>(items: &[T]) -> bool {
    let mut sorted = items.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// The columns of a record's windows.
#[derive(Clone, Copy)]
struct Shape {
    /// Stage, pair and channel columns.
    n: usize,
    m: usize,
    h: usize,
    version: u8,
}

fn read_windows(r: &mut Reader<'_>, shape: Shape) -> Result<Vec<(i64, Accumulator)>, DecodeError> {
    // Every window takes at least one byte per column and count.
    let per_window = 1
        + shape.n
        + 2 * shape.m
        + 3
        + shape.h
        + 2 * usize::from(shape.version >= 3)
        + shape.m * usize::from(shape.version >= 4);
    // Format 5 is sparse: a window takes at least its start, the count of
    // its scalar columns and the counts of its three kinds of rows.
    let per_window = if shape.version >= 5 { 5 } else { per_window };
    let k = r.count(per_window, "windows")?;
    let mut windows = Vec::with_capacity(k);
    let mut previous: Option<i64> = None;
    for _ in 0..k {
        let start = match previous {
            None => unzigzag(r.varint("window start")?),
            Some(p) => i64::try_from(r.varint("window start")?)
                .ok()
                .filter(|&step| step > 0)
                .and_then(|step| p.checked_add(step))
                .ok_or(DecodeError::Invalid("window start"))?,
        };
        previous = Some(start);
        windows.push((start, read_counts(r, shape)?));
    }
    Ok(windows)
}

fn read_counts(r: &mut Reader<'_>, shape: Shape) -> Result<Accumulator, DecodeError> {
    if shape.version >= 5 {
        return read_sparse_counts(r, shape);
    }
    let mut column = |n: usize| {
        (0..n)
            .map(|_| r.varint("counts"))
            .collect::<Result<Vec<_>, _>>()
    };
    let entries = column(shape.n)?;
    let conversions = column(shape.m)?;
    let dropoffs = column(shape.m)?;
    let mut counts = Accumulator {
        entries,
        conversions,
        dropoffs,
        active_customers: r.varint("counts")?,
        revenue: unzigzag(r.varint("revenue")?),
        late_events: r.varint("counts")?,
        channels: [0; CHANNELS],
        scores: Vec::new(),
        convert_times: Vec::new(),
        in_flight: vec![0; shape.m],
        moments: Vec::new(),
    };
    if shape.version < 3 {
        return Ok(counts);
    }
    for n in &mut counts.channels[..shape.h] {
        *n = r.varint("channels")?;
    }
    counts.scores = read_rows(r, shape.n + 1, "score row")?;
    counts.convert_times = read_rows(r, shape.m, "time-to-convert row")?;
    if shape.version >= 4 {
        for n in &mut counts.in_flight {
            *n = unzigzag(r.varint("in flight")?);
        }
    }
    Ok(counts)
}

/// A window's counts in format 5 ([`put_counts`]).
fn read_sparse_counts(r: &mut Reader<'_>, shape: Shape) -> Result<Accumulator, DecodeError> {
    let (n, m, h) = (shape.n, shape.m, shape.h);
    let mut counts = Accumulator {
        entries: vec![0; n],
        conversions: vec![0; m],
        dropoffs: vec![0; m],
        active_customers: 0,
        revenue: 0,
        late_events: 0,
        channels: [0; CHANNELS],
        scores: Vec::new(),
        convert_times: Vec::new(),
        in_flight: vec![0; m],
        moments: Vec::new(),
    };
    let columns = n + 3 * m + 3 + h;
    let present = r.count(2, "counts")?;
    if present > columns {
        return Err(DecodeError::Invalid("counts"));
    }
    let mut next = 0usize;
    for _ in 0..present {
        let column = usize::try_from(r.varint("counts")?)
            .ok()
            .and_then(|gap| next.checked_add(gap))
            .filter(|&c| c < columns)
            .ok_or(DecodeError::Invalid("counts"))?;
        next = column + 1;
        let value = r.varint("counts")?;
        // Where the active customers', the channels' and the changes in
        // flight's columns start.
        let active = n + 2 * m;
        let (channels, in_flight) = (active + 3, active + 3 + h);
        match column {
            c if c < n => counts.entries[c] = value,
            c if c < n + m => counts.conversions[c - n] = value,
            c if c < active => counts.dropoffs[c - n - m] = value,
            c if c == active => counts.active_customers = value,
            c if c == active + 1 => counts.revenue = unzigzag(value),
            c if c == active + 2 => counts.late_events = value,
            c if c < in_flight => counts.channels[c - channels] = value,
            c => counts.in_flight[c - in_flight] = unzigzag(value),
        }
    }
    counts.scores = read_rows(r, n + 1, "score row")?;
    counts.convert_times = read_rows(r, m, "time-to-convert row")?;
    counts.moments = read_rows(r, MAX_MOMENTS, "moment row")?;
    // Only as many rows as the last one with a count.
    let used = (counts.moments.iter()).rposition(|row| row.iter().any(|&n| n > 0));
    counts.moments.truncate(used.map_or(0, |i| i + 1));
    Ok(counts)
}

/// Rows written by `put_rows`, in a table of `len` rows (empty if none).
fn read_rows<const N: usize>(
    r: &mut Reader<'_>,
    len: usize,
    field: &'static str,
) -> Result<Vec<[u64; N]>, DecodeError> {
    let rows = r.count(N + 1, field)?;
    let mut table = Vec::new();
    if rows > 0 {
        table = vec![[0; N]; len];
    }
    let mut previous = None;
    for _ in 0..rows {
        let row = usize::try_from(r.varint(field)?)
            .ok()
            .filter(|&i| i < len && previous.is_none_or(|p| i > p))
            .ok_or(DecodeError::Invalid(field))?;
        previous = Some(row);
        for n in &mut table[row] {
            *n = r.varint(field)?;
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::funnel::MOMENT_COLUMNS;

    fn state() -> FunnelState {
        let counts = |entries: Vec<u64>, dropoffs: u64, revenue: i64| Accumulator {
            entries,
            conversions: vec![1, 0],
            dropoffs: vec![0, dropoffs],
            active_customers: 4,
            revenue,
            late_events: 1,
            channels: [2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3],
            scores: vec![[0; 7], [1, 0, 2, 1, 1, 2, 9], [0; 7], [0, 0, 0, 0, 0, 1, 7]],
            convert_times: vec![[0; 14], [0, 3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]],
            in_flight: vec![2, -1],
            moments: vec![[0; MOMENT_COLUMNS], {
                let mut row = [0; MOMENT_COLUMNS];
                row[..5].copy_from_slice(&[4, 2, 1, 1, 1]);
                row
            }],
        };
        FunnelState {
            writer: 0x0123_4567_89ab_cdef,
            window_ms: 60_000,
            floor: Some(1_767_225_540_000),
            stages: vec![0, 1, 3],
            pairs: vec![(1, 2), (2, 3)],
            windows: vec![
                (1_767_225_600_000, counts(vec![0, 2, 1], 3, 59_900_000)),
                (1_767_225_720_000, counts(vec![1, 0, 0], 0, -5)),
            ],
            claims: vec![(2, 1_767_225_540_000), (5, 1_767_225_480_000)],
        }
    }

    #[test]
    fn round_trips() {
        let no_floor = FunnelState {
            floor: None,
            ..state()
        };
        for s in [state(), FunnelState::default(), no_floor] {
            let s = FunnelState {
                window_ms: s.window_ms.max(1),
                ..s
            };
            let mut bytes = Vec::new();
            encode_funnel(&s, &mut bytes);
            assert_eq!(decode_funnel(&bytes), Ok(s));
        }
        let mut bytes = Vec::new();
        encode_funnel(&state(), &mut bytes);
        // A moment row is 18 bytes (index and 17 small counts), one per window.
        assert!(bytes.len() < 220, "{} bytes", bytes.len());
    }

    #[test]
    fn claims_and_score_rows_ascend() {
        let mut unordered = state();
        unordered.claims.reverse();
        let mut bytes = Vec::new();
        encode_funnel(&unordered, &mut bytes);
        assert_eq!(
            decode_funnel(&bytes),
            Err(DecodeError::Invalid("claim partition"))
        );
        let mut beyond = state();
        beyond.windows[0].1.scores.push([1; 7]);
        bytes.clear();
        encode_funnel(&beyond, &mut bytes);
        assert_eq!(
            decode_funnel(&bytes),
            Err(DecodeError::Invalid("score row"))
        );
    }

    #[test]
    fn rejects_what_it_did_not_write() {
        let mut bytes = Vec::new();
        encode_funnel(&state(), &mut bytes);
        assert_eq!(decode_funnel(&[]), Err(DecodeError::Empty));
        assert_eq!(decode_funnel(&[9]), Err(DecodeError::UnknownVersion(9)));
        for cut in 1..bytes.len() {
            assert!(decode_funnel(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode_funnel(&trailing), Err(DecodeError::Trailing(1)));
        let mut duplicate = FunnelState {
            stages: vec![1, 1],
            windows: Vec::new(),
            ..state()
        };
        let mut out = Vec::new();
        encode_funnel(&duplicate, &mut out);
        assert_eq!(decode_funnel(&out), Err(DecodeError::Invalid("columns")));
        duplicate.stages = vec![1];
        duplicate.window_ms = 0;
        out.clear();
        encode_funnel(&duplicate, &mut out);
        assert_eq!(
            decode_funnel(&out),
            Err(DecodeError::Invalid("window size"))
        );
    }

    #[test]
    fn a_huge_window_count_is_truncation_not_an_allocation() {
        let mut bytes = vec![FUNNEL_FORMAT_VERSION];
        bytes.extend_from_slice(&0u64.to_le_bytes());
        bytes.extend_from_slice(&[60, 0, 0, 0, 0]);
        put_varint(&mut bytes, u64::MAX / 4);
        assert_eq!(
            decode_funnel(&bytes),
            Err(DecodeError::Truncated("windows"))
        );
    }
}
