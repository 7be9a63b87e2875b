//! Who a visitor is: signed-in sessions, the anonymous visitor, sign-in attempts
//! limited per user and address, and the tokens that protect every form.
//!
//! A sign-in checks the password against the same users file as pgwire and Flight
//! SQL (the stored SCRAM verifier) and opens one engine session for the browser,
//! kept under a 256-bit random cookie in this server's memory only (a restart signs
//! everyone out). It ends on sign-out, after the configured idle time, or as soon as
//! the user is disabled or their password changes. A visitor who has not signed in
//! is the configured anonymous user (the `public` role), in a session of their own.
//!
//! Forms carry a token: before sign-in, the one in the `amar_csrf` cookie (double
//! submit: another site can make the browser send the cookie, but cannot read it to
//! put it in the form); after, the session's own.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::engine::{Engine, Peer, Session};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "amar_session";
/// The cookie with the form token of a visitor not signed in.
pub const CSRF_COOKIE: &str = "amar_csrf";

/// Failed sign-ins one user may have from one address within [`ATTEMPT_WINDOW`]
/// before sign-in is refused for them there until the window has passed.
pub const MAX_FAILURES: usize = 5;
/// Failed sign-ins one address may have for all users together in the window.
pub const MAX_FAILURES_PER_ADDRESS: usize = 20;
pub const ATTEMPT_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A new random token (256 bits).
pub fn token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// Whether two tokens are the same, in constant time.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A portal session of `user` from `addr` (front end `portal` in the audit log).
pub fn session(engine: &Arc<Engine>, user: amar_policies::User, addr: SocketAddr) -> Arc<Session> {
    Arc::new(engine.session(
        user,
        Peer {
            addr,
            protocol: "portal",
            application: "portal".to_string(),
        },
        &[],
    ))
}

/// One signed-in browser.
pub struct SignedIn {
    pub session: Arc<Session>,
    /// The token every form of this session carries.
    pub csrf: String,
    last_seen: Mutex<Instant>,
    /// Counts the session in `amar_connections{protocol="portal"}` while it lives.
    _counted: crate::metrics::Held,
}

/// What a request's session cookie came to.
pub enum Found {
    /// Signed in and within the idle time.
    Active(Arc<SignedIn>),
    /// There was a session, and it ended (idle, or the user changed); the visitor is
    /// anonymous again and is told so.
    Ended,
    /// No cookie, or one this server never issued.
    None,
}

/// The signed-in sessions.
pub struct Sessions {
    engine: Arc<Engine>,
    idle: Duration,
    by_token: Mutex<HashMap<String, Arc<SignedIn>>>,
}

impl Sessions {
    pub fn new(engine: Arc<Engine>, idle: Duration) -> Self {
        Sessions {
            engine,
            idle,
            by_token: Mutex::new(HashMap::new()),
        }
    }

    /// Opens a session for `user` (whose password was checked) from `addr`; its token.
    pub fn open(&self, user: amar_policies::User, addr: SocketAddr) -> (String, Arc<SignedIn>) {
        let session = session(&self.engine, user, addr);
        let signed = Arc::new(SignedIn {
            session,
            csrf: token(),
            last_seen: Mutex::new(Instant::now()),
            _counted: self.engine.metrics().connection("portal"),
        });
        let token = token();
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let idle = self.idle;
        map.retain(|_, s| now.duration_since(s.seen()) < idle);
        map.insert(token.clone(), signed.clone());
        (token, signed)
    }

    /// The session of `token`, if it is still good; an ended one is forgotten.
    pub fn find(&self, token: Option<&str>) -> Found {
        let Some(token) = token else {
            return Found::None;
        };
        let mut map = self.by_token.lock().unwrap_or_else(|e| e.into_inner());
        let Some(signed) = map.get(token).cloned() else {
            return Found::None;
        };
        let now = Instant::now();
        let idle = now.duration_since(signed.seen()) >= self.idle;
        if idle || signed.session.check_standing().is_err() {
            map.remove(token);
            return Found::Ended;
        }
        *signed.last_seen.lock().unwrap_or_else(|e| e.into_inner()) = now;
        Found::Active(signed)
    }

    /// Ends the session of `token`.
    pub fn close(&self, token: &str) {
        self.by_token
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

impl SignedIn {
    fn seen(&self) -> Instant {
        *self.last_seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Failed sign-ins, per user and address and per address.
#[derive(Default)]
pub struct Attempts {
    failures: Mutex<HashMap<(String, IpAddr), Vec<Instant>>>,
    per_address: Mutex<HashMap<IpAddr, Vec<Instant>>>,
}

impl Attempts {
    /// `None` if `user` may try to sign in from `addr` now; otherwise how long until
    /// they may.
    pub fn refused(&self, user: &str, addr: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let wait = |times: &Vec<Instant>, max: usize| {
            let recent: Vec<&Instant> = times
                .iter()
                .filter(|t| now.duration_since(**t) < ATTEMPT_WINDOW)
                .collect();
            (recent.len() >= max).then(|| {
                let oldest = recent.iter().map(|t| **t).min().unwrap_or(now);
                ATTEMPT_WINDOW.saturating_sub(now.duration_since(oldest))
            })
        };
        let by_user = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = by_user.get(&(user.to_string(), addr))
            && let Some(w) = wait(times, MAX_FAILURES)
        {
            return Some(w);
        }
        drop(by_user);
        let by_addr = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        by_addr
            .get(&addr)
            .and_then(|times| wait(times, MAX_FAILURES_PER_ADDRESS))
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, user: &str, addr: IpAddr) {
        let now = Instant::now();
        let keep = |times: &mut Vec<Instant>| {
            times.retain(|t| now.duration_since(*t) < ATTEMPT_WINDOW);
            times.push(now);
        };
        {
            let mut by_user = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            // Forget what has aged out, so the map does not grow without bound.
            if by_user.len() > 10_000 {
                by_user.retain(|_, t| t.iter().any(|t| now.duration_since(*t) < ATTEMPT_WINDOW));
            }
            keep(by_user.entry((user.to_string(), addr)).or_default());
        }
        let mut by_addr = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
        if by_addr.len() > 10_000 {
            by_addr.retain(|_, t| t.iter().any(|t| now.duration_since(*t) < ATTEMPT_WINDOW));
        }
        keep(by_addr.entry(addr).or_default());
    }

    /// A successful sign-in clears the user's failures from that address.
    pub fn succeeded(&self, user: &str, addr: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(user.to_string(), addr));
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_refuse_the_user_at_that_address_only() {
        let attempts = Attempts::default();
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            attempts.failed("tehran", here);
            assert!(attempts.refused("tehran", here).is_none());
        }
        attempts.failed("tehran", here);
        let wait = attempts.refused("tehran", here).expect("refused");
        assert!(wait > Duration::from_secs(14 * 60) && wait <= ATTEMPT_WINDOW);
        assert!(attempts.refused("tehran", there).is_none());
        assert!(attempts.refused("admin", here).is_none());
    }

    #[test]
    fn many_users_from_one_address_are_refused_together() {
        let attempts = Attempts::default();
        let here: IpAddr = "10.0.0.1".parse().unwrap();
        for i in 0..MAX_FAILURES_PER_ADDRESS {
            attempts.failed(&format!("u{i}"), here);
        }
        assert!(attempts.refused("someone_else", here).is_some());
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            "a=1; amar_session=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
