//! Flight SQL authentication: the basic-auth handshake checks the password against
//! the same users file as pgwire and issues a bearer token; every later call presents
//! the token.
//!
//! Tokens are 256 random bits, kept only in this server's memory (a restart revokes
//! them all), expire after [`TOKEN_LIFETIME`] and stop working as soon as their user
//! is disabled or their password changes. Each token carries one engine session, so
//! settings persist across a client's calls. A client that sends Basic authorization
//! on every call gets one session per credentials, forgotten after [`BASIC_IDLE`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::engine::{Engine, Peer, Session};

/// How long a token stays valid after the handshake.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// How long the session of a client that authenticates every call with Basic
/// authorization is kept without a call.
pub const BASIC_IDLE: Duration = Duration::from_secs(10 * 60);

struct Issued {
    session: Arc<Session>,
    expires: Instant,
    /// Counts the session in `amar_connections{protocol="flight"}` while it lives.
    _counted: crate::metrics::Held,
}

/// The tokens this server has issued.
pub struct Tokens {
    engine: Arc<Engine>,
    issued: RwLock<HashMap<String, Issued>>,
}

fn unauthenticated(message: &str) -> Status {
    Status::unauthenticated(message.to_string())
}

impl Tokens {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            engine,
            issued: RwLock::new(HashMap::new()),
        }
    }

    /// Checks `user:password` from a Basic authorization header and issues a token.
    pub fn login(
        &self,
        authorization: &str,
        peer: Option<SocketAddr>,
    ) -> Result<(String, Arc<Session>), Status> {
        let session = self.authenticate(authorization, peer)?;
        let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        self.keep(token.clone(), session.clone(), TOKEN_LIFETIME);
        tracing::info!(user = %session.user.name, session = session.id, "flight session started");
        Ok((token, session))
    }

    /// Remembers `session` under `key` for `lifetime`, forgetting expired ones.
    fn keep(&self, key: String, session: Arc<Session>, lifetime: Duration) {
        let mut issued = self.issued.write().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        issued.retain(|_, i| i.expires > now);
        issued.insert(
            key,
            Issued {
                session,
                expires: now + lifetime,
                _counted: self.engine.metrics().connection("flight"),
            },
        );
    }

    /// The session of a client that sends Basic authorization on every call instead
    /// of a token: one per credentials, kept while it is used and forgotten after
    /// [`BASIC_IDLE`] without a call, so such clients leave no sessions behind.
    fn basic_session(
        &self,
        authorization: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Arc<Session>, Status> {
        let digest = ring::digest::digest(&ring::digest::SHA256, authorization.as_bytes());
        let key = format!("basic:{}", URL_SAFE_NO_PAD.encode(digest.as_ref()));
        {
            let mut issued = self.issued.write().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = issued.get_mut(&key)
                && entry.expires > Instant::now()
            {
                entry.expires = Instant::now() + BASIC_IDLE;
                let session = entry.session.clone();
                drop(issued);
                return self.standing(session);
            }
        }
        let session = self.authenticate(authorization, peer)?;
        self.keep(key, session.clone(), BASIC_IDLE);
        Ok(session)
    }

    /// `session` if its user still stands as they signed in (not disabled, same
    /// password).
    fn standing(&self, session: Arc<Session>) -> Result<Arc<Session>, Status> {
        match session.check_standing() {
            Ok(()) => Ok(session),
            Err(e) => Err(unauthenticated(&e.message)),
        }
    }

    /// Checks `user:password` from a Basic authorization header; a new session.
    fn authenticate(
        &self,
        authorization: &str,
        peer: Option<SocketAddr>,
    ) -> Result<Arc<Session>, Status> {
        let encoded = authorization
            .strip_prefix("Basic ")
            .ok_or_else(|| unauthenticated("the handshake needs Basic authorization"))?;
        // Clients differ in padding and alphabet (ADBC's Go client pads nothing).
        let encoded = encoded.trim();
        let decoded = [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
            .iter()
            .find_map(|engine| engine.decode(encoded).ok())
            .ok_or_else(|| unauthenticated("the Basic authorization is not base64"))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| unauthenticated("the Basic authorization is not UTF-8"))?;
        let (user, password) = text
            .split_once(':')
            .ok_or_else(|| unauthenticated("the Basic authorization is not user:password"))?;
        let Some(account) = self.engine.verify_password(user, password) else {
            tracing::warn!(user, "flight authentication failed");
            return Err(unauthenticated(&format!(
                "password authentication failed for user \"{user}\""
            )));
        };
        let session = Arc::new(self.engine.session(
            account,
            Peer {
                addr: peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
                protocol: "flight",
                application: String::new(),
            },
            &[],
        ));
        Ok(session)
    }

    /// The session of the bearer token in `metadata`. A call that carries Basic
    /// authorization instead (some clients skip the handshake) logs in on the spot.
    pub fn session(
        &self,
        metadata: &MetadataMap,
        peer: Option<SocketAddr>,
    ) -> Result<Arc<Session>, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| {
                unauthenticated("no authorization: do the handshake, then send the bearer token")
            })?
            .to_str()
            .map_err(|_| unauthenticated("the authorization header is not text"))?;
        if header.starts_with("Basic ") {
            return self.basic_session(header, peer);
        }
        let token = header
            .strip_prefix("Bearer ")
            .ok_or_else(|| unauthenticated("the authorization header must be Bearer <token>"))?
            .trim();
        let issued = self.issued.read().unwrap_or_else(|e| e.into_inner());
        let entry = issued
            .get(token)
            .ok_or_else(|| unauthenticated("unknown or revoked token; do the handshake again"))?;
        if entry.expires <= Instant::now() {
            return Err(unauthenticated(
                "the token has expired; do the handshake again",
            ));
        }
        // A user disabled, or whose password changed, since the handshake loses
        // access at once.
        let session = entry.session.clone();
        drop(issued);
        self.standing(session)
    }
}
