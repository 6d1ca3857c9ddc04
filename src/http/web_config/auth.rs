//! `basic_auth_users`: bcrypt-hashed passwords checked off the async threads, with a bounded
//! cache of successes and a dummy hash for unknown users.
//!
//! Every check runs one bcrypt verification at each cost found among the configured users:
//! the user's own hash at its cost, and a dummy hash (of a random password, made once per
//! process and cost) at each other cost, or at all of them for an unknown user. So every
//! check costs the same whatever the name, even when users' hashes have different costs
//! (checking only the user's own hash would answer a cost-4 user's wrong password in a few
//! milliseconds and an unknown name in a few hundred, telling which names exist). User names
//! are compared without stopping at the first difference.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use base64::Engine as _;
use hyper::header::HeaderValue;
use tokio::sync::Semaphore;

/// bcrypt checks running at once, process-wide (each takes a core for tens of milliseconds).
const CONCURRENT_CHECKS: usize = 2;
/// How long a request waits for a turn before it is answered [`Check::Busy`].
const WAIT_FOR_A_TURN: Duration = Duration::from_secs(3);
/// Successful checks remembered.
const CACHE_ENTRIES: usize = 1024;
/// The longest `Authorization` header looked at, in bytes.
const MAX_HEADER_BYTES: usize = 4096;

static TURNS: Semaphore = Semaphore::const_new(CONCURRENT_CHECKS);

/// Dummy hashes made so far, by cost.
static DUMMIES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

/// The users allowed in (name → bcrypt hash) and a bounded cache of checks that succeeded.
/// Its `Debug` shows the number of users only.
#[derive(Default)]
pub(crate) struct Users {
    /// (name, hash), sorted by name.
    users: Vec<(String, String)>,
    /// The distinct costs among `users`' hashes, ascending: each check verifies one hash of
    /// each.
    costs: Vec<u32>,
    cache: Mutex<Cache>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Users")
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// Successes remembered, by SHA-256 of (user, hash, password); the oldest forgotten first.
#[derive(Debug, Default)]
struct Cache {
    keys: HashSet<[u8; 32]>,
    order: VecDeque<[u8; 32]>,
}

impl Cache {
    fn insert(&mut self, key: [u8; 32]) {
        if self.keys.insert(key) {
            self.order.push_back(key);
            while self.order.len() > CACHE_ENTRIES {
                if let Some(old) = self.order.pop_front() {
                    self.keys.remove(&old);
                }
            }
        }
    }
}

/// The outcome of [`Users::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The credentials match a user.
    Allowed,
    /// Missing, malformed or wrong credentials: answer 401.
    Denied,
    /// No turn to check came within a few seconds: answer 503.
    Busy,
}

impl Users {
    /// Validates the hashes; on error, the user's name and what is wrong.
    pub(super) fn new(mut users: Vec<(String, String)>) -> Result<Users, (String, String)> {
        let mut costs = Vec::new();
        for (name, hash) in &users {
            if name.contains(':') {
                return Err((
                    name.clone(),
                    "a user name cannot hold a colon: basic auth sends `user:password` and \
                     the first colon ends the name, so this user could never log in"
                        .into(),
                ));
            }
            let cost = hash_cost(hash).map_err(|message| (name.clone(), message))?;
            costs.push(cost);
        }
        costs.sort_unstable();
        costs.dedup();
        users.sort();
        Ok(Users {
            users,
            costs,
            cache: Mutex::new(Cache::default()),
        })
    }

    /// No users configured: no authentication.
    pub(crate) fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// How many users there are.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.users.len()
    }

    /// Checks an `Authorization: Basic …` header. bcrypt runs off the async threads
    /// (spawn_blocking) with at most 2 checks at once, process-wide; waiting longer than a few
    /// seconds for a turn is [`Check::Busy`]. An unknown user is checked against a dummy hash
    /// of the same cost. Successes are cached (bounded), keyed by a SHA-256 of user, hash and
    /// password. Missing or malformed headers are [`Check::Denied`].
    pub(crate) async fn check(&self, authorization: Option<&HeaderValue>) -> Check {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return Check::Denied;
        };
        let known = self.find(&user);
        let hash = match known {
            Some(index) => self.users[index].1.clone(),
            None => String::new(),
        };
        let key = cache_key(&user, &hash, &password);
        if known.is_some()
            && self
                .cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .keys
                .contains(&key)
        {
            return Check::Allowed;
        }
        let Ok(Ok(turn)) = tokio::time::timeout(WAIT_FOR_A_TURN, TURNS.acquire()).await else {
            return Check::Busy;
        };
        let rounds = rounds(&self.costs, hash_cost(&hash).ok());
        // The turn goes with the work: a request dropped meanwhile does not free it early.
        let matched = tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let mut matched = false;
            for (cost, own) in rounds {
                if own {
                    matched = bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false);
                } else {
                    // Same work, result unused: the time must not tell the name.
                    let _ = bcrypt::verify(password.as_bytes(), &dummy_hash(cost));
                }
            }
            matched
        })
        .await
        .unwrap_or(false);
        if matched && known.is_some() {
            self.cache
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(key);
            Check::Allowed
        } else {
            Check::Denied
        }
    }

    /// The index of `user`, comparing with every name without stopping early.
    fn find(&self, user: &str) -> Option<usize> {
        let mut found = None;
        for (index, (name, _)) in self.users.iter().enumerate() {
            if same(name.as_bytes(), user.as_bytes()) {
                found = Some(index);
            }
        }
        found
    }
}

/// What one check verifies: `(cost, own)` for each of `costs`, `own` for the user's own hash
/// (at `own_cost`, the known user's), a dummy hash of that cost otherwise. The same costs for
/// every name, known or not.
fn rounds(costs: &[u32], own_cost: Option<u32>) -> Vec<(u32, bool)> {
    let mut own_done = false;
    costs
        .iter()
        .map(|&cost| {
            let own = !own_done && Some(cost) == own_cost;
            own_done |= own;
            (cost, own)
        })
        .collect()
}

/// Whether two byte strings are equal, looking at every byte of `b` whatever the differences.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    let mut differ = u8::from(a.len() != b.len());
    for (index, byte) in b.iter().enumerate() {
        differ |= a.get(index).copied().unwrap_or(0) ^ byte;
    }
    differ == 0
}

/// The cost of a bcrypt hash, or what is wrong with it.
fn hash_cost(hash: &str) -> Result<u32, String> {
    const WANT: &str = "expected a bcrypt hash: $2a$, $2b$ or $2y$, a cost of 4 to 31, 60 \
                        characters (htpasswd -nBC 10 \"\" | tr -d ':\\n' makes one)";
    let prefix_ok = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| hash.starts_with(prefix));
    if !prefix_ok {
        return Err(not_bcrypt(hash, WANT));
    }
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|error| format!("not a valid bcrypt hash: {error} ({WANT})"))?;
    let cost = parts.get_cost();
    if !(4..=31).contains(&cost) {
        return Err(format!("bcrypt cost {cost} is out of range ({WANT})"));
    }
    Ok(cost)
}

/// Why a value that does not start like a bcrypt hash was refused, with the likely mistake
/// named: the whole `user:hash` line htpasswd prints, or a hash of another kind (htpasswd
/// without `-B`). Never quotes the value beyond a user name: it may be a password.
fn not_bcrypt(value: &str, want: &str) -> String {
    if let Some((before, after)) = value.split_once(':')
        && ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| after.starts_with(p))
        && !before.contains('$')
    {
        return format!(
            "not a bcrypt hash: it starts with {:?}, the user name htpasswd prints before \
             the hash: keep only what follows the colon ({want})",
            format!("{}:", crate::logging::clip(before, 64))
        );
    }
    let other = [
        ("$apr1$", "an Apache MD5 hash"),
        ("{SHA}", "a SHA-1 hash"),
        ("$1$", "an MD5-crypt hash"),
        ("$5$", "a SHA-256-crypt hash"),
        ("$6$", "a SHA-512-crypt hash"),
        ("$argon2", "an Argon2 hash"),
    ];
    if let Some((_, kind)) = other.iter().find(|(prefix, _)| value.starts_with(prefix)) {
        return format!(
            "not a bcrypt hash: this is {kind} (htpasswd makes one without -B); only bcrypt \
             is accepted ({want})"
        );
    }
    format!("not a bcrypt hash ({want})")
}

/// The user and password of a `Basic` authorization header; `None` for any other scheme or
/// anything malformed.
fn basic_credentials(header: &HeaderValue) -> Option<(String, String)> {
    let bytes = header.as_bytes();
    if bytes.len() > MAX_HEADER_BYTES {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The user name of a `Basic` authorization header, for a log line; never the password.
pub(crate) fn basic_user(header: &HeaderValue) -> Option<String> {
    basic_credentials(header).map(|(user, _)| user)
}

/// SHA-256 of the lengths and bytes of user, hash and password.
fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [user, hash, password] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// A hash of a random password at `cost`, made once per process and cost. Runs bcrypt: call
/// off the async threads.
fn dummy_hash(cost: u32) -> String {
    let cost = cost.clamp(4, 31);
    let mut dummies = DUMMIES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, hash)) = dummies.iter().find(|(have, _)| *have == cost) {
        return hash.clone();
    }
    let password: [u8; 16] = rand::random();
    // A failing hash (it cannot for a cost in range) leaves an empty string, which verifies
    // nothing: the check is then only denied faster.
    let hash = bcrypt::hash(password, cost).unwrap_or_default();
    dummies.push((cost, hash.clone()));
    hash
}

#[cfg(test)]
pub(super) mod test_support {
    /// Whether `user:password` is remembered as a success.
    pub(crate) fn cached(users: &super::Users, user: &str, password: &str) -> bool {
        let Some(index) = users.find(user) else {
            return false;
        };
        let key = super::cache_key(user, &users.users[index].1, password);
        users.cache.lock().unwrap().keys.contains(&key)
    }

    /// How many successes are remembered.
    pub(crate) fn cache_len(users: &super::Users) -> usize {
        users.cache.lock().unwrap().keys.len()
    }

    /// Remembers `count` made-up successes.
    pub(crate) fn fill_cache(users: &super::Users, count: usize) {
        let mut cache = users.cache.lock().unwrap();
        for n in 0..count {
            cache.insert(super::cache_key("made-up", "", &n.to_string()));
        }
    }

    /// Takes every turn to check until the result is dropped.
    pub(crate) async fn hold_all_turns() -> tokio::sync::SemaphorePermit<'static> {
        super::TURNS
            .acquire_many(super::CONCURRENT_CHECKS as u32)
            .await
            .unwrap()
    }

    /// The costs one check of `user` verifies at, and whether the user's own hash is among
    /// them.
    pub(crate) fn rounds_for(users: &super::Users, user: &str) -> (Vec<u32>, bool) {
        let own = users
            .find(user)
            .and_then(|index| super::hash_cost(&users.users[index].1).ok());
        let rounds = super::rounds(&users.costs, own);
        let own = rounds.iter().any(|(_, own)| *own);
        (rounds.into_iter().map(|(cost, _)| cost).collect(), own)
    }

    pub(in crate::http::web_config) use super::same;

    pub(crate) fn cache_bound() -> usize {
        super::CACHE_ENTRIES
    }

    pub(crate) fn concurrent_checks() -> usize {
        super::CONCURRENT_CHECKS
    }
}
