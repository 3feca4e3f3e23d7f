//! Where mail-parser ends a header section, found without parsing: the prescan needs it to
//! bound the header fields of parts and to know where a multipart's body starts. It knows
//! nothing of fields or values.

/// Finds, for increasing offsets, where the header section containing that offset ends.
///
/// mail-parser ends a field at a line feed not followed by a space or tab, then skips
/// `[ \t\r\x0c]` and ends the section at the next line feed. So the section ends no later than
/// the first line after `from` that starts with LF, CR or FF and holds only those blanks.
/// Offsets come in increasing order, so one remembered answer makes all calls linear together.
#[derive(Default)]
pub(super) struct BlankLines {
    /// The line feed before the last blank line found, and the offset after that blank line.
    last: Option<(usize, usize)>,
}

impl BlankLines {
    pub(super) fn end_after(&mut self, input: &[u8], from: usize) -> usize {
        if let Some((lf, end)) = self.last
            && from <= lf
        {
            return end;
        }
        let mut at = from;
        while let Some(i) = memchr::memchr(b'\n', &input[at.min(input.len())..]) {
            let lf = at + i;
            let mut j = lf + 1;
            if matches!(input.get(j), Some(b'\r' | b'\x0c')) {
                while matches!(input.get(j), Some(b' ' | b'\t' | b'\r' | b'\x0c')) {
                    j += 1;
                }
            }
            if input.get(j) == Some(&b'\n') {
                self.last = Some((lf, j + 1));
                return j + 1;
            }
            at = lf + 1;
        }
        self.last = Some((input.len(), input.len()));
        input.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_lines_follow_mail_parser() {
        let mut b = BlankLines::default();
        let input = b"A: b\r\n c\r\n\r\nbody\n\nmore";
        assert_eq!(b.end_after(input, 0), 12);
        assert_eq!(b.end_after(input, 3), 12);
        assert_eq!(b.end_after(input, 13), 18);
        // A line of spaces after a field is a continuation, not the end.
        let mut b = BlankLines::default();
        assert_eq!(b.end_after(b"A: b\n  \nc\n\r \nd", 0), 13);
    }
}
