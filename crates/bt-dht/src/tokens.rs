//! Write tokens for `announce_peer`: SHA-1 of the requester's IP and a rotating secret.
//!
//! The secret changes every [`Tokens::ROTATE_EVERY`] (5 minutes) and the
//! previous one is kept, so a token is accepted for at least 5 and at most 10
//! minutes after it was handed out, and only from the IP it was handed to.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rand::Rng;
use sha1::{Digest, Sha1};

/// Bytes of the SHA-1 digest kept in a token.
pub const TOKEN_LEN: usize = 8;

/// The current and previous secret, and when the current one was made.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 16],
    previous: [u8; 16],
    rotated_at: Instant,
}

impl Tokens {
    /// How often the secret changes.
    pub const ROTATE_EVERY: Duration = Duration::from_secs(5 * 60);

    /// Fresh secrets, the current one made at `now`.
    pub fn new(now: Instant, rng: &mut impl Rng) -> Self {
        Self {
            current: rng.gen(),
            previous: rng.gen(),
            rotated_at: now,
        }
    }

    fn digest(ip: IpAddr, secret: &[u8; 16]) -> Vec<u8> {
        let mut h = Sha1::new();
        match ip.to_canonical() {
            IpAddr::V4(v4) => h.update(v4.octets()),
            IpAddr::V6(v6) => h.update(v6.octets()),
        }
        h.update(secret);
        let full = h.finalize();
        full.iter().take(TOKEN_LEN).copied().collect()
    }

    /// Rotates the secret if it is due (twice if we slept through two periods).
    pub fn rotate(&mut self, now: Instant, rng: &mut impl Rng) {
        let age = now.saturating_duration_since(self.rotated_at);
        if age >= 2 * Self::ROTATE_EVERY {
            self.previous = rng.gen();
            self.current = rng.gen();
            self.rotated_at = now;
        } else if age >= Self::ROTATE_EVERY {
            self.previous = self.current;
            self.current = rng.gen();
            self.rotated_at += Self::ROTATE_EVERY;
        }
    }

    /// When the next rotation is due.
    pub fn next_rotation(&self) -> Instant {
        self.rotated_at + Self::ROTATE_EVERY
    }

    /// The token for `ip` under the current secret (rotate first).
    pub fn token_for(&self, ip: IpAddr) -> Vec<u8> {
        Self::digest(ip, &self.current)
    }

    /// Whether `token` was handed to `ip` under the current or previous secret (rotate first).
    pub fn verify(&self, ip: IpAddr, token: &[u8]) -> bool {
        token == Self::digest(ip, &self.current).as_slice()
            || token == Self::digest(ip, &self.previous).as_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const MIN: Duration = Duration::from_secs(60);

    /// Hands a token out at `issued` minutes and checks it at `checked` minutes,
    /// rotating as a driver would (at every due time in between).
    fn accepted(issued: u32, checked: u32) -> bool {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut tokens = Tokens::new(t0, &mut rng);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let step = |tokens: &mut Tokens, rng: &mut rand::rngs::StdRng, until: u32| {
            while tokens.next_rotation() <= t0 + until * MIN {
                let due = tokens.next_rotation();
                tokens.rotate(due, rng);
            }
        };
        step(&mut tokens, &mut rng, issued);
        let token = tokens.token_for(ip);
        step(&mut tokens, &mut rng, checked);
        tokens.verify(ip, &token)
    }

    #[test]
    fn acceptance_window_is_five_to_ten_minutes() {
        assert!(accepted(0, 0));
        assert!(accepted(0, 4));
        assert!(accepted(0, 9)); // previous secret
        assert!(!accepted(0, 10)); // rotated out twice
        assert!(accepted(4, 9)); // issued late in a period: still 5+ minutes
        assert!(!accepted(4, 10));
        assert!(accepted(5, 14));
        assert!(!accepted(5, 15));
    }

    #[test]
    fn token_is_bound_to_the_ip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let tokens = Tokens::new(Instant::now(), &mut rng);
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let t = tokens.token_for(a);
        assert_eq!(t.len(), TOKEN_LEN);
        assert!(tokens.verify(a, &t));
        assert!(!tokens.verify(b, &t));
        assert!(!tokens.verify(a, b""));
        // An IPv4-mapped IPv6 source is the same IP.
        assert!(tokens.verify("::ffff:127.0.0.1".parse().unwrap(), &t));
    }

    #[test]
    fn long_sleep_rotates_both_secrets() {
        let t0 = Instant::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut tokens = Tokens::new(t0, &mut rng);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let t = tokens.token_for(ip);
        tokens.rotate(t0 + 60 * MIN, &mut rng);
        assert!(!tokens.verify(ip, &t));
        assert_eq!(tokens.next_rotation(), t0 + 65 * MIN);
    }
}
