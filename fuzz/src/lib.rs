//! Helpers shared by the fuzz targets: cutting an input into reads the way a socket might,
//! from a seed that is part of the fuzz input itself (so a crash reproduces exactly), and the
//! line-ending checks the targets assert.

/// Bytes of the fuzz input that seed [`Cuts`].
pub const CUT_SEED_LEN: usize = 5;

/// The largest piece, chosen by the seed's first byte: bytewise up to whole-ish reads.
const MAX_PIECE: [usize; 8] = [1, 2, 3, 7, 16, 100, 1500, 65_536];

/// A deterministic source of read sizes.
#[derive(Debug, Clone)]
pub struct Cuts {
    state: u64,
    max: usize,
}

impl Cuts {
    /// From up to [`CUT_SEED_LEN`] bytes: the first picks the largest piece, the others seed
    /// the sizes.
    pub fn new(seed: &[u8]) -> Cuts {
        let class = seed.first().copied().unwrap_or(0);
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for &b in seed.iter().skip(1).take(CUT_SEED_LEN - 1) {
            state = (state ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
        }
        Cuts {
            state: state | 1,
            max: MAX_PIECE[usize::from(class) % MAX_PIECE.len()],
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// The next piece length, 1..=max.
    pub fn piece_len(&mut self) -> usize {
        1 + (self.next() % self.max as u64) as usize
    }

    /// Cuts `data` into pieces of 1..=max bytes (none when it is empty).
    pub fn split<'a>(&mut self, data: &'a [u8]) -> Vec<&'a [u8]> {
        let mut pieces = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let n = self.piece_len().min(rest.len());
            pieces.push(&rest[..n]);
            rest = &rest[n..];
        }
        pieces
    }
}

/// The index of the first CR not followed by LF, or LF not preceded by CR.
pub fn first_bare_line_ending(bytes: &[u8]) -> Option<usize> {
    (0..bytes.len()).find(|&i| match bytes[i] {
        b'\r' => bytes.get(i + 1) != Some(&b'\n'),
        b'\n' => i == 0 || bytes[i - 1] != b'\r',
        _ => false,
    })
}

/// What every message handed on must be, from the DATA/BDAT receiver or the session: no bare
/// CR or LF, and no more than `max` bytes.
pub fn assert_deliverable(message: &[u8], max: usize) {
    if let Some(i) = first_bare_line_ending(message) {
        panic!("message has a bare CR or LF at {i}: {message:?}");
    }
    assert!(
        message.len() <= max,
        "message of {} bytes over the {max} limit",
        message.len()
    );
}

/// Every bare CR and bare LF made CRLF; CRLF kept.
pub fn normalize_line_endings(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 8);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\r' => {
                out.extend_from_slice(b"\r\n");
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}
