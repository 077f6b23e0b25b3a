//! The API's credentials: a user name and a password kept as qBittorrent keeps it, a
//! salted PBKDF2-HMAC-SHA512 hash (100,000 rounds, 16-byte salt, 64-byte key) written
//! `@ByteArray(<salt base64>:<key base64>)`, so a qBittorrent settings value works here.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::Sha512;

/// PBKDF2 rounds, qBittorrent's number.
const ROUNDS: u32 = 100_000;
const SALT_LEN: usize = 16;
const KEY_LEN: usize = 64;

fn derive(password: &str, salt: &[u8]) -> [u8; KEY_LEN] {
    let mut key = [0u8; KEY_LEN];
    pbkdf2::pbkdf2_hmac::<Sha512>(password.as_bytes(), salt, ROUNDS, &mut key);
    key
}

/// The stored form of `password`, with a fresh random salt.
pub fn hash_password(password: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    let key = derive(password, &salt);
    format!(
        "@ByteArray({}:{})",
        STANDARD.encode(salt),
        STANDARD.encode(key)
    )
}

/// Whether `password` matches the stored form `stored` (a malformed one matches nothing).
pub fn verify_password(password: &str, stored: &str) -> bool {
    let Some(inner) = stored
        .strip_prefix("@ByteArray(")
        .and_then(|s| s.strip_suffix(')'))
    else {
        return false;
    };
    let Some((salt, key)) = inner.split_once(':') else {
        return false;
    };
    let (Ok(salt), Ok(key)) = (STANDARD.decode(salt), STANDARD.decode(key)) else {
        return false;
    };
    if key.len() != KEY_LEN {
        return false;
    }
    let got = derive(password, &salt);
    // Compare every byte, so the time does not tell how much matched.
    got.iter().zip(&key).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only_and_salts_differ() {
        let a = hash_password("secret");
        assert!(a.starts_with("@ByteArray(") && a.ends_with(')'));
        assert!(verify_password("secret", &a));
        assert!(!verify_password("Secret", &a));
        assert_ne!(a, hash_password("secret"), "a fresh salt each time");
        for bad in ["", "secret", "@ByteArray(xx)", "@ByteArray(AAAA:AAAA)"] {
            assert!(!verify_password("secret", bad), "{bad}");
        }
    }

    #[test]
    fn pbkdf2_hmac_sha512_matches_the_published_vector() {
        // RFC 6070-style vector for SHA-512 (password "password", salt "salt", 1 round).
        let mut key = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(b"password", b"salt", 1, &mut key);
        assert_eq!(hex::encode(&key[..16]), "867f70cf1ade02cff3752599a3a53dc4");
    }
}
