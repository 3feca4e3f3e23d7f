//! The PROXY protocol header (`sendpigeon_relay::server::proxy::parse_header`, the pure step
//! of `read_header`): the bytes peeked so far in, "incomplete", a malformed header, or the
//! header's length and client address out.
//!
//! Properties: no panic; bounded reads: a header is never longer than what was peeked (the
//! driver then `read_exact`s exactly that many bytes, which must already be there), never
//! over 4096 bytes, never over 107 for v1; "incomplete" only below 4096 bytes peeked; the
//! result does not depend on what follows the header (the ClientHello of PROXY-05 stays in the
//! socket): the header alone parses to the same; a header whose bytes arrive in two reads is
//! reported incomplete for the first read, never malformed (else a client whose balancer's
//! header spans two segments would be closed).
//!
//! Findings, fixed in `parse_header` (a v1 header is judged only once its CRLF is in) and
//! kept as reproducers in fuzz/regressions/proxy-*: a v1 header split before or inside its
//! destination port, or inside a UTF-8 character, was refused; `PROXY UNKNOWN \n` was taken
//! as complete before its CRLF; an `UNKNOWN` line of 108 bytes was taken as a header.
//!
//! Input: byte 0 picks the peer (v4 / v6 / v4-mapped v6) and a cut for the prefix check; the
//! rest is what the peer sent.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use sendpigeon_relay::server::proxy::parse_header;

const V1_MAX: usize = 107;
const V2_MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, input)) = data.split_first() else {
        return;
    };
    let peer = SocketAddr::new(
        match choice % 3 {
            0 => IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            1 => IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1)),
            _ => IpAddr::V6(Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped()),
        },
        40_000,
    );
    // The driver peeks at most 4096 bytes.
    let peeked = &input[..input.len().min(V2_MAX)];
    match parse_header(peeked, peer) {
        Ok(None) => assert!(
            peeked.len() < V2_MAX,
            "incomplete at {} bytes",
            peeked.len()
        ),
        Ok(Some((len, client))) => {
            assert!(len > 0, "an empty header");
            assert!(
                len <= peeked.len(),
                "header of {len} bytes, {} peeked",
                peeked.len()
            );
            assert!(len <= V2_MAX, "header of {len} bytes");
            if peeked.starts_with(b"PROXY") {
                assert!(len <= V1_MAX, "v1 header of {len} bytes");
            }
            if let IpAddr::V6(v6) = client {
                assert!(
                    v6.to_ipv4_mapped().is_none(),
                    "client address not canonical: {v6}"
                );
            }
            // The header alone says the same.
            match parse_header(&peeked[..len], peer) {
                Ok(Some(again)) => assert_eq!(again, (len, client), "the header alone differs"),
                other => {
                    panic!("the header alone parses to {other:?}, with what follows to {len} bytes")
                }
            }
            // Cut short, it is incomplete: the driver peeks again. Every cut of a v1 header
            // (at most 107 bytes); a few of a v2 one.
            let cuts: Vec<usize> = if len <= V1_MAX {
                (1..len).collect()
            } else {
                vec![1, len / 2, len - 1, usize::from(choice / 3) % len]
            };
            for cut in cuts.into_iter().filter(|&c| c > 0 && c < len) {
                match parse_header(&peeked[..cut], peer) {
                    Ok(None) => {}
                    other => panic!(
                        "the first {cut} bytes of a {len}-byte header parse to {other:?}, not \
                         incomplete"
                    ),
                }
            }
        }
        Err(e) => {
            // Only the message is used (logged); make sure it formats.
            let _ = e.to_string();
        }
    }
});
