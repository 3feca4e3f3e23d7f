//! JSON string content for the two values too large to build as strings first: the text and
//! html bodies (escaped, every line break written `\n`) and their exact escaped length.
//!
//! Input is UTF-8 that was validated when it was decoded, so bytes of 0x80 and above are
//! copied as they are; `"`, `\` and the control characters below 0x20 are escaped as
//! serde_json escapes them. Line breaks follow the REST convention: each run of CRs followed
//! by an LF, each lone LF and each CR on its own becomes one `\n` (CRLF is the wire form;
//! Action Mailer's quoted-printable turns a CR into `=0D`, which decodes to CR CR LF; a lone
//! CR would be a bare CR if the API put the text back on the wire). The escaper is
//! resumable: a body is written in chunks, and a CR at the end of one chunk is settled by the
//! first byte of the next.

/// Where a text being escaped stands at a chunk boundary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LineState {
    /// CRs seen at the end of the input so far, not yet written.
    pending_cr: usize,
}

/// Escapes `input` (a piece of the text) into `out`, carrying line-break state in `state`.
pub(super) fn escape_text(input: &[u8], state: &mut LineState, out: &mut Vec<u8>) {
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        let byte = input[i];
        if state.pending_cr > 0 {
            // CRs left over from the previous piece: a run goes on, an LF makes the run one
            // break, anything else makes each CR a break of its own.
            match byte {
                b'\r' => state.pending_cr += 1,
                b'\n' => {
                    out.extend_from_slice(b"\\n");
                    state.pending_cr = 0;
                }
                _ => finish_text(state, out),
            }
            if byte == b'\r' || byte == b'\n' {
                i += 1;
                start = i;
                continue;
            }
        }
        if ESCAPE[byte as usize] == 0 {
            i = next_special(input, i + 1);
            continue;
        }
        out.extend_from_slice(&input[start..i]);
        match byte {
            b'\r' => {
                let mut crs = 0;
                while input.get(i) == Some(&b'\r') {
                    crs += 1;
                    i += 1;
                }
                match input.get(i) {
                    Some(b'\n') => {
                        out.extend_from_slice(b"\\n");
                        i += 1;
                    }
                    Some(_) => {
                        for _ in 0..crs {
                            out.extend_from_slice(b"\\n");
                        }
                    }
                    // The end of this piece: the next one decides.
                    None => state.pending_cr = crs,
                }
                start = i;
                continue;
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            control => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(control >> 4) as usize]);
                out.push(HEX[(control & 0xf) as usize]);
            }
        }
        i += 1;
        start = i;
    }
    out.extend_from_slice(&input[start..]);
}

/// Writes what `state` still holds at the end of the text.
pub(super) fn finish_text(state: &mut LineState, out: &mut Vec<u8>) {
    for _ in 0..std::mem::take(&mut state.pending_cr) {
        out.extend_from_slice(b"\\n");
    }
}

/// The escaped length of a whole text, without building it.
pub(super) fn escaped_len(text: &[u8]) -> usize {
    let mut len = 0;
    let mut i = 0;
    while i < text.len() {
        let byte = text[i];
        len += match byte {
            b'\r' => {
                let mut crs = 0;
                while text.get(i) == Some(&b'\r') {
                    crs += 1;
                    i += 1;
                }
                if text.get(i) == Some(&b'\n') {
                    i += 1;
                    2
                } else {
                    2 * crs
                }
            }
            _ => match ESCAPE[byte as usize] {
                0 => {
                    let next = next_special(text, i + 1);
                    let run = next - i;
                    i = next;
                    run
                }
                2 => {
                    i += 1;
                    2
                }
                _ => {
                    i += 1;
                    6
                }
            },
        };
    }
    len
}

/// The index of the first byte at or after `from` that is escaped (below 0x20, `"` or `\`),
/// or the length. Eight bytes at a time (SWAR): texts are long runs of plain characters.
fn next_special(bytes: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        // A byte below 0x20, or equal to `"` or `\`, sets its high bit here; the lowest set
        // bit is exact (borrows only move upwards).
        let below = w.wrapping_sub(ONES * 0x20) & !w;
        let quote =
            (w ^ (ONES * u64::from(b'"'))).wrapping_sub(ONES) & !(w ^ (ONES * u64::from(b'"')));
        let slash =
            (w ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES) & !(w ^ (ONES * u64::from(b'\\')));
        let hits = (below | quote | slash) & HIGH;
        if hits != 0 {
            return i + (hits.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() && ESCAPE[bytes[i] as usize] == 0 {
        i += 1;
    }
    i
}

/// 0: copied; 2: a two-byte escape (`\n`, `\"`, `\\`, `\t`, `\b`, `\f`; CR is handled
/// apart); 6: `\u00XX`.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = 6;
        byte += 1;
    }
    table[b'\n' as usize] = 2;
    table[b'\r' as usize] = 2;
    table[b'\t' as usize] = 2;
    table[0x08] = 2;
    table[0x0c] = 2;
    table[b'"' as usize] = 2;
    table[b'\\' as usize] = 2;
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(text: &str) -> String {
        let mut out = Vec::new();
        let mut state = LineState::default();
        escape_text(text.as_bytes(), &mut state, &mut out);
        finish_text(&mut state, &mut out);
        assert_eq!(
            out.len(),
            escaped_len(text.as_bytes()),
            "length of {text:?}"
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn line_breaks_are_normalised() {
        assert_eq!(whole("a\r\nb\nc\r\r\nd"), r"a\nb\nc\nd");
        assert_eq!(whole("a\rb\r\rc\r"), r"a\nb\n\nc\n");
        assert_eq!(whole(""), "");
    }

    #[test]
    fn escapes_match_serde_json() {
        let text = "caf\u{e9} \"q\" \\ \t\u{0}\u{1f}\u{8}\u{c}\u{7f} \u{2028} \u{1F600}";
        let expected = serde_json::to_string(text).unwrap();
        assert_eq!(format!("\"{}\"", whole(text)), expected);
    }

    #[test]
    fn the_word_scan_finds_exactly_the_first_special_byte() {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|k| {
                    let b = (seed.rotate_left(k as u32 * 7) & 0xff) as u8;
                    if b.is_multiple_of(5) {
                        b
                    } else {
                        b'a' + (b % 26)
                    }
                })
                .collect();
            let from = (seed >> 40) as usize % (len + 1);
            let expected = (from..len)
                .find(|&i| ESCAPE[bytes[i] as usize] != 0)
                .unwrap_or(len);
            assert_eq!(
                next_special(&bytes, from),
                expected,
                "{bytes:?} from {from}"
            );
        }
    }

    #[test]
    fn any_split_gives_the_same_output() {
        let text = b"a\r\r\nb\r\rc\r\n\"\\\x01\r";
        let reference = whole(std::str::from_utf8(text).unwrap());
        for cut in 0..=text.len() {
            for cut2 in cut..=text.len() {
                let mut out = Vec::new();
                let mut state = LineState::default();
                escape_text(&text[..cut], &mut state, &mut out);
                escape_text(&text[cut..cut2], &mut state, &mut out);
                escape_text(&text[cut2..], &mut state, &mut out);
                finish_text(&mut state, &mut out);
                assert_eq!(
                    String::from_utf8(out).unwrap(),
                    reference,
                    "cuts {cut} {cut2}"
                );
            }
        }
    }
}
