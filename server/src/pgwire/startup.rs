//! Connection startup: SCRAM-SHA-256 authentication against the users file, then the
//! session and the parameters drivers rely on.
//!
//! The exchange follows RFC 5802 as PostgreSQL implements it: the user name comes from
//! the startup packet (the SCRAM `n=` field is ignored, as PostgreSQL does), channel
//! binding is not offered, and an unknown or disabled user goes through the whole
//! exchange against a mock verifier and fails at the end with the same 28P01 as a
//! wrong password, so probing does not reveal which users exist.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use amar_policies::ScramVerifier;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    StartupHandler, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::{
    ClientInfo, ConnectionHandle, ConnectionManager, METADATA_APPLICATION_NAME, METADATA_USER,
    PgWireConnectionState,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::startup::{
    Authentication, BackendKeyData, ParameterStatus, PasswordMessageFamily,
};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::SessionHandle;
use crate::engine::{Engine, Peer, code};

/// Where a connection's authentication stands.
enum AuthState {
    Initial,
    /// Server-first sent; waiting for the client's proof.
    ServerFirstSent(Box<Exchange>),
    Done,
}

/// What the server remembers between its first message and the client's proof.
struct Exchange {
    user: String,
    verifier: ScramVerifier,
    /// The user may log in (exists and is enabled); false means the mock exchange.
    allowed: bool,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

pub struct ScramStartup {
    engine: Arc<Engine>,
    connections: Arc<ConnectionManager>,
    state: Mutex<AuthState>,
    /// A per-server secret, so mock salts cannot be predicted from outside.
    mock_secret: Arc<[u8; 32]>,
    /// Refuse connections that did not negotiate TLS.
    require_tls: bool,
    /// The connection is one more than the server allows.
    over_limit: bool,
    /// Where the session is found by its cancel key.
    cancels: Arc<super::Cancels>,
}

impl ScramStartup {
    pub fn new(
        engine: Arc<Engine>,
        connections: Arc<ConnectionManager>,
        mock_secret: Arc<[u8; 32]>,
        require_tls: bool,
        over_limit: bool,
        cancels: Arc<super::Cancels>,
    ) -> Self {
        Self {
            engine,
            connections,
            state: Mutex::new(AuthState::Initial),
            mock_secret,
            require_tls,
            over_limit,
            cancels,
        }
    }
}

fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_string(),
        code.to_string(),
        message.into(),
    )))
}

fn auth_failed(user: &str) -> PgWireError {
    fatal(
        code::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

fn protocol_error(message: &str) -> PgWireError {
    fatal(
        code::PROTOCOL_VIOLATION,
        format!("malformed SCRAM message: {message}"),
    )
}

/// `client-first-message` = gs2-header client-first-message-bare.
fn parse_client_first(data: &[u8]) -> Result<(String, String, String), PgWireError> {
    let text = std::str::from_utf8(data).map_err(|_| protocol_error("not UTF-8"))?;
    let mut parts = text.splitn(3, ',');
    let cbind = parts.next().unwrap_or_default();
    let authzid = parts
        .next()
        .ok_or_else(|| protocol_error("no gs2 header"))?;
    let bare = parts
        .next()
        .ok_or_else(|| protocol_error("no client-first-message-bare"))?;
    match cbind {
        "n" | "y" => {}
        c if c.starts_with("p=") => {
            return Err(fatal(
                code::PROTOCOL_VIOLATION,
                "channel binding is not supported; connect with channel_binding=disable or prefer",
            ));
        }
        _ => return Err(protocol_error("bad gs2 channel-binding flag")),
    }
    if !authzid.is_empty() {
        return Err(protocol_error("authorization identities are not supported"));
    }
    let nonce = bare
        .split(',')
        .find_map(|attr| attr.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_graphic() && c != ','))
        .ok_or_else(|| protocol_error("no client nonce"))?;
    Ok((
        format!("{cbind},{authzid},"),
        bare.to_string(),
        nonce.to_string(),
    ))
}

#[async_trait]
impl StartupHandler for ScramStartup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                if self.over_limit {
                    return Err(fatal(
                        code::TOO_MANY_CONNECTIONS,
                        "sorry, too many clients already",
                    ));
                }
                if self.require_tls && !client.is_secure() {
                    return Err(fatal(
                        code::INVALID_AUTHORIZATION,
                        "this server accepts only TLS connections; connect with sslmode=require or verify-full",
                    ));
                }
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if client
                    .metadata()
                    .get(METADATA_USER)
                    .is_none_or(|u| u.is_empty())
                {
                    return Err(fatal(
                        code::INVALID_AUTHORIZATION,
                        "no PostgreSQL user name specified in startup packet",
                    ));
                }
                if let Some(db) = client.metadata().get("database")
                    && !db.is_empty()
                    && db != amar_catalog::DATABASE
                {
                    return Err(fatal(
                        "3D000",
                        format!(
                            "database \"{db}\" does not exist (Amar serves one database, \"{}\")",
                            amar_catalog::DATABASE
                        ),
                    ));
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec!["SCRAM-SHA-256".to_string()],
                    )))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(msg) => {
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let state = std::mem::replace(
                    &mut *self.state.lock().unwrap_or_else(|e| e.into_inner()),
                    AuthState::Done,
                );
                match state {
                    AuthState::Initial => {
                        // Read here with every length checked: pgwire's decoder
                        // reads past the end of a short one.
                        let (mechanism, data) = match msg {
                            PasswordMessageFamily::Raw(body) => {
                                super::frames::sasl_initial_response(&body)
                                    .map_err(|e| protocol_error(&e.to_string()))?
                            }
                            _ => return Err(protocol_error("expected a SASL initial response")),
                        };
                        if mechanism != "SCRAM-SHA-256" {
                            return Err(fatal(
                                code::PROTOCOL_VIOLATION,
                                format!("unsupported SASL mechanism \"{mechanism}\""),
                            ));
                        }
                        let data =
                            data.ok_or_else(|| protocol_error("empty client-first-message"))?;
                        let (gs2_header, client_first_bare, client_nonce) =
                            parse_client_first(&data)?;
                        let entry = self.engine.users().lookup(&user);
                        let (verifier, allowed) = match entry {
                            Some(u) if !u.disabled => (u.verifier.clone(), true),
                            _ => {
                                let mut seed = self.mock_secret.to_vec();
                                seed.extend_from_slice(user.as_bytes());
                                (ScramVerifier::mock(&seed), false)
                            }
                        };
                        let server_nonce: [u8; 18] = rand::random();
                        let nonce = format!("{client_nonce}{}", B64.encode(server_nonce));
                        let server_first = format!(
                            "r={nonce},s={},i={}",
                            B64.encode(verifier.salt()),
                            verifier.iterations()
                        );
                        client
                            .send(PgWireBackendMessage::Authentication(
                                Authentication::SASLContinue(
                                    server_first.clone().into_bytes().into(),
                                ),
                            ))
                            .await?;
                        *self.state.lock().unwrap_or_else(|e| e.into_inner()) =
                            AuthState::ServerFirstSent(Box::new(Exchange {
                                user,
                                verifier,
                                allowed,
                                gs2_header,
                                client_first_bare,
                                server_first,
                                nonce,
                            }));
                    }
                    AuthState::ServerFirstSent(exchange) => {
                        let Exchange {
                            user,
                            verifier,
                            allowed,
                            gs2_header,
                            client_first_bare,
                            server_first,
                            nonce,
                        } = *exchange;
                        let response = msg.into_sasl_response()?;
                        let text = std::str::from_utf8(&response.data)
                            .map_err(|_| protocol_error("not UTF-8"))?;
                        let (without_proof, proof) = text
                            .rsplit_once(",p=")
                            .ok_or_else(|| protocol_error("no proof in client-final-message"))?;
                        let mut channel_binding = None;
                        let mut final_nonce = None;
                        for attr in without_proof.split(',') {
                            if let Some(c) = attr.strip_prefix("c=") {
                                channel_binding = Some(c);
                            } else if let Some(r) = attr.strip_prefix("r=") {
                                final_nonce = Some(r);
                            }
                        }
                        if channel_binding != Some(B64.encode(gs2_header.as_bytes()).as_str()) {
                            return Err(protocol_error("channel binding does not match"));
                        }
                        if final_nonce != Some(nonce.as_str()) {
                            return Err(protocol_error("nonce does not match"));
                        }
                        let proof = B64
                            .decode(proof)
                            .map_err(|_| protocol_error("proof is not base64"))?;
                        let auth_message =
                            format!("{client_first_bare},{server_first},{without_proof}");
                        if !verifier.verify_client_proof(auth_message.as_bytes(), &proof)
                            || !allowed
                        {
                            tracing::warn!(user = %user, addr = %client.socket_addr(), "authentication failed");
                            return Err(auth_failed(&user));
                        }
                        let signature =
                            B64.encode(verifier.server_signature(auth_message.as_bytes()));
                        client
                            .feed(PgWireBackendMessage::Authentication(
                                Authentication::SASLFinal(
                                    format!("v={signature}").into_bytes().into(),
                                ),
                            ))
                            .await?;
                        self.finish(client, &user).await?;
                    }
                    AuthState::Done => {
                        return Err(fatal(
                            code::PROTOCOL_VIOLATION,
                            "unexpected authentication message",
                        ));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl ScramStartup {
    /// After a successful exchange: the session, cancel key, parameters, ready.
    async fn finish<C>(&self, client: &mut C, user: &str) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        // Re-read: the user may have been disabled during the exchange.
        let Some(account) = self.engine.users().lookup(user).filter(|u| !u.disabled) else {
            return Err(auth_failed(user));
        };
        let startup: Vec<(String, String)> = client
            .metadata()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let peer = Peer {
            addr: client.socket_addr(),
            protocol: "pgwire",
            application: client
                .metadata()
                .get(METADATA_APPLICATION_NAME)
                .cloned()
                .unwrap_or_default(),
        };
        let session = self.engine.session(account, peer, &startup);
        let pid = session.id as i32 & 0x7fff_ffff;
        let secret: [u8; 4] = rand::random();
        client.set_pid_and_secret_key(
            pid,
            pgwire::messages::startup::SecretKey::I32(i32::from_be_bytes(secret)),
        );
        let (pid, key) = client.pid_and_secret_key();
        let (handle, guard) = self.connections.register(pid, key.clone());
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert(guard);

        client
            .feed(PgWireBackendMessage::Authentication(Authentication::Ok))
            .await?;
        for (name, value) in session.settings().reported() {
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    name, value,
                )))
                .await?;
        }
        let session = Arc::new(session);
        self.cancels.register(pid, key.clone(), &session);
        client
            .feed(PgWireBackendMessage::BackendKeyData(BackendKeyData::new(
                pid, key,
            )))
            .await?;
        tracing::info!(user = %session.user.name, addr = %client.socket_addr(), session = session.id, "pgwire session started");
        client.session_extensions().insert(SessionHandle(session));
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                TransactionStatus::Idle,
            )))
            .await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_first_messages_parse_strictly() {
        let (gs2, bare, nonce) = parse_client_first(b"n,,n=,r=abc").unwrap();
        assert_eq!(gs2, "n,,");
        assert_eq!(bare, "n=,r=abc");
        assert_eq!(nonce, "abc");
        assert!(parse_client_first(b"p=tls-server-end-point,,n=,r=abc").is_err());
        assert!(parse_client_first(b"x,,n=,r=abc").is_err());
        assert!(parse_client_first(b"n,,n=").is_err());
        assert!(parse_client_first(b"n").is_err());
        assert!(parse_client_first(&[0xff, 0xfe]).is_err());
    }
}
