//! Attachment content, written in chunks: standard base64, without line breaks, of a part's
//! decoded bytes (docs/mapping.md: every byte, a final group without padding included).
//!
//! A part that is already base64 is transcoded a chunk at a time: a chunk of whole lines
//! holding only complete quanta is decoded with encodify's vector decoder and encoded again
//! at once, so valid base64 costs two fast passes over 64 KiB and no copy of the part; the
//! output is the same text as base64 of mail-parser's `decoded()`, line breaks gone. At the
//! first chunk that is not that clean (a stray byte, early padding, a line that splits a
//! quantum), the rest of the part goes through the incremental decoder with exactly the
//! tolerance mail-parser applies (bytes outside the alphabet skipped, `=` ends a quantum, a
//! final unpadded quantum decoded), so both paths give the bytes `decoded()` gives.
//! Other parts (7bit, 8bit, binary, decoded quoted-printable) are encoded from their bytes.
//! This module does not decide which bytes a part has; `parts.rs` does.

use encodify::base64::{Decoder, MIME, STANDARD};

/// Input read per step: 64 KiB of base64 lines, or 48 KiB of bytes (64 KiB of output).
const STEP_ENCODED: usize = 64 * 1024;
const STEP_BYTES: usize = 48 * 1024;

/// Length of the base64 text for `decoded_len` bytes.
pub(super) fn encoded_len(decoded_len: usize) -> usize {
    decoded_len.div_ceil(3) * 4
}

/// Transcodes a base64 body (as transported) into unwrapped standard base64, resumably.
#[derive(Debug, Default)]
pub(super) struct Transcoder {
    /// Bytes of the input consumed.
    pos: usize,
    /// Set once the input stopped being clean: the rest is decoded incrementally.
    slow: Option<Decoder>,
    /// Decoded bytes not yet encoded (fewer than three, except transiently).
    pending: Vec<u8>,
}

impl Transcoder {
    /// Appends about one step of output to `out`; true once `input` is finished.
    pub fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.pos >= input.len() {
            return self.finish(out);
        }
        let end = line_end_after(input, self.pos + STEP_ENCODED);
        let chunk = &input[self.pos..end];
        self.pos = end;
        if self.slow.is_none() && self.pending.is_empty() && Self::fast(chunk, out) {
            return false;
        }
        let decoder = self.slow.get_or_insert_with(|| MIME.decoder());
        feed(decoder, chunk, &mut self.pending);
        let whole = self.pending.len() / 3 * 3;
        STANDARD.encode_append(&self.pending[..whole], out);
        self.pending.drain(..whole);
        false
    }

    /// Decodes and encodes a chunk made of whole quanta of alphabet symbols and line breaks;
    /// false (and nothing written) for any other chunk.
    fn fast(chunk: &[u8], out: &mut Vec<u8>) -> bool {
        let breaks = memchr::memchr2_iter(b'\r', b'\n', chunk).count();
        let symbols = chunk.len() - breaks;
        if !symbols.is_multiple_of(4) {
            return false;
        }
        let mut decoded = Vec::with_capacity(symbols / 4 * 3);
        // A skipped blank or an early `=` would make the output shorter than the symbols say.
        if MIME.decode_append(chunk, &mut decoded).is_err() || decoded.len() != symbols / 4 * 3 {
            return false;
        }
        STANDARD.encode_append(&decoded, out);
        true
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> bool {
        if let Some(decoder) = self.slow.take() {
            decoder.finish(&mut self.pending);
        }
        STANDARD.encode_append(&self.pending, out);
        self.pending = Vec::new();
        true
    }
}

/// mail-parser's tolerant base64 loop: symbols decoded, `=` pads the quantum, any other byte
/// skipped.
fn feed(decoder: &mut Decoder, mut rest: &[u8], out: &mut Vec<u8>) {
    loop {
        let read = decoder.decode_symbols(rest, out);
        rest = rest.get(read..).unwrap_or_default();
        match rest.split_first() {
            None => return,
            Some((b'=', tail)) => {
                decoder.pad(out);
                rest = tail;
            }
            Some((_, tail)) => rest = tail,
        }
    }
}

/// The end of the line that holds `at` (just past its LF), or the end of `input`.
fn line_end_after(input: &[u8], at: usize) -> usize {
    if at >= input.len() {
        return input.len();
    }
    match memchr::memchr(b'\n', &input[at..]) {
        Some(i) => at + i + 1,
        None => input.len(),
    }
}

/// Encodes bytes into unwrapped standard base64, resumably.
#[derive(Debug, Default)]
pub(super) struct Encoder {
    pos: usize,
}

impl Encoder {
    /// Appends about one step of output to `out`; true once `input` is finished.
    pub fn step(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        let end = (self.pos + STEP_BYTES).min(input.len());
        STANDARD.encode_append(&input[self.pos..end], out);
        self.pos = end;
        self.pos >= input.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::Encoding;

    fn transcode(input: &[u8]) -> Vec<u8> {
        let mut t = Transcoder::default();
        let mut out = Vec::new();
        while !t.step(input, &mut out) {}
        out
    }

    fn reference(input: &[u8]) -> Vec<u8> {
        STANDARD.encode(Encoding::Base64.decode(input)).into_bytes()
    }

    #[test]
    fn clean_base64_is_the_same_text_unwrapped() {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 3) as u8).collect();
        let mut wrapped = Vec::new();
        for line in bytes.chunks(57) {
            wrapped.extend_from_slice(STANDARD.encode(line).as_bytes());
            wrapped.extend_from_slice(b"\r\n");
        }
        let out = transcode(&wrapped);
        assert_eq!(out, STANDARD.encode(&bytes).as_bytes());
        assert_eq!(
            out.len(),
            encoded_len(Encoding::Base64.decoded_len(&wrapped))
        );
    }

    #[test]
    fn every_byte_survives_an_unpadded_final_group() {
        assert_eq!(transcode(b"QUJDREVGRw\r\n"), b"QUJDREVGRw==");
        assert_eq!(transcode(b"QUJDREVGRw"), b"QUJDREVGRw==");
        assert_eq!(transcode(b""), b"");
    }

    #[test]
    fn odd_line_lengths_and_junk_decode_as_mail_parser_does() {
        let cases: [&[u8]; 7] = [
            b"QUJD\r\nREVG\r\nRw==\r\n",
            b"QUJ\r\nDRE\r\nVGR\r\nw=\r\n",
            b"QU JD*REVG\r\nRw==\r\n",
            b"QUI=QUJD\r\n",
            b"Q\r\n",
            b"====\r\n",
            b"QUJDREVG\nRw==\nQUJD",
        ];
        for case in cases {
            let out = transcode(case);
            assert_eq!(
                out,
                reference(case),
                "for {:?}",
                String::from_utf8_lossy(case)
            );
            assert_eq!(out.len(), encoded_len(Encoding::Base64.decoded_len(case)));
        }
    }

    #[test]
    fn a_bad_byte_after_clean_chunks_switches_to_the_tolerant_path() {
        let mut input = Vec::new();
        for _ in 0..2000 {
            input.extend_from_slice(
                b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n",
            );
        }
        input.extend_from_slice(b"QU#JD\r\nRw\r\n");
        let out = transcode(&input);
        assert_eq!(out, reference(&input));
        assert_eq!(out.len(), encoded_len(Encoding::Base64.decoded_len(&input)));
    }

    #[test]
    fn random_inputs_match_mail_parser() {
        let alphabet =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/==\r\n\r\n \t*-";
        let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
        for round in 0..3000 {
            let len = (round * 37) % 400;
            let mut input = Vec::with_capacity(len);
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly clean symbols, sometimes anything from the alphabet above.
                let pick = (seed >> 32) as usize;
                let byte = if pick.is_multiple_of(16) {
                    alphabet[pick % alphabet.len()]
                } else {
                    alphabet[pick % 64]
                };
                input.push(byte);
            }
            let out = transcode(&input);
            assert_eq!(
                out,
                reference(&input),
                "for {:?}",
                String::from_utf8_lossy(&input)
            );
            assert_eq!(out.len(), encoded_len(Encoding::Base64.decoded_len(&input)));
        }
    }

    #[test]
    fn encoder_matches_one_shot_encoding() {
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i ^ (i >> 5)) as u8).collect();
        let mut e = Encoder::default();
        let mut out = Vec::new();
        while !e.step(&bytes, &mut out) {}
        assert_eq!(out, STANDARD.encode(&bytes).as_bytes());
        let mut e = Encoder::default();
        let mut out = Vec::new();
        assert!(e.step(b"", &mut out));
        assert!(out.is_empty());
    }
}
