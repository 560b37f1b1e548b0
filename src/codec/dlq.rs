//! Dead-letter records: rejected input on the `[outputs] dlq` topic
//! (`journey.dlq`, docs/outputs.md#the-dead-letter-topic).
//!
//! A dead-letter record is the rejected message as it arrived: its value is
//! the original bytes, untouched, and its key the original key (none when
//! the message had none). Where it came from and why it was rejected travel
//! in headers. **The header names and values are a public contract** for
//! operators, dashboards and re-drive tools; add headers rather than change
//! these:
//!
//! | Header                      | Value                                               |
//! |-----------------------------|-----------------------------------------------------|
//! | `journeyd.source.topic`     | the input topic, UTF-8                              |
//! | `journeyd.source.partition` | the input partition, decimal ASCII (`"3"`)          |
//! | `journeyd.source.offset`    | the message's offset there, decimal ASCII           |
//! | `journeyd.error.reason`     | the reason label, e.g. `invalid_json` (see below)   |
//! | `journeyd.error.detail`     | what exactly was wrong, UTF-8, at most 1 KiB        |
//! | `journeyd.original.truncated` | `"true"`, only when the value was cut to fit the dead-letter topic |
//! | `journeyd.original.size`    | the original value's size in bytes, decimal ASCII, only when cut |
//!
//! The value is cut only when the original is larger than
//! `limits.max_message_bytes` or than what the dead-letter topic was seen
//! to take ([`DeadLetter::cut_to`]).
//!
//! The reason is [`InvalidReason::as_str`], the same label as the `reason`
//! of `journeyd_events_invalid_total`: `invalid_json`, `invalid_avro`,
//! `missing_event_id`, `missing_customer_id`, `timestamp_too_old`,
//! `timestamp_in_future`, `oversized`, `unknown_schema_id`, `truncated` or
//! `invalid_field`. The detail is for people, not for matching: its wording
//! may change, and a longer one is cut to [`MAX_DETAIL_BYTES`] on a
//! character boundary.
//!
//! This module builds the parts of the record and allocates nothing; it
//! uses no Kafka client type; the sink turns them into its producer's
//! record and headers.
//!
//! ```
//! use journeyd::codec::InvalidReason;
//! use journeyd::codec::dlq::DeadLetter;
//!
//! let letter = DeadLetter {
//!     original: b"{not json",
//!     key: Some(b"c1"),
//!     source_topic: "touchpoints",
//!     partition: 3,
//!     offset: 1207,
//!     reason: InvalidReason::InvalidJson,
//!     detail: "key must be a string at line 1 column 2",
//! };
//! let headers = letter.headers();
//! assert_eq!(headers[1].0, "journeyd.source.partition");
//! assert_eq!(headers[1].1.as_bytes(), b"3");
//! assert_eq!(headers[3].1.as_bytes(), b"invalid_json");
//! ```

use super::InvalidReason;

/// Header: the topic the rejected message was read from.
pub const SOURCE_TOPIC: &str = "journeyd.source.topic";
/// Header: its partition, in decimal.
pub const SOURCE_PARTITION: &str = "journeyd.source.partition";
/// Header: its offset in that partition, in decimal.
pub const SOURCE_OFFSET: &str = "journeyd.source.offset";
/// Header: the stable reason label, [`InvalidReason::as_str`].
pub const ERROR_REASON: &str = "journeyd.error.reason";
/// Header: the human-readable detail, at most [`MAX_DETAIL_BYTES`].
pub const ERROR_DETAIL: &str = "journeyd.error.detail";

/// Header: the dead letter's value is cut (`"true"`).
pub const ORIGINAL_TRUNCATED: &str = "journeyd.original.truncated";
/// Header: the size of the value before it was cut, in decimal.
pub const ORIGINAL_SIZE: &str = "journeyd.original.size";

/// Every header name, in the order [`DeadLetter::headers`] writes them.
pub const HEADER_NAMES: [&str; 5] = [
    SOURCE_TOPIC,
    SOURCE_PARTITION,
    SOURCE_OFFSET,
    ERROR_REASON,
    ERROR_DETAIL,
];

/// The longest `journeyd.error.detail` value, in bytes (1 KiB).
pub const MAX_DETAIL_BYTES: usize = 1024;

/// A rejected input message and why it was rejected, borrowed from the
/// consumed message and its [`Invalid`](super::Invalid).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLetter<'a> {
    /// The message value as consumed: the dead-letter value, byte for byte.
    pub original: &'a [u8],
    /// The message key as consumed: the dead-letter key.
    pub key: Option<&'a [u8]>,
    /// Where the message was read from, for operators to find and re-drive it.
    pub source_topic: &'a str,
    /// The partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// The low-cardinality reason: the reason header.
    pub reason: InvalidReason,
    /// The free-form detail; cut to [`MAX_DETAIL_BYTES`] in the header.
    pub detail: &'a str,
}

impl<'a> DeadLetter<'a> {
    /// The dead-letter record value: the original bytes.
    pub const fn value(&self) -> &'a [u8] {
        self.original
    }

    /// The headers, named by [`HEADER_NAMES`] in that order.
    pub fn headers(&self) -> [(&'static str, HeaderValue<'a>); 5] {
        [
            (SOURCE_TOPIC, HeaderValue::Text(self.source_topic)),
            (
                SOURCE_PARTITION,
                HeaderValue::Integer(Decimal::new(i64::from(self.partition))),
            ),
            (
                SOURCE_OFFSET,
                HeaderValue::Integer(Decimal::new(self.offset)),
            ),
            (ERROR_REASON, HeaderValue::Text(self.reason.as_str())),
            (
                ERROR_DETAIL,
                HeaderValue::Text(truncate_detail(self.detail)),
            ),
        ]
    }
}

/// A dead-letter record as sent: the value and every header; see
/// [`DeadLetter::cut_to`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeadLetterRecord<'a> {
    /// The original bytes, cut to the limit.
    pub value: &'a [u8],
    headers: [(&'static str, HeaderValue<'a>); 7],
    len: usize,
}

impl<'a> DeadLetterRecord<'a> {
    /// The headers: [`HEADER_NAMES`], then [`ORIGINAL_TRUNCATED`] and
    /// [`ORIGINAL_SIZE`] when the value was cut.
    pub fn headers(&self) -> &[(&'static str, HeaderValue<'a>)] {
        &self.headers[..self.len]
    }
}

impl<'a> DeadLetter<'a> {
    /// The record for a topic that takes values of at most `limit` bytes:
    /// the original cut to `limit`, and the headers, with the two that say
    /// so when it was cut. Allocates nothing.
    pub fn cut_to(&self, limit: usize) -> DeadLetterRecord<'a> {
        let original = self.original;
        let value = &original[..original.len().min(limit)];
        let [a, b, c, d, e] = self.headers();
        let size = i64::try_from(original.len()).unwrap_or(i64::MAX);
        let cut = [
            (ORIGINAL_TRUNCATED, HeaderValue::Text("true")),
            (ORIGINAL_SIZE, HeaderValue::Integer(Decimal::new(size))),
        ];
        DeadLetterRecord {
            value,
            headers: [a, b, c, d, e, cut[0], cut[1]],
            len: if value.len() < original.len() { 7 } else { 5 },
        }
    }
}

/// `detail` cut to at most [`MAX_DETAIL_BYTES`], never inside a character.
pub fn truncate_detail(detail: &str) -> &str {
    let end = detail.floor_char_boundary(MAX_DETAIL_BYTES);
    detail.get(..end).unwrap_or_default()
}

/// The value of one dead-letter header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// UTF-8 text borrowed from the dead letter.
    Text(&'a str),
    /// An integer in decimal ASCII, held inline.
    Integer(Decimal),
}

impl HeaderValue<'_> {
    /// The header value bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.as_str().as_bytes()
    }

    /// The header value; always UTF-8.
    pub fn as_str(&self) -> &str {
        match self {
            HeaderValue::Text(text) => text,
            HeaderValue::Integer(n) => n.as_str(),
        }
    }
}

/// An `i64` written in decimal without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// Right-aligned ASCII; `i64::MIN` needs all 20 bytes.
    digits: [u8; 20],
    /// Where the text starts in `digits`.
    start: usize,
}

impl Decimal {
    /// `n` in decimal, with a leading `-` when negative.
    pub fn new(n: i64) -> Decimal {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        let mut rest = n.unsigned_abs();
        loop {
            start -= 1;
            digits[start] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        if n < 0 {
            start -= 1;
            digits[start] = b'-';
        }
        Decimal { digits, start }
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        let ascii = self.digits.get(self.start..).unwrap_or_default();
        std::str::from_utf8(ascii).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(detail: &str) -> DeadLetter<'_> {
        DeadLetter {
            original: b"\x00\x00\x00\x00\x2a\xff",
            key: Some(b"c1"),
            source_topic: "touchpoints.eu",
            partition: 11,
            offset: 9_007_199_254_740_993,
            reason: InvalidReason::UnknownSchemaId,
            detail,
        }
    }

    fn texts<'a>(headers: &'a [(&'static str, HeaderValue<'_>)]) -> Vec<(&'static str, &'a str)> {
        headers.iter().map(|(n, v)| (*n, v.as_str())).collect()
    }

    #[test]
    fn headers_name_the_source_and_the_reason() {
        let headers = letter("schema id 42").headers();
        assert_eq!(
            texts(&headers),
            [
                ("journeyd.source.topic", "touchpoints.eu"),
                ("journeyd.source.partition", "11"),
                ("journeyd.source.offset", "9007199254740993"),
                ("journeyd.error.reason", "unknown_schema_id"),
                ("journeyd.error.detail", "schema id 42"),
            ]
        );
        assert_eq!(headers.map(|(n, _)| n), HEADER_NAMES);
    }

    #[test]
    fn value_and_key_are_the_original_bytes() {
        let original = [0xc3, 0x28, 0, 0xff];
        let dl = DeadLetter {
            original: &original,
            key: None,
            ..letter("")
        };
        assert!(std::ptr::eq(dl.value(), &original[..]));
        assert_eq!(dl.key, None);
        assert_eq!(letter("").key, Some(&b"c1"[..]));
    }

    #[test]
    fn every_reason_label_is_a_header_value() {
        for reason in InvalidReason::ALL {
            let dl = DeadLetter {
                reason,
                ..letter("")
            };
            assert_eq!(dl.headers()[3].1.as_bytes(), reason.as_str().as_bytes());
        }
    }

    #[test]
    fn long_details_are_cut_to_1_kib_on_a_char_boundary() {
        let exact = "a".repeat(MAX_DETAIL_BYTES);
        assert_eq!(truncate_detail(&exact), exact);
        let ascii = "b".repeat(MAX_DETAIL_BYTES + 1);
        assert_eq!(truncate_detail(&ascii), &ascii[..MAX_DETAIL_BYTES]);
        // 'é' is 2 bytes: byte 1024 falls inside the 513th, which is dropped.
        let two = format!("x{}", "é".repeat(600));
        let cut = truncate_detail(&two);
        assert_eq!(cut.len(), MAX_DETAIL_BYTES - 1);
        assert!(two.starts_with(cut));
        // A 4-byte char straddling the limit.
        let four = format!("{}🦀", "z".repeat(MAX_DETAIL_BYTES - 2));
        assert_eq!(truncate_detail(&four), &four[..MAX_DETAIL_BYTES - 2]);
        let header = letter(&two).headers()[4].1;
        assert_eq!(header.as_str(), cut);
        assert_eq!(truncate_detail(""), "");
    }

    #[test]
    fn a_cut_value_says_so_in_two_more_headers() {
        let whole = letter("").cut_to(6);
        assert_eq!(whole.value, letter("").original);
        assert_eq!(whole.headers(), letter("").headers());
        let cut = letter("").cut_to(4);
        assert_eq!(cut.value, &letter("").original[..4]);
        assert_eq!(
            texts(cut.headers())[5..],
            [(ORIGINAL_TRUNCATED, "true"), (ORIGINAL_SIZE, "6")]
        );
    }

    #[test]
    fn decimals_cover_the_whole_range() {
        for n in [0, 7, -1, 10, i64::from(i32::MIN), i64::MAX, i64::MIN] {
            assert_eq!(Decimal::new(n).as_str(), n.to_string());
        }
        let dl = DeadLetter {
            partition: -1,
            offset: -1001,
            ..letter("")
        };
        assert_eq!(
            texts(&dl.headers())[1..3],
            [(SOURCE_PARTITION, "-1"), (SOURCE_OFFSET, "-1001")]
        );
    }

    proptest::proptest! {
        #[test]
        fn decimals_match_display(n: i64) {
            let decimal = Decimal::new(n);
            proptest::prop_assert_eq!(decimal.as_str(), n.to_string());
        }

        #[test]
        fn details_are_prefixes_within_the_limit(detail in ".{0,800}") {
            let cut = truncate_detail(&detail);
            proptest::prop_assert!(detail.starts_with(cut));
            if detail.len() <= MAX_DETAIL_BYTES {
                proptest::prop_assert_eq!(cut, &detail[..]);
            } else {
                // Only the character straddling the limit is dropped.
                proptest::prop_assert!((MAX_DETAIL_BYTES - 3..=MAX_DETAIL_BYTES).contains(&cut.len()));
            }
        }
    }
}
