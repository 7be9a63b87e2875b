//! Arbitrary bytes as a client's stream, decoded the way the server decodes them: at
//! connection start (SSL request, startup or cancel), and after startup (any message).
//! Decoding must never panic, and must either consume bytes, wait for more, or fail.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    for (ssl, startup) in [(true, true), (false, true), (false, false)] {
        let mut ctx = DecodeContext::new(ProtocolVersion::default());
        ctx.awaiting_frontend_ssl = ssl;
        ctx.awaiting_frontend_startup = startup;
        let mut buf = BytesMut::from(data);
        for _ in 0..256 {
            let before = buf.len();
            match PgWireFrontendMessage::decode(&mut buf, &ctx) {
                Ok(Some(message)) => {
                    // What decodes must encode again.
                    let mut again = BytesMut::new();
                    let _ = message.encode(&mut again);
                    if buf.len() == before {
                        break;
                    }
                    if matches!(message, PgWireFrontendMessage::Startup(_)) {
                        ctx.awaiting_frontend_ssl = false;
                        ctx.awaiting_frontend_startup = false;
                    }
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
});
