//! Caps on the MIME structure, checked on the raw bytes before mail-parser runs.
//!
//! mail-parser 0.11.9 has no limit on parts, header fields or time, and its memory is per
//! part (a `MessagePart` is 160 bytes, a `Header` 120): 25 MiB of `"--a\r\n\r\n"` under
//! `boundary=a` (adversarial MIME-03) would become millions of parts and gigabytes. So the
//! bounds are computed from the bytes first, in linear time, and the parse runs only when
//! they are within the caps. What the bounds rest on (read in `parsers/message.rs` and
//! `parsers/mime.rs`):
//!
//! * **Parts.** After the first, every part starts right after a match of `--` + boundary,
//!   and mail-parser matches that *anywhere* (`ch == '-' && last_ch == '-'`), not only at line
//!   starts; matches consumed by one parse are at strictly increasing offsets. Nested
//!   `message/rfc822` parts would start without a boundary, but [`super::neutralize`] has
//!   already made every nested message opaque, and `multipart/digest` (whose children default
//!   to `message/rfc822`) with it. So `parts <= 1 + matches`.
//! * **Cheap bound.** Every match starts at a `--` pair: count the pairs, overlapping (a run
//!   of k dashes has k-1; boundaries like `----=_Part_0_1` start with dashes). One `memchr`
//!   pass that stops at the cap, so MIME-03 is refused after reading a few kilobytes.
//! * **Precise bound**, when prose, signatures, ASCII tables or HTML comments have too many
//!   `--`: collect every `boundary=` value with [`super::boundary`] (which refuses the forms
//!   whose reading it cannot predict — in both paths, so that acceptance does not depend on
//!   how many dashes the text has; at most [`MAX_BOUNDARY_BYTES`] of distinct values, so the
//!   automaton stays small), then count the distinct offsets where `--` + one of
//!   them occurs, with one overlapping Aho-Corasick pass that stops at the cap. Em-dashes
//!   (U+2014) are not ASCII dashes and never count.
//! * **Header fields in parts.** Each part's header section lies between its boundary match
//!   and the next blank line, so the line feeds in the union of those ranges bound the
//!   `Header` values mail-parser will allocate (the top-level section has its own byte cap).
//! * **Time.** A multipart whose boundary never occurs after its header section makes
//!   mail-parser scan to the end and back (`seek_next_part` restores on failure): a thousand
//!   of them would be a thousand passes over 25 MiB. At most [`MAX_UNMATCHED_BOUNDARIES`] are
//!   allowed: in the cheap path because there are no more `boundary` words than that, in the
//!   precise path by checking each declaration against the last occurrence of its boundary.
//!   Every other scan in mail-parser moves forward, so the parse is then linear.
//!
//! Nesting depth is not bounded here: mail-parser keeps its stack on the heap, so deep
//! nesting is harmless once the part count is bounded, and depth is measured exactly after
//! the parse ([`super::tree`]).

use std::collections::HashSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use super::boundary::{self, Declaration};
use super::section_end::BlankLines;
use super::{MappingError, MimeLimits};

/// Most header fields in the whole message: the top-level fields plus the bound on the fields
/// of all parts. Legitimate messages have tens; 10 000 `Header` values are about 1.2 MB.
pub const MAX_HEADER_FIELDS: usize = 10_000;

/// Most bytes of distinct boundary values the precise path searches for at once. The
/// automaton costs tens of bytes per pattern byte; legitimate messages declare a few
/// boundaries of at most 70 bytes (RFC 2046 §5.1.1).
pub const MAX_BOUNDARY_BYTES: usize = 64 * 1024;

/// Most multipart declarations whose boundary may be missing after them (see module doc).
/// Each can cost mail-parser one pass over the rest of the message.
pub const MAX_UNMATCHED_BOUNDARIES: usize = 16;

/// Checks the caps on `input` (the bytes mail-parser will parse). `top_fields` is the number
/// of fields in the top-level header section, already counted.
pub(super) fn check(
    input: &[u8],
    limits: &MimeLimits,
    top_fields: usize,
) -> Result<(), MappingError> {
    let max_matches = limits.parts.saturating_sub(1);
    let header_budget = MAX_HEADER_FIELDS.saturating_sub(top_fields);
    let few_words = count_boundary_words(input, MAX_UNMATCHED_BOUNDARIES);
    if let Some(words) = &few_words {
        // The precise path refuses these forms; refuse them here too, so that whether a
        // message is accepted does not depend on how many dashes its text has.
        for &at in words {
            if let Declaration::Unsupported(why) = boundary::declaration_at(input, at) {
                return Err(MappingError::UnsupportedBoundary(why));
            }
        }
    }
    if few_words.is_some()
        && let Some(pairs) = dash_pairs(input, max_matches)
        && part_header_bound(input, &pairs, header_budget).is_some()
    {
        return Ok(());
    }
    precise(input, limits, header_budget)
}

/// Offsets of every `--` pair, overlapping, or `None` once there are more than `max`.
fn dash_pairs(input: &[u8], max: usize) -> Option<Vec<usize>> {
    let finder = memchr::memmem::Finder::new(b"--");
    let mut pairs = Vec::new();
    let mut at = 0;
    while let Some(i) = finder.find(&input[at..]) {
        let start = at + i;
        let mut end = start + 2;
        while input.get(end) == Some(&b'-') {
            end += 1;
        }
        // A run of k dashes holds k-1 pairs, one starting at each dash but the last.
        for pair in start..end - 1 {
            if pairs.len() == max {
                return None;
            }
            pairs.push(pair);
        }
        at = end;
    }
    Some(pairs)
}

/// Offsets of every case-insensitive `boundary`, or `None` once there are more than `max`.
/// A parameter name is a contiguous token to mail-parser, so every declaration has one.
fn count_boundary_words(input: &[u8], max: usize) -> Option<Vec<usize>> {
    let finder = AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([b"boundary"])
        .ok()?;
    let mut words = Vec::new();
    for found in finder.find_iter(input) {
        if words.len() == max {
            return None;
        }
        words.push(found.start());
    }
    Some(words)
}

/// The precise bound (module doc), used when the cheap one is over a cap.
fn precise(input: &[u8], limits: &MimeLimits, header_budget: usize) -> Result<(), MappingError> {
    let words = count_boundary_words(input, limits.parts).ok_or_else(|| {
        MappingError::MimeLimit(format!("more than {} boundary declarations", limits.parts))
    })?;
    let mut declarations = Vec::new();
    for at in words {
        match boundary::declaration_at(input, at) {
            Declaration::Value(value) => declarations.push((at, value)),
            Declaration::Unsupported(why) => return Err(MappingError::UnsupportedBoundary(why)),
            Declaration::NotAssignment => {}
        }
    }
    let mut values: Vec<&[u8]> = declarations.iter().map(|&(_, value)| value).collect();
    values.sort_unstable();
    values.dedup();
    if values.iter().map(|v| v.len()).sum::<usize>() > MAX_BOUNDARY_BYTES {
        return Err(MappingError::MimeLimit(format!(
            "boundary declarations over {MAX_BOUNDARY_BYTES} bytes"
        )));
    }

    let (starts, last) = boundary_matches(input, &values, limits.parts.saturating_sub(1))?;

    let mut blanks = BlankLines::default();
    let mut unmatched = 0;
    for &(at, value) in &declarations {
        let body = blanks.end_after(input, at);
        let index = values.binary_search(&value).unwrap_or_default();
        if last
            .get(index)
            .copied()
            .flatten()
            .is_none_or(|last| last < body)
        {
            unmatched += 1;
            if unmatched > MAX_UNMATCHED_BOUNDARIES {
                return Err(MappingError::MimeLimit(format!(
                    "more than {MAX_UNMATCHED_BOUNDARIES} multipart boundaries that never occur"
                )));
            }
        }
    }
    part_header_bound(input, &starts, header_budget).ok_or_else(|| {
        MappingError::MimeLimit(format!("more than {MAX_HEADER_FIELDS} header fields"))
    })?;
    Ok(())
}

/// The sorted distinct offsets where `--` + one of `values` occurs, and the last such offset
/// for each value; [`MappingError::MimeLimit`] once there are more than `max` offsets.
type Matches = (Vec<usize>, Vec<Option<usize>>);

fn boundary_matches(input: &[u8], values: &[&[u8]], max: usize) -> Result<Matches, MappingError> {
    if values.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let patterns: Vec<Vec<u8>> = values.iter().map(|v| [b"--", *v].concat()).collect();
    let finder = AhoCorasick::builder()
        .match_kind(MatchKind::Standard)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(&patterns)
        .map_err(|_| MappingError::MimeLimit("boundary declarations too large".into()))?;
    let mut starts = HashSet::new();
    let mut last = vec![None; values.len()];
    for found in finder.find_overlapping_iter(input) {
        let slot = &mut last[found.pattern().as_usize()];
        *slot = Some(slot.map_or(found.start(), |s: usize| s.max(found.start())));
        if starts.insert(found.start()) && starts.len() > max {
            return Err(MappingError::MimeLimit(format!(
                "more than {} parts",
                max + 1
            )));
        }
    }
    let mut starts: Vec<usize> = starts.into_iter().collect();
    starts.sort_unstable();
    Ok((starts, last))
}

/// An upper bound on the header fields of all parts starting after the boundary matches at
/// `starts` (sorted), or `None` once it is over `budget`.
fn part_header_bound(input: &[u8], starts: &[usize], budget: usize) -> Option<usize> {
    // One per part for a last field ended by the end of the input rather than a line feed.
    let mut total = starts.len();
    let mut covered = 0;
    let mut blanks = BlankLines::default();
    for &start in starts {
        let end = blanks.end_after(input, start);
        let from = start.max(covered);
        if end > from {
            total += memchr::memchr_iter(b'\n', &input[from..end]).count();
            covered = end;
        }
        if total > budget {
            return None;
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn limits() -> MimeLimits {
        MimeLimits {
            header_section: 1 << 20,
            parts: 1000,
            depth: 50,
            received_headers: 50,
        }
    }

    fn multipart(boundary: &str, body: &str) -> Vec<u8> {
        format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n{body}").into_bytes()
    }

    #[test]
    fn dash_pairs_overlap() {
        assert_eq!(dash_pairs(b"a--b", 10), Some(vec![1]));
        assert_eq!(dash_pairs(b"----", 10), Some(vec![0, 1, 2]));
        assert_eq!(dash_pairs(b"-a-", 10), Some(vec![]));
        assert_eq!(dash_pairs(b"------", 4), None);
    }

    #[test]
    fn ordinary_multipart_passes_the_cheap_bound() {
        let raw = multipart(
            "b1",
            "--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1--\r\n",
        );
        assert_eq!(check(&raw, &limits(), 1), Ok(()));
    }

    #[test]
    fn mime_01_ten_thousand_nested_multiparts_are_refused() {
        let mut raw = Vec::new();
        for level in 0..10_000 {
            raw.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                    .as_bytes(),
            );
        }
        let err = check(&raw, &limits(), 1).unwrap_err();
        assert_eq!(
            err,
            MappingError::MimeLimit("more than 1000 boundary declarations".into())
        );
    }

    #[test]
    fn mime_03_25_mib_of_empty_parts_is_refused_quickly() {
        let head = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n";
        let mut raw = head.to_vec();
        while raw.len() < 25 << 20 {
            raw.extend_from_slice(b"--a\r\n\r\n");
        }
        let started = Instant::now();
        let err = check(&raw, &limits(), 1).unwrap_err();
        let took = started.elapsed();
        assert_eq!(err, MappingError::MimeLimit("more than 1000 parts".into()));
        // One pass at memchr speed; a parse would take seconds and gigabytes.
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    #[test]
    fn mime_04_boundary_forms() {
        // Unclosed: fine, bounded.
        let raw = multipart("u", "--u\r\n\r\nnever closed\r\n");
        assert_eq!(check(&raw, &limits(), 1), Ok(()));
        // A 5 000-character boundary, once the precise path reads it, is refused.
        let long = "x".repeat(5000);
        let mut raw = multipart(&long, &format!("--{long}\r\n\r\na\r\n"));
        raw.extend(b"-- ".repeat(1000));
        assert_eq!(
            check(&raw, &limits(), 1),
            Err(MappingError::UnsupportedBoundary("longer than 998 bytes"))
        );
        // Prefix boundaries: B1 and B10 both count where "--B10" occurs.
        let mut raw = multipart("B1", "--B10\r\n\r\n--B1--\r\n");
        raw.extend(b"-- ".repeat(1000));
        assert_eq!(check(&raw, &limits(), 1), Ok(()));
    }

    #[test]
    fn unsupported_boundaries_are_refused_in_both_paths() {
        let rfc2231 = b"Content-Type: multipart/mixed; boundary*=utf-8''abc\r\n\r\n--abc\r\n";
        let long = format!(
            "Content-Type: multipart/mixed; boundary={}\r\n\r\n",
            "x".repeat(5000)
        );
        for (raw, why) in [
            (
                rfc2231.to_vec(),
                "RFC 2231 encoded or continued boundary parameter",
            ),
            (long.into_bytes(), "longer than 998 bytes"),
        ] {
            // Few dashes: the cheap path.
            assert_eq!(
                check(&raw, &limits(), 1),
                Err(MappingError::UnsupportedBoundary(why))
            );
            // Many dashes: the precise path.
            let mut many = raw.clone();
            many.extend(b"-- ".repeat(1000));
            assert_eq!(
                check(&many, &limits(), 1),
                Err(MappingError::UnsupportedBoundary(why))
            );
        }
    }

    #[test]
    fn many_dashes_in_legitimate_text_are_accepted() {
        // 5 000 em-dashes, a signature separator, an ASCII table and HTML comments.
        let mut body = String::from("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
        body.push_str(&"word \u{2014} ".repeat(5000));
        body.push_str("\r\n+");
        body.push_str(&"-".repeat(3000));
        body.push_str("+\r\n| a | b |\r\n<!-- comment -->\r\n-- \r\nJane\r\n");
        body.push_str("--b1\r\nContent-Type: text/html\r\n\r\n");
        body.push_str(&"<!-- x --><p>a -- b</p>".repeat(500));
        body.push_str("\r\n--b1--\r\n");
        let raw = multipart("b1", &body);
        assert!(
            dash_pairs(&raw, 999).is_none(),
            "the cheap bound must be exceeded"
        );
        assert_eq!(check(&raw, &limits(), 1), Ok(()));
    }

    #[test]
    fn boundaries_that_never_occur_are_capped() {
        // Each part declares a multipart whose boundary only occurs inside its own header
        // section: mail-parser would scan to the end for each one.
        let mut body = String::new();
        for i in 0..40 {
            body.push_str(&format!(
                "--a\r\nContent-Type: multipart/mixed; boundary=z{i}\r\nX-Pad: --z{i}\r\n\r\nx\r\n"
            ));
        }
        let raw = multipart("a", &body);
        let err = check(&raw, &limits(), 1).unwrap_err();
        assert_eq!(
            err,
            MappingError::MimeLimit("more than 16 multipart boundaries that never occur".into())
        );
        // The same with boundaries that do occur after their sections is fine.
        let mut body = String::new();
        for i in 0..40 {
            body.push_str(&format!(
                "--a\r\nContent-Type: multipart/mixed; boundary=z{i}\r\n\r\n--z{i}\r\n\r\nx\r\n--z{i}--\r\n"
            ));
        }
        assert_eq!(check(&multipart("a", &body), &limits(), 1), Ok(()));
    }

    #[test]
    fn header_fields_in_parts_are_capped() {
        // One part whose header section has 20 000 fields.
        let mut body = String::from("--a\r\n");
        body.push_str(&"X-A: b\r\n".repeat(20_000));
        body.push_str("\r\nx\r\n--a--\r\n");
        let err = check(&multipart("a", &body), &limits(), 1).unwrap_err();
        assert_eq!(
            err,
            MappingError::MimeLimit("more than 10000 header fields".into())
        );
    }

    /// The bound must hold for whatever mail-parser makes of the bytes: random messages built
    /// from MIME fragments, a small part cap, and every accepted one parsed and counted.
    #[test]
    fn bound_holds_on_random_messages() {
        use crate::message::neutralize::neutralize;
        use mail_parser::{Message, MessageParser, PartType};

        const FRAGMENTS: &[&str] = &[
            "--a",
            "--b",
            "--ab",
            "---a",
            "--a--",
            "-",
            "\r\n",
            "\r\n\r\n",
            " ",
            "x",
            "Content-Type: multipart/mixed; boundary=a\r\n",
            "Content-Type: multipart/alternative; boundary=\"b\"\r\n",
            "Content-Type: multipart/related; boundary=ab\r\n",
            "Content-Type: multipart/digest; boundary=b\r\n",
            "Content-Type: message/rfc822\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "LS1hDQoNCi0tYQ0KDQo=\r\n",
            "=2D=2Da\r\n",
            "X: y\r\n",
            "Subject: s\r\n",
        ];
        fn count(message: &Message<'_>) -> usize {
            message
                .parts
                .iter()
                .map(|p| match &p.body {
                    PartType::Message(nested) => 1 + count(nested),
                    _ => 1,
                })
                .sum()
        }
        let limits = MimeLimits {
            header_section: 1 << 20,
            parts: 8,
            depth: 50,
            received_headers: 50,
        };
        let mut seed: u64 = 0x5eed_1234_abcd_ef01;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut accepted = 0;
        for _ in 0..4_000 {
            let mut raw = String::from("Subject: t\r\n");
            for _ in 0..(next() % 40) {
                raw.push_str(FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize]);
            }
            let defused = neutralize(raw.as_bytes());
            let input = defused.as_ref().map_or(raw.as_bytes(), |d| &d.bytes[..]);
            if check(input, &limits, 1).is_err() {
                continue;
            }
            accepted += 1;
            let parsed = MessageParser::default().parse(input).unwrap();
            let parts = count(&parsed);
            assert!(parts <= limits.parts, "{parts} parts from {raw:?}");
            assert_eq!(
                parts,
                parsed.parts.len(),
                "a nested message was parsed: {raw:?}"
            );
        }
        assert!(accepted > 200, "only {accepted} accepted");
    }

    #[test]
    fn boundary_bytes_are_capped() {
        let mut raw = Vec::new();
        for i in 0..70 {
            raw.extend(format!("boundary={i:03}{}\r\n", "b".repeat(995)).into_bytes());
        }
        raw.extend(b"-- ".repeat(1000));
        assert_eq!(
            check(&raw, &limits(), 1),
            Err(MappingError::MimeLimit(
                "boundary declarations over 65536 bytes".into()
            ))
        );
    }
}
