//! DATA receiver tests: the smuggling vectors of the adversarial catalogue (§1), transparency
//! (DATA-01), size accounting (DATA-02, DATA-03, SMUG-12) and split-invariance (SMUG-10).

use super::*;
use crate::memory::budget::{Grant, MemoryBudget};
use crate::memory::message_cost_bound;

const BIG: usize = 1 << 30;

fn receiver(max: usize, policy: BareLfPolicy) -> DataReceiver {
    DataReceiver::new(max, policy, MemoryBudget::new(BIG).reservation(), 0)
}

/// Feeds `input` in the given chunk sizes; returns (consumed, outcome) at the end of data.
fn feed(input: &[u8], chunks: &[usize], max: usize, policy: BareLfPolicy) -> (usize, DataEnd) {
    let mut rx = receiver(max, policy);
    let mut pos = 0;
    let mut sizes = chunks.iter().copied().cycle();
    while pos < input.len() {
        let end = (pos + sizes.next().unwrap_or(input.len()).max(1)).min(input.len());
        let (n, done) = rx.receive(&input[pos..end]);
        pos += n;
        if let Some((outcome, _)) = done {
            return (pos, outcome);
        }
        assert_eq!(
            pos, end,
            "the receiver consumes everything until the end of data"
        );
    }
    panic!("no end of data in {:?}", String::from_utf8_lossy(input));
}

fn message(input: &[u8]) -> (usize, Vec<u8>) {
    match feed(input, &[input.len()], BIG, BareLfPolicy::Normalize) {
        (n, DataEnd::Message(body)) => (n, body),
        (_, other) => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn plain_message_and_following_command() {
    // SMUG-09: end of data found even with the next command in the same segment.
    let (n, body) = message(b"body\r\n.\r\nMAIL FROM:<s@x>\r\n");
    assert_eq!(body, b"body\r\n");
    assert_eq!(n, 9);
}

#[test]
fn empty_message() {
    // SMUG-11.
    assert_eq!(message(b".\r\n"), (3, vec![]));
}

#[test]
fn transparency() {
    // DATA-01.
    let (_, body) = message(b"..lead\r\n.x\r\n. \r\n\r\n.\r\n");
    assert_eq!(body, b".lead\r\nx\r\n \r\n\r\n");
}

/// What the `reject` policy makes of a vector: a refusal, or (no bare line ending in it) the
/// message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rejected {
    BareLf,
    BareCr,
    Message,
}

#[test]
fn smuggling_sequences_never_end_the_data() {
    let tail = b"MAIL FROM:<ceo@victim.example>\r\nRCPT TO:<x@y>\r\nDATA\r\n\r\nsmuggled\r\n.\r\n";
    for (prefix, rejected) in [
        (&b"hi\n.\n"[..], Rejected::BareLf),     // SMUG-01
        (b"hi\n.\r\n", Rejected::BareLf),        // SMUG-02
        (b"hi\r\n.\n", Rejected::BareLf),        // SMUG-03
        (b"hi\r.\r", Rejected::BareCr),          // SMUG-04
        (b"hi\r.\r\n", Rejected::BareCr),        // SMUG-04
        (b"hi\r.\n", Rejected::BareLf),          // SMUG-04 (a bare LF is reported first)
        (b"hi\n.\r", Rejected::BareLf),          // SMUG-04
        (b"hi\r\n.\r\r\n", Rejected::BareCr),    // SMUG-05
        (b"hi\r\r\n.\r\r\n", Rejected::BareCr),  // SMUG-05
        (b"hi\r\n\x00.\r\n", Rejected::Message), // SMUG-06
        (b"hi\r\n.\x00\r\n", Rejected::Message), // SMUG-06
    ] {
        let input = [prefix, &tail[..]].concat();
        let shown = String::from_utf8_lossy(prefix);
        for policy in [BareLfPolicy::Normalize, BareLfPolicy::Reject] {
            let (n, outcome) = feed(&input, &[input.len()], BIG, policy);
            assert_eq!(n, input.len(), "{shown:?} under {policy:?}");
            let expected = match policy {
                BareLfPolicy::Normalize => Rejected::Message,
                BareLfPolicy::Reject => rejected,
            };
            match (expected, &outcome) {
                (Rejected::Message, DataEnd::Message(body)) => {
                    assert!(
                        !has_bare_line_ending(body),
                        "{:?}",
                        String::from_utf8_lossy(body)
                    );
                    assert!(
                        body.ends_with(b"smuggled\r\n"),
                        "{:?}",
                        String::from_utf8_lossy(body)
                    );
                }
                (Rejected::BareLf, DataEnd::BareLf) | (Rejected::BareCr, DataEnd::BareCr) => {}
                (expected, other) => {
                    panic!("{shown:?} under {policy:?}: expected {expected:?}, got {other:?}")
                }
            }
        }
    }
}

#[test]
fn bare_line_endings_are_normalised_or_rejected() {
    // SMUG-01 under both policies.
    let input = b"Subject: t\r\n\r\nhi\n.\nMAIL FROM:<ceo@victim.example>\r\n\r\nsmuggled\r\n.\r\n";
    let (_, body) = message(input);
    assert_eq!(
        body,
        b"Subject: t\r\n\r\nhi\r\nMAIL FROM:<ceo@victim.example>\r\n\r\nsmuggled\r\n"
    );
    assert!(matches!(
        feed(input, &[7], BIG, BareLfPolicy::Reject).1,
        DataEnd::BareLf
    ));
    // SMUG-07 and SMUG-08.
    assert_eq!(message(b"line1\nline2\r\n.\r\n").1, b"line1\r\nline2\r\n");
    assert_eq!(message(b"Hey\r <3\r\n.\r\n").1, b"Hey\r\n <3\r\n");
    assert!(matches!(
        feed(b"Hey\r <3\r\n.\r\n", &[100], BIG, BareLfPolicy::Reject).1,
        DataEnd::BareCr
    ));
}

#[test]
fn every_split_gives_the_same_result() {
    // SMUG-10, for each vector: whole, one byte at a time, and every two-piece split.
    let inputs: [&[u8]; 4] = [
        b"m1\r\n..x\r\n.\r\nNOOP\r\n",
        b"hi\n.\r\nmore\r\n.\r\n",
        b"a\r\r\nb\r.\r\n\r\n.\r\n",
        b"\r\n.\r\n",
    ];
    for input in inputs {
        let whole = feed(input, &[input.len()], BIG, BareLfPolicy::Normalize);
        let reference = (whole.0, format!("{:?}", whole.1));
        let bytewise = feed(input, &[1], BIG, BareLfPolicy::Normalize);
        assert_eq!((bytewise.0, format!("{:?}", bytewise.1)), reference);
        for split in 1..input.len() {
            let got = feed(input, &[split, input.len()], BIG, BareLfPolicy::Normalize);
            assert_eq!(
                (got.0, format!("{:?}", got.1)),
                reference,
                "split at {split}"
            );
        }
    }
}

#[test]
fn size_is_counted_after_unstuffing_and_checked_only_at_the_end() {
    // DATA-02: exactly the limit passes; one more byte fails, after the final dot.
    let limit = 1000;
    let exact = [vec![b'a'; limit - 2], b"\r\n.\r\n".to_vec()].concat();
    assert!(
        matches!(feed(&exact, &[64], limit, BareLfPolicy::Normalize).1, DataEnd::Message(b) if b.len() == limit)
    );
    let over = [vec![b'a'; limit - 1], b"\r\n.\r\nNOOP\r\n".to_vec()].concat();
    let (n, outcome) = feed(&over, &[64], limit, BareLfPolicy::Normalize);
    assert!(matches!(outcome, DataEnd::TooBig));
    assert_eq!(&over[n..], b"NOOP\r\n");
    // DATA-03: stuffing dots do not count.
    let stuffed = [b"..\r\n".repeat(limit / 3), b".\r\n".to_vec()].concat();
    assert!(stuffed.len() > limit);
    assert!(matches!(
        feed(&stuffed, &[100], limit, BareLfPolicy::Normalize).1,
        DataEnd::Message(_)
    ));
}

#[test]
fn discarding_uses_the_same_end_of_data_rules() {
    // SMUG-12: after going over the limit, `.\n` and commands are still data.
    let input = [
        vec![b'x'; 2000],
        b"\r\n.\nHELP\r\nHELP\r\n.\r\nNOOP\r\n".to_vec(),
    ]
    .concat();
    let (n, outcome) = feed(&input, &[333], 1000, BareLfPolicy::Normalize);
    assert!(matches!(outcome, DataEnd::TooBig));
    assert_eq!(&input[n..], b"NOOP\r\n");
}

#[test]
fn a_spent_budget_pauses_the_receiver_until_memory_is_released() {
    const MIB: usize = 1 << 20;
    let budget = MemoryBudget::new(4 * MIB);
    let mut holder = budget.reservation();
    assert_eq!(holder.request(3 * MIB, 3 * MIB), Grant::Held);
    let mut rx = DataReceiver::new(BIG, BareLfPolicy::Normalize, budget.reservation(), 0);
    let input = [vec![b'y'; MIB], b"\r\n.\r\n".to_vec()].concat();
    // It would need 2.5 MiB: it takes nothing and waits.
    assert_eq!(rx.receive(&input).0, 0);
    assert!(rx.needs_memory());
    assert_eq!(rx.receive(&input).0, 0, "nothing is taken while waiting");
    assert!(!rx.retry_memory());
    drop(holder);
    assert!(rx.retry_memory());
    let (n, done) = rx.receive(&input);
    assert_eq!(n, input.len());
    let (outcome, reservation) = done.unwrap();
    assert!(matches!(outcome, DataEnd::Message(ref m) if m.len() == MIB + 2));
    assert!(reservation.bytes() >= MIB);
    drop(reservation);
    assert_eq!(budget.used(), 0);
}

#[test]
fn giving_up_on_memory_drains_to_the_end_and_refuses() {
    const MIB: usize = 1 << 20;
    let budget = MemoryBudget::new(4 * MIB);
    let mut holder = budget.reservation();
    assert_eq!(holder.request(3 * MIB, 3 * MIB), Grant::Held);
    let mut rx = DataReceiver::new(BIG, BareLfPolicy::Normalize, budget.reservation(), 0);
    let input = [vec![b'y'; MIB], b"\r\n.\r\nNOOP\r\n".to_vec()].concat();
    assert_eq!(rx.receive(&input).0, 0);
    rx.give_up_memory();
    assert!(!rx.needs_memory());
    let (n, done) = rx.receive(&input);
    assert_eq!(&input[n..], b"NOOP\r\n");
    let (outcome, reservation) = done.unwrap();
    assert!(matches!(outcome, DataEnd::OutOfMemory));
    assert_eq!(reservation.bytes(), 0);
    assert_eq!(budget.used(), 3 * MIB);
}

#[test]
fn random_messages_survive_stuffing_and_random_chunking() {
    // Property: for any CRLF message M, dot-stuff(M) + CRLF.CRLF in random chunks yields M.
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..300 {
        let lines = (next() % 12) as usize;
        let mut original = Vec::new();
        for _ in 0..lines {
            let len = (next() % 8) as usize;
            for _ in 0..len {
                original.push(b".a\x00 Z"[(next() % 5) as usize]);
            }
            original.extend_from_slice(b"\r\n");
        }
        let mut wire = Vec::new();
        for line in original.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                wire.push(b'.');
            }
            wire.extend_from_slice(line);
        }
        wire.extend_from_slice(b".\r\n");
        let chunks: Vec<usize> = (0..5).map(|_| 1 + (next() % 9) as usize).collect();
        match feed(&wire, &chunks, BIG, BareLfPolicy::Normalize) {
            (n, DataEnd::Message(body)) => {
                assert_eq!(n, wire.len());
                assert_eq!(body, original);
            }
            (_, other) => panic!("{other:?}"),
        }
    }
}

fn has_bare_line_ending(body: &[u8]) -> bool {
    body.iter().enumerate().any(|(i, &b)| {
        (b == b'\n' && (i == 0 || body[i - 1] != b'\r'))
            || (b == b'\r' && body.get(i + 1) != Some(&b'\n'))
    })
}

#[test]
fn a_message_of_its_declared_size_is_never_refused_while_others_queue() {
    // Flood regression: a large piece sized from `SIZE=` must take the whole message even
    // when someone waits in the queue (a large piece only grows from free memory).
    const MIB: usize = 1 << 20;
    let budget = MemoryBudget::new(64 * MIB);
    let mut lines = Vec::new();
    while lines.len() < 20 * MIB {
        lines.extend_from_slice(
            b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\r\n",
        );
    }
    let declared = lines.len();
    let cost = message_cost_bound(declared);
    let mut reservation = budget.reservation();
    assert_eq!(reservation.request(cost, cost), Grant::Held);
    let mut queued = budget.reservation();
    assert_eq!(queued.request(45 * MIB, 0), Grant::Wait);
    let mut rx = DataReceiver::new(BIG, BareLfPolicy::Normalize, reservation, cost);
    let input = [lines, b".\r\nNOOP\r\n".to_vec()].concat();
    let mut pos = 0;
    let outcome = loop {
        let end = (pos + 65536).min(input.len());
        let (n, done) = rx.receive(&input[pos..end]);
        pos += n;
        if let Some((outcome, _)) = done {
            break outcome;
        }
        assert!(!rx.needs_memory());
    };
    assert!(matches!(outcome, DataEnd::Message(ref m) if m.len() == declared));
    assert_eq!(&input[pos..], b"NOOP\r\n");
    drop(queued);
}

#[test]
fn a_message_far_over_its_declared_size_is_refused_when_memory_is_not_free() {
    const MIB: usize = 1 << 20;
    let budget = MemoryBudget::new(8 * MIB);
    let cost = message_cost_bound(MIB);
    let mut reservation = budget.reservation();
    assert_eq!(reservation.request(cost, cost), Grant::Held);
    let mut others = budget.reservation();
    assert_eq!(others.request(6 * MIB - cost, 6 * MIB - cost), Grant::Held);
    let mut rx = DataReceiver::new(BIG, BareLfPolicy::Normalize, reservation, cost);
    let input = [vec![b'z'; 3 * MIB], b"\r\n.\r\n".to_vec()].concat();
    let (_, done) = rx.receive(&input);
    let (outcome, reservation) = done.unwrap();
    assert!(matches!(outcome, DataEnd::OutOfMemory));
    assert_eq!(reservation.bytes(), 0);
}

#[test]
fn bare_line_ends_are_those_outside_a_crlf() {
    assert_eq!(bare_line_ends(b"a\r\nb\r\n"), 0);
    assert_eq!(bare_line_ends(b"a\nb\rc\r\r\n"), 3);
    assert_eq!(bare_line_ends(b"\nx\r"), 2);
}
