//! `--shard I/N`: which accounts one of N instances handles.
//!
//! An account belongs to shard `fnv1a64(name) % N`, where the hash is the 64-bit FNV-1a of the
//! account name's UTF-8 bytes. N instances that share one configuration file (each with its
//! own state directory) split the accounts between them with none handled twice; the split
//! depends only on the names, so it is the same on every machine and after every restart.
//!
//! The commands that take `--shard` (`run`, `sweep`, `status`, and the history commands) use
//! [`ShardArg`] and drop every account for which [`Shard::contains`] is false: such an account
//! is neither connected to nor reported.

use std::fmt;
use std::str::FromStr;

/// One instance's part of the accounts: shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    /// `I`, always below `count`.
    index: u64,
    /// `N`, at least 1.
    count: u64,
}

/// Why `I/N` was refused (the message is the whole explanation; clap prefixes the option).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShardError(String);

impl Default for Shard {
    /// `0/1`: every account.
    fn default() -> Shard {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Shard `index` of `count`; `None` unless `index < count`.
    pub fn new(index: u64, count: u64) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    pub fn index(&self) -> u64 {
        self.index
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The shard an account name belongs to, out of `count`.
    pub fn of(name: &str, count: u64) -> u64 {
        fnv1a64(name.as_bytes()) % count.max(1)
    }

    /// Whether this shard handles the account called `name`.
    pub fn contains(&self, name: &str) -> bool {
        Shard::of(name, self.count) == self.index
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    /// `I/N`: two decimal numbers (digits only), `N >= 1`, `I < N`.
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let junk = || {
            ShardError(format!(
                "expected I/N, two numbers with 0 <= I < N (e.g. 0/3), found {s:?}"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(junk)?;
        let number = |t: &str| {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                return Err(junk());
            }
            t.parse::<u64>().map_err(|_| junk())
        };
        let (index, count) = (number(i)?, number(n)?);
        if count == 0 {
            return Err(ShardError(format!(
                "{s:?}: the number of shards N must be at least 1"
            )));
        }
        Shard::new(index, count).ok_or_else(|| {
            ShardError(format!(
                "{s:?}: the shard index I must be below N (shards are numbered 0 to {})",
                count - 1
            ))
        })
    }
}

/// The 64-bit FNV-1a hash (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(PRIME)
    })
}

/// The `--shard` option, shared by every command that takes it (flatten it into the command's
/// arguments).
#[derive(Clone, Copy, Debug, Default, clap::Args)]
pub struct ShardArg {
    /// Handle only the accounts of shard I of N (FNV-1a 64 of the account name, modulo N);
    /// the others are neither connected to nor reported.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
}

impl ShardArg {
    /// Whether the account called `name` is handled (always, without `--shard`).
    pub fn keeps(&self, name: &str) -> bool {
        self.shard.is_none_or(|s| s.contains(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        // From the FNV reference test suite (64-bit FNV-1a).
        let table: [(&[u8], u64); 6] = [
            (b"", 0xcbf29ce484222325),
            (b"a", 0xaf63dc4c8601ec8c),
            (b"b", 0xaf63df4c8601f1a5),
            (b"foo", 0xdcb27518fed9d577),
            (b"foobar", 0x85944171f73967e8),
            (b"chongo was here!\n", 0x46810940eff5f915),
        ];
        for (input, want) in table {
            assert_eq!(fnv1a64(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn the_hash_is_of_the_utf8_bytes() {
        // "é" is two bytes in UTF-8; hashing the char as one byte would give another value.
        assert_eq!(fnv1a64("é".as_bytes()), fnv1a64(&[0xc3, 0xa9]));
        assert_ne!(fnv1a64("é".as_bytes()), fnv1a64(&[0xe9]));
    }

    #[test]
    fn shard_of_a_name_is_its_hash_modulo_n() {
        for name in ["personal", "work", "a", "team-b.inbox", "ünïcode"] {
            for n in 1..=7 {
                let want = fnv1a64(name.as_bytes()) % n;
                assert_eq!(Shard::of(name, n), want);
                let owners: Vec<u64> = (0..n)
                    .filter(|&i| Shard::new(i, n).unwrap().contains(name))
                    .collect();
                assert_eq!(owners, [want], "{name} in {n} shards");
            }
        }
    }

    #[test]
    fn parses_i_of_n() {
        for (text, index, count) in [
            ("0/1", 0, 1),
            ("0/3", 0, 3),
            ("2/3", 2, 3),
            ("07/10", 7, 10),
        ] {
            let s: Shard = text.parse().unwrap();
            assert_eq!((s.index(), s.count()), (index, count), "{text}");
        }
        assert_eq!("2/3".parse::<Shard>().unwrap().to_string(), "2/3");
    }

    #[test]
    fn refuses_what_is_not_i_below_n() {
        for text in [
            "3/3",
            "4/3",
            "0/0",
            "1/0",
            "",
            "/",
            "1",
            "1/",
            "/3",
            "a/3",
            "1/b",
            "-1/3",
            "+1/3",
            "1/-3",
            " 1/3",
            "1/3 ",
            "1/3/4",
            "1.0/3",
            "0x1/3",
            "99999999999999999999/3",
        ] {
            let err = text.parse::<Shard>().unwrap_err().to_string();
            assert!(!err.is_empty(), "{text:?}");
        }
        assert!(
            "3/3"
                .parse::<Shard>()
                .unwrap_err()
                .to_string()
                .contains("below N")
        );
        assert!(
            "0/0"
                .parse::<Shard>()
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
    }

    #[test]
    fn without_a_shard_every_account_is_kept() {
        let all = ShardArg { shard: None };
        assert!(all.keeps("anything"));
        let one = ShardArg {
            shard: Some(Shard::new(Shard::of("x", 4), 4).unwrap()),
        };
        assert!(one.keeps("x"));
        let other = ShardArg {
            shard: Some(Shard::new((Shard::of("x", 4) + 1) % 4, 4).unwrap()),
        };
        assert!(!other.keeps("x"));
    }
}
