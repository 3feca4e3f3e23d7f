//! Per-client-address limits (docs/limits-and-timeouts.md): connections open at once
//! from one address, and AUTH failures from one address across connections, which put the
//! address in a cool-down where every new connection is refused.
//!
//! Failures count *different* wrong keys: a queue retrying one stale key (a Postfix smarthost
//! with a dozen messages makes ~5 attempts per run) counts once, so one misconfigured sender
//! behind a shared address (a NAT, a cloud egress IP) does not lock out its neighbours.
//!
//! Addresses are the client's (after PROXY protocol). IPv4-mapped IPv6 counts as IPv4, and
//! IPv6 is grouped by prefix (default /64), since one host usually owns a whole /64
//! (adversarial RES-04). Both tables are bounded: entries go when their count drops to zero
//! or their window ends, and a table past its cap sheds expired entries first.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries kept at most in each table.
const MAX_ENTRIES: usize = 100_000;

/// The settings from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct AbusePolicy {
    /// Connections open at once from one address (group).
    pub connections_per_ip: usize,
    /// Prefix length grouping IPv6 addresses.
    pub ipv6_prefix: u8,
    /// AUTH failures within `auth_window` that start a cool-down.
    pub auth_failures: usize,
    /// The window failures are counted in.
    pub auth_window: Duration,
    /// How long the cool-down lasts.
    pub cooldown: Duration,
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// Too many connections open from this address.
    TooManyConnections,
    /// The address is cooling down after AUTH failures.
    CoolingDown,
}

/// The shared per-address state.
#[derive(Debug)]
pub struct Abuse {
    policy: AbusePolicy,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    open: HashMap<IpAddr, usize>,
    failures: HashMap<IpAddr, Failures>,
}

/// What identifies one wrong credential: the key's SHA-256, or `None` for an attempt refused
/// before any key was looked at (wrong username or key prefix), which all count as one.
pub type Credential = Option<[u8; 32]>;

#[derive(Debug, Default)]
struct Failures {
    /// Distinct wrong credentials within the window, with when each was last tried.
    recent: VecDeque<(Instant, Credential)>,
    cooldown_until: Option<Instant>,
}

/// Holds one connection's place in the per-address count; frees it when dropped.
#[derive(Debug)]
pub struct Admission {
    abuse: Arc<Abuse>,
    /// `None` when the table was full and this connection was not counted.
    group: Option<IpAddr>,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let Some(group) = self.group else {
            return;
        };
        if let Ok(mut state) = self.abuse.state.lock()
            && let Some(count) = state.open.get_mut(&group)
        {
            *count -= 1;
            if *count == 0 {
                state.open.remove(&group);
            }
        }
    }
}

impl Abuse {
    /// Empty tables.
    pub fn new(policy: AbusePolicy) -> Abuse {
        Abuse {
            policy,
            state: Mutex::new(State::default()),
        }
    }

    /// The group an address counts under.
    pub fn group(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let prefix = u32::from(self.policy.ipv6_prefix.min(128));
                let mask = if prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - prefix)
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
            v4 => v4,
        }
    }

    /// Admits a new connection from `ip`, or says why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Denial> {
        let group = self.group(ip);
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return Err(Denial::TooManyConnections);
        };
        if let Some(f) = state.failures.get(&group)
            && f.cooldown_until.is_some_and(|until| until > now)
        {
            return Err(Denial::CoolingDown);
        }
        if state.open.len() >= MAX_ENTRIES && !state.open.contains_key(&group) {
            // Past the cap only already-known groups are counted; new ones pass uncounted
            // rather than being refused for what others did. The global cap still applies.
            return Ok(Admission {
                abuse: Arc::clone(self),
                group: None,
            });
        }
        let count = state.open.entry(group).or_insert(0);
        if *count >= self.policy.connections_per_ip {
            return Err(Denial::TooManyConnections);
        }
        *count += 1;
        Ok(Admission {
            abuse: Arc::clone(self),
            group: Some(group),
        })
    }

    /// Records a failed AUTH from `ip` with `credential`; returns true when it starts a
    /// cool-down. A credential already counted within the window is not counted again.
    pub fn auth_failed(&self, ip: IpAddr, credential: Credential) -> bool {
        let group = self.group(ip);
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return false;
        };
        if state.failures.len() >= MAX_ENTRIES {
            let window = self.policy.auth_window;
            state.failures.retain(|_, f| {
                f.cooldown_until.is_some_and(|u| u > now)
                    || f.recent
                        .iter()
                        .any(|(t, _)| now.duration_since(*t) < window)
            });
        }
        let window = self.policy.auth_window;
        let f = state.failures.entry(group).or_default();
        f.recent.retain(|(t, _)| now.duration_since(*t) < window);
        if let Some(seen) = f.recent.iter_mut().find(|(_, c)| *c == credential) {
            // The same wrong key again: the window restarts for it, nothing more counts.
            seen.0 = now;
            return false;
        }
        f.recent.push_back((now, credential));
        if f.recent.len() >= self.policy.auth_failures {
            f.recent.clear();
            f.cooldown_until = Some(now + self.policy.cooldown);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abuse(per_ip: usize, failures: usize) -> Arc<Abuse> {
        Arc::new(Abuse::new(AbusePolicy {
            connections_per_ip: per_ip,
            ipv6_prefix: 64,
            auth_failures: failures,
            auth_window: Duration::from_secs(300),
            cooldown: Duration::from_millis(200),
        }))
    }

    #[test]
    fn connections_per_address_are_capped_and_freed() {
        let a = abuse(2, 10);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = a.admit(ip).unwrap();
        let _second = a.admit(ip).unwrap();
        assert_eq!(a.admit(ip).unwrap_err(), Denial::TooManyConnections);
        // IPv4-mapped IPv6 is the same address (RES-04).
        assert_eq!(
            a.admit("::ffff:192.0.2.7".parse().unwrap()).unwrap_err(),
            Denial::TooManyConnections
        );
        assert!(a.admit("192.0.2.8".parse().unwrap()).is_ok());
        drop(first);
        assert!(a.admit(ip).is_ok());
    }

    #[test]
    fn ipv6_is_grouped_by_prefix() {
        let a = abuse(1, 10);
        let _one = a.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(a.admit("2001:db8:1:2:ffff::9".parse().unwrap()).is_err());
        assert!(a.admit("2001:db8:1:3::1".parse().unwrap()).is_ok());
    }

    fn key(n: u8) -> Credential {
        Some([n; 32])
    }

    #[test]
    fn auth_failures_start_a_cooldown_that_ends() {
        let a = abuse(50, 3);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(!a.auth_failed(ip, key(1)));
        assert!(!a.auth_failed(ip, None));
        assert!(a.auth_failed(ip, key(2)));
        assert_eq!(a.admit(ip).unwrap_err(), Denial::CoolingDown);
        assert!(a.admit("198.51.100.2".parse().unwrap()).is_ok());
        std::thread::sleep(Duration::from_millis(250));
        assert!(a.admit(ip).is_ok());
    }

    #[test]
    fn one_wrong_key_retried_counts_once() {
        // A queue retrying a stale key, many times over: never a cool-down for the address.
        let a = abuse(50, 3);
        let ip: IpAddr = "198.51.100.1".parse().unwrap();
        for _ in 0..50 {
            assert!(!a.auth_failed(ip, key(7)));
            assert!(!a.auth_failed(ip, None));
        }
        assert!(a.admit(ip).is_ok());
        // A third different one does it.
        assert!(a.auth_failed(ip, key(8)));
        assert_eq!(a.admit(ip).unwrap_err(), Denial::CoolingDown);
    }
}
