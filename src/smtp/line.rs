//! Command-line framing with a hard cap.
//!
//! A line ends at LF (RFC 5321 §2.3.8: CRLF; a bare LF is reported so the session can apply
//! the bare-LF policy). A line longer than its cap is never split into two commands
//! (adversarial LIM-04): the reader skips to the next LF and reports one `TooLong`. Nothing is
//! buffered here: the driver keeps unconsumed bytes, and the reader consumes a partial line
//! only when it is already over the cap, so the driver's buffer never holds more than one cap
//! plus one read.

use memchr::memchr;

/// A client that sends this much of one over-long line without an LF is disconnected rather
/// than skipped forever (adversarial LIM-03).
pub const MAX_SKIP: usize = 1 << 20;

/// What the reader found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A whole line, without its line ending.
    Complete {
        /// The line's bytes.
        text: &'a [u8],
        /// True when the line ended with a bare LF instead of CRLF.
        bare_lf: bool,
    },
    /// A line over the cap has been skipped up to and including its LF.
    TooLong {
        /// The skipped line began with `AUTH ` (its cap and reply differ).
        auth: bool,
    },
    /// A line over the cap went on past [`MAX_SKIP`] without an LF.
    Endless,
}

/// Splits the input into lines; remembers only whether it is skipping an over-long line.
#[derive(Debug, Default)]
pub struct LineReader {
    skipping: Option<Skip>,
}

#[derive(Debug)]
struct Skip {
    auth: bool,
    skipped: usize,
}

impl LineReader {
    /// True while an over-long line is being skipped, or nothing is pending.
    pub fn is_skipping(&self) -> bool {
        self.skipping.is_some()
    }

    /// Looks for the next line in `input`, at most `cap` bytes long including its line ending.
    /// Returns the bytes consumed and the line, or `None` when more input is needed.
    pub fn next_line<'a>(&mut self, input: &'a [u8], cap: usize) -> (usize, Option<Line<'a>>) {
        if let Some(skip) = &mut self.skipping {
            return match memchr(b'\n', input) {
                Some(pos) => {
                    let auth = skip.auth;
                    self.skipping = None;
                    (pos + 1, Some(Line::TooLong { auth }))
                }
                None => {
                    skip.skipped = skip.skipped.saturating_add(input.len());
                    if skip.skipped > MAX_SKIP {
                        self.skipping = None;
                        (input.len(), Some(Line::Endless))
                    } else {
                        (input.len(), None)
                    }
                }
            };
        }
        let window = &input[..input.len().min(cap)];
        if let Some(pos) = memchr(b'\n', window) {
            let (text, bare_lf) = match input[..pos].strip_suffix(b"\r") {
                Some(text) => (text, false),
                None => (&input[..pos], true),
            };
            return (pos + 1, Some(Line::Complete { text, bare_lf }));
        }
        if input.len() < cap {
            return (0, None);
        }
        let auth = input.len() >= 5 && input[..5].eq_ignore_ascii_case(b"AUTH ");
        self.skipping = Some(Skip { auth, skipped: 0 });
        let (rest_consumed, line) = self.next_line(&input[cap..], cap);
        (cap + rest_consumed, line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(text: &[u8], bare_lf: bool) -> Option<Line<'_>> {
        Some(Line::Complete { text, bare_lf })
    }

    #[test]
    fn crlf_and_bare_lf_lines() {
        let mut r = LineReader::default();
        assert_eq!(
            r.next_line(b"NOOP\r\nQUIT\n", 512),
            (6, complete(b"NOOP", false))
        );
        assert_eq!(r.next_line(b"QUIT\n", 512), (5, complete(b"QUIT", true)));
        assert_eq!(r.next_line(b"QU", 512), (0, None));
    }

    #[test]
    fn a_line_of_exactly_the_cap_is_accepted() {
        let mut r = LineReader::default();
        let mut line = vec![b'a'; 510];
        line.extend_from_slice(b"\r\n");
        assert_eq!(
            r.next_line(&line, 512),
            (512, complete(&line[..510], false))
        );
    }

    #[test]
    fn an_over_long_line_is_skipped_whole_and_never_split() {
        // LIM-04: the tail of a long line must not become a command.
        let mut r = LineReader::default();
        let mut input = vec![b'X'; 600];
        input.extend_from_slice(b"RCPT TO:<victim@x>\r\nNOOP\r\n");
        let (n, line) = r.next_line(&input, 512);
        assert_eq!(line, Some(Line::TooLong { auth: false }));
        assert_eq!(&input[n..], b"NOOP\r\n");
    }

    #[test]
    fn skipping_continues_across_reads() {
        let mut r = LineReader::default();
        let first = vec![b'A'; 700];
        assert_eq!(r.next_line(&first, 512), (700, None));
        assert!(r.is_skipping());
        assert_eq!(
            r.next_line(b"AAAA\r\nNO", 512),
            (6, Some(Line::TooLong { auth: false }))
        );
        assert!(!r.is_skipping());
    }

    #[test]
    fn endless_line_is_reported() {
        let mut r = LineReader::default();
        let chunk = vec![b'A'; 64 * 1024];
        let mut last = None;
        for _ in 0..20 {
            let (n, line) = r.next_line(&chunk, 2048);
            assert_eq!(n, chunk.len());
            if line.is_some() {
                last = line;
                break;
            }
        }
        assert_eq!(last, Some(Line::Endless));
    }

    #[test]
    fn auth_lines_are_marked() {
        let mut r = LineReader::default();
        let mut input = b"auth PLAIN ".to_vec();
        input.extend(vec![b'Q'; 600]);
        input.extend_from_slice(b"\r\n");
        assert_eq!(
            r.next_line(&input, 512).1,
            Some(Line::TooLong { auth: true })
        );
    }
}
