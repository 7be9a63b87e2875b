//! Arbitrary bytes as a client's stream, through Amar's layout check
//! (`server/src/pgwire/frames.rs`, compiled in here as it is) and then pgwire's
//! decoders, in the state the connection would be in: every message the check lets
//! through must decode without panicking, and SASL initial responses must read
//! without panicking too. The stream is tried from the start of a connection and
//! as what follows a startup packet.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire::messages::startup::PasswordMessageFamily;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

#[path = "../../server/src/pgwire/frames.rs"]
#[allow(dead_code)]
mod frames;

use frames::{Phase, Verdict, check, sasl_initial_response};

fn walk(data: &[u8], mut phase: Phase, version: ProtocolVersion) {
    let mut at = 0;
    while at < data.len() {
        let (n, startup) = match check(&data[at..], phase) {
            Verdict::Whole(n, next) => {
                let startup = phase == Phase::Startup;
                phase = next;
                (n, startup)
            }
            Verdict::Stream(n) if at + n <= data.len() => (n, false),
            _ => return,
        };
        let mut ctx = DecodeContext::new(version);
        ctx.awaiting_frontend_ssl = false;
        ctx.awaiting_frontend_startup = startup;
        let mut buf = BytesMut::from(&data[at..at + n]);
        if let Ok(Some(PgWireFrontendMessage::PasswordMessageFamily(PasswordMessageFamily::Raw(
            body,
        )))) = PgWireFrontendMessage::decode(&mut buf, &ctx)
        {
            let _ = sasl_initial_response(&body);
        }
        at += n;
    }
}

fuzz_target!(|data: &[u8]| {
    for version in [ProtocolVersion::PROTOCOL3_0, ProtocolVersion::PROTOCOL3_2] {
        walk(data, Phase::Startup, version);
        walk(data, Phase::Messages, version);
    }
});
