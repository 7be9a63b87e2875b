//! The layout of every message a client sends, checked before pgwire decodes it.
//!
//! pgwire 0.41's decoders trust the counts and lengths inside a message: a Bind whose
//! parameter claims more bytes than the message holds, a Parse cut short, a length
//! below 4, and eight more shapes found by fuzzing (`fuzz/README.md`) panic while
//! decoding. [`Checked`] sits between the socket (after TLS) and pgwire's codec and
//! lets a message through only once its layout is known to be whole, as the
//! PostgreSQL protocol defines it; anything else ends the connection with FATAL 08P01
//! ("invalid message format"), as PostgreSQL answers it, instead of a panic.
//!
//! Only the layout is checked here, never the meaning: a Bind with the wrong number of
//! parameters for its statement is well formed and gets its error from the handler.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::io::poll_read_buf;

/// The largest startup packet, as PostgreSQL's `MAX_STARTUP_PACKET_LENGTH`.
pub const MAX_STARTUP: usize = 10_000;
/// The largest message of the kinds that carry SQL or data (PostgreSQL's
/// `PQ_LARGE_MESSAGE_LIMIT`).
pub const MAX_LARGE: usize = 0x3fff_ffff - 1;
/// The largest message of every other kind (PostgreSQL's `PQ_SMALL_MESSAGE_LIMIT`).
pub const MAX_SMALL: usize = 10_000;
/// The largest authentication message (PostgreSQL's `PG_MAX_AUTH_TOKEN_LENGTH`).
pub const MAX_AUTH: usize = 65_535;

const SSL_REQUEST: i32 = 80_877_103;
const GSS_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;

/// Why a message was refused; becomes the FATAL error's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Malformed {}

fn malformed<T>(why: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(why.into()))
}

/// Where in the conversation the next bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Untyped packets: SSLRequest, GSSENCRequest, CancelRequest, StartupMessage.
    Startup,
    /// Typed messages: a type byte, a length, a body.
    Messages,
}

/// What is known of the message at the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough bytes to tell yet.
    Incomplete,
    /// A whole, well-formed message of this many bytes; the phase after it.
    Whole(usize, Phase),
    /// A message of this many bytes whose body needs no check (COPY data, SASL
    /// responses): its header is fine and its bytes may pass as they arrive.
    Stream(usize),
    /// Not a message the protocol allows.
    Bad(Malformed),
}

/// Checks the message at the front of `buf`.
pub fn check(buf: &[u8], phase: Phase) -> Verdict {
    match phase {
        Phase::Startup => check_startup(buf),
        Phase::Messages => check_message(buf),
    }
}

fn check_startup(buf: &[u8]) -> Verdict {
    if buf.len() < 8 {
        return Verdict::Incomplete;
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let code = i32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if !(8..=MAX_STARTUP as i32).contains(&len) {
        return Verdict::Bad(Malformed("invalid length of startup packet".into()));
    }
    let len = len as usize;
    if buf.len() < len {
        return Verdict::Incomplete;
    }
    let body = &buf[8..len];
    let checked = match code {
        SSL_REQUEST | GSS_REQUEST => {
            return if body.is_empty() {
                Verdict::Whole(len, Phase::Startup)
            } else {
                Verdict::Bad(Malformed("invalid length of encryption request".into()))
            };
        }
        // A process id and a secret key of 4 (protocol 3.0) to 256 bytes (3.2).
        CANCEL_REQUEST if (8..=4 + 256).contains(&body.len()) => Ok(()),
        CANCEL_REQUEST => malformed("invalid length of cancel request"),
        // Protocol 3.x: name/value strings, then one more terminator.
        code if code >> 16 == 3 => startup_parameters(body),
        // Other versions are pgwire's to refuse.
        _ => Ok(()),
    };
    match checked {
        Ok(()) => Verdict::Whole(len, Phase::Messages),
        Err(e) => Verdict::Bad(e),
    }
}

fn startup_parameters(body: &[u8]) -> Result<(), Malformed> {
    let mut r = Reader(body);
    loop {
        if r.0 == [0] {
            return Ok(());
        }
        if r.0.is_empty() {
            return malformed("invalid startup packet layout: expected terminator as last byte");
        }
        r.cstring()?;
        r.cstring()?;
    }
}

fn check_message(buf: &[u8]) -> Verdict {
    if buf.len() < 5 {
        return Verdict::Incomplete;
    }
    let kind = buf[0];
    let len = i32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    let limit = match kind {
        b'Q' | b'P' | b'B' | b'd' => MAX_LARGE,
        b'p' => MAX_AUTH,
        b'E' | b'D' | b'C' | b'H' | b'S' | b'X' | b'c' | b'f' => MAX_SMALL,
        other => {
            return Verdict::Bad(Malformed(format!("invalid frontend message type {other}")));
        }
    };
    if len < 4 {
        return Verdict::Bad(Malformed(format!("invalid message length {len}")));
    }
    let total = 1 + len as usize;
    if len as usize > limit {
        return Verdict::Bad(Malformed(format!(
            "message of type {} too large: {len} bytes, at most {limit}",
            kind as char
        )));
    }
    if matches!(kind, b'd' | b'p') {
        return Verdict::Stream(total);
    }
    if buf.len() < total {
        return Verdict::Incomplete;
    }
    let mut r = Reader(&buf[5..total]);
    let checked = match kind {
        b'Q' | b'f' => r.cstring().map(drop),
        b'P' => parse(&mut r),
        b'B' => bind(&mut r),
        b'E' => r.cstring().and_then(|_| r.take(4)).map(drop),
        b'D' | b'C' => describe_or_close(&mut r),
        // Flush, Sync, Terminate, CopyDone: nothing after the length.
        _ => Ok(()),
    }
    .and_then(|()| r.end());
    match checked {
        Ok(()) => Verdict::Whole(total, Phase::Messages),
        Err(Malformed(why)) => Verdict::Bad(Malformed(format!(
            "invalid message format ({} message: {why})",
            name(kind)
        ))),
    }
}

fn name(kind: u8) -> &'static str {
    match kind {
        b'Q' => "Query",
        b'P' => "Parse",
        b'B' => "Bind",
        b'E' => "Execute",
        b'D' => "Describe",
        b'C' => "Close",
        b'H' => "Flush",
        b'S' => "Sync",
        b'X' => "Terminate",
        b'c' => "CopyDone",
        b'f' => "CopyFail",
        b'd' => "CopyData",
        _ => "password",
    }
}

/// Parse: statement name, query, a count of parameter types and that many oids.
fn parse(r: &mut Reader) -> Result<(), Malformed> {
    r.cstring()?;
    r.cstring()?;
    let types = r.count()?;
    r.take(types * 4).map(drop)
}

/// Bind: portal, statement, parameter formats, parameters (each a length, -1 for
/// NULL, and that many bytes), result formats.
fn bind(r: &mut Reader) -> Result<(), Malformed> {
    r.cstring()?;
    r.cstring()?;
    let formats = r.count()?;
    r.take(formats * 2)?;
    let params = r.count()?;
    for _ in 0..params {
        let len = r.i32()?;
        if len < -1 {
            return malformed(format!("invalid parameter length {len}"));
        }
        if len > 0 {
            r.take(len as usize)?;
        }
    }
    let results = r.count()?;
    r.take(results * 2).map(drop)
}

/// Describe and Close: 'S' (statement) or 'P' (portal), then a name.
fn describe_or_close(r: &mut Reader) -> Result<(), Malformed> {
    match r.take(1)?.first() {
        Some(b'S' | b'P') => r.cstring().map(drop),
        other => malformed(format!(
            "invalid target type {}",
            other.copied().unwrap_or(0)
        )),
    }
}

/// Reads a message body front to back; every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return malformed(format!(
                "{n} bytes needed, {} left in the message",
                self.0.len()
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn cstring(&mut self) -> Result<&'a [u8], Malformed> {
        let Some(nul) = self.0.iter().position(|&b| b == 0) else {
            return malformed("a string runs past the end of the message");
        };
        let s = &self.0[..nul];
        self.0 = &self.0[nul + 1..];
        Ok(s)
    }

    fn i32(&mut self) -> Result<i32, Malformed> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An Int16 count, which the protocol makes unsigned in practice.
    fn count(&mut self) -> Result<usize, Malformed> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]) as usize)
    }

    fn end(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            malformed(format!("{} bytes left over", self.0.len()))
        }
    }
}

/// SASLInitialResponse (the first password message of a SCRAM login): the mechanism,
/// then the client's first message, its length first (-1 for none). pgwire's own
/// decoder reads past the end of a short one.
pub fn sasl_initial_response(body: &[u8]) -> Result<(String, Option<Vec<u8>>), Malformed> {
    let mut r = Reader(body);
    let mechanism = String::from_utf8_lossy(r.cstring()?).into_owned();
    let len = r.i32()?;
    let data = match len {
        -1 => None,
        n if n >= 0 => Some(r.take(n as usize)?.to_vec()),
        n => return malformed(format!("invalid SASL response length {n}")),
    };
    r.end()?;
    Ok((mechanism, data))
}

/// A client's byte stream that yields only whole, well-formed messages (see the
/// module's documentation); the rest of the stream after a malformed one is an
/// [`io::ErrorKind::InvalidData`] error carrying the [`Malformed`] reason.
pub struct Checked<S> {
    inner: S,
    /// Read from `inner`, not handed on yet.
    buf: BytesMut,
    /// Bytes at the front of `buf` that are checked and may be handed on.
    ready: usize,
    /// Bytes still to come of a message whose body passes unchecked.
    streaming: usize,
    phase: Phase,
    refused: Option<Malformed>,
    eof: bool,
}

impl<S> Checked<S> {
    /// `already` holds bytes read from `inner` before (pgwire's TLS negotiation
    /// reads ahead); they are checked like the rest.
    pub fn new(inner: S, already: BytesMut, phase: Phase) -> Self {
        Self {
            inner,
            buf: already,
            ready: 0,
            streaming: 0,
            phase,
            refused: None,
            eof: false,
        }
    }

    /// Checks what is buffered; true when bytes became ready to hand on.
    fn advance(&mut self) -> bool {
        if self.ready > 0 {
            return true;
        }
        if self.streaming > 0 {
            let n = self.streaming.min(self.buf.len());
            self.ready = n;
            self.streaming -= n;
            return n > 0;
        }
        if self.refused.is_some() {
            return false;
        }
        match check(&self.buf, self.phase) {
            Verdict::Incomplete => false,
            Verdict::Whole(n, phase) => {
                self.ready = n;
                self.phase = phase;
                true
            }
            Verdict::Stream(n) => {
                self.streaming = n;
                self.advance()
            }
            Verdict::Bad(why) => {
                self.refused = Some(why);
                false
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Checked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.advance() {
                let n = this.ready.min(out.remaining());
                out.put_slice(&this.buf[..n]);
                this.buf.advance(n);
                this.ready -= n;
                return Poll::Ready(Ok(()));
            }
            if let Some(why) = &this.refused {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, why.clone())));
            }
            if this.eof {
                // A message cut short by the end of the stream is dropped.
                return Poll::Ready(Ok(()));
            }
            this.buf.reserve(8192);
            if ready!(poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.buf))? == 0 {
                this.eof = true;
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Checked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pgwire::messages::startup::PasswordMessageFamily;
    use pgwire::messages::{DecodeContext, PgWireFrontendMessage, ProtocolVersion};

    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn startup_packet() -> Vec<u8> {
        let body = b"user\0stats\0database\0amar\0\0";
        let mut m = (body.len() as i32 + 8).to_be_bytes().to_vec();
        m.extend_from_slice(&196_608i32.to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    /// Every message a driver sends in a session, one after another.
    fn session() -> Vec<u8> {
        let mut bind = b"p1\0s1\0".to_vec();
        bind.extend_from_slice(&[0, 1, 0, 1]); // one format: binary
        bind.extend_from_slice(&[0, 2]); // two parameters
        bind.extend_from_slice(&8i32.to_be_bytes());
        bind.extend_from_slice(&42i64.to_be_bytes());
        bind.extend_from_slice(&(-1i32).to_be_bytes()); // NULL
        bind.extend_from_slice(&[0, 0]); // no result formats
        let mut parse = b"s1\0SELECT $1::int8, $2::text\0".to_vec();
        parse.extend_from_slice(&[0, 1, 0, 0, 0, 20]);
        let mut execute = b"p1\0".to_vec();
        execute.extend_from_slice(&0i32.to_be_bytes());
        [
            startup_packet(),
            message(b'p', b"SCRAM-SHA-256\0\0\0\0\x03n,,"),
            message(b'Q', b"SELECT 1\0"),
            message(b'P', &parse),
            message(b'B', &bind),
            message(b'D', b"Pp1\0"),
            message(b'E', &execute),
            message(b'C', b"Ss1\0"),
            message(b'H', b""),
            message(b'S', b""),
            message(b'd', b"1\t2\n"),
            message(b'c', b""),
            message(b'f', b"stopped\0"),
            message(b'X', b""),
        ]
        .concat()
    }

    /// The messages `check` finds at the front of `bytes`, until it needs more or refuses.
    fn verdicts(bytes: &[u8]) -> Vec<Verdict> {
        let mut phase = Phase::Startup;
        let mut at = 0;
        let mut out = vec![];
        loop {
            let verdict = check(&bytes[at..], phase);
            let step = match &verdict {
                Verdict::Whole(n, next) => {
                    phase = *next;
                    *n
                }
                Verdict::Stream(n) => *n,
                _ => 0,
            };
            out.push(verdict);
            if step == 0 || at + step > bytes.len() {
                return out;
            }
            at += step;
        }
    }

    #[test]
    fn a_whole_session_of_well_formed_messages_passes() {
        let verdicts = verdicts(&session());
        assert_eq!(verdicts.len(), 15, "{verdicts:?}");
        assert_eq!(verdicts.last(), Some(&Verdict::Incomplete));
        assert!(
            verdicts[..14]
                .iter()
                .all(|v| matches!(v, Verdict::Whole(..) | Verdict::Stream(_))),
            "{verdicts:?}"
        );
    }

    #[test]
    fn every_prefix_of_a_session_waits_for_more_instead_of_refusing() {
        let bytes = session();
        for cut in 0..bytes.len() {
            let v = verdicts(&bytes[..cut]);
            assert!(
                !v.iter().any(|v| matches!(v, Verdict::Bad(_))),
                "cut at {cut}: {v:?}"
            );
        }
    }

    /// The eleven inputs on which the fuzzer found pgwire 0.41.1's decoders panic
    /// (fuzz/artifacts/pgwire_messages/), each refused here.
    #[test]
    fn every_input_that_panicked_pgwire_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/artifacts/pgwire_messages");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            // Those that start with a startup packet are read from there; the others
            // are what a client sends after it.
            let bytes = if bytes[0] == 0 {
                bytes
            } else {
                [startup_packet(), bytes].concat()
            };
            let v = verdicts(&bytes);
            assert!(
                matches!(v.last(), Some(Verdict::Bad(_))),
                "{}: {v:?}",
                path.display()
            );
            seen += 1;
        }
        assert_eq!(seen, 11);
    }

    #[test]
    fn lengths_counts_and_strings_past_the_end_are_refused_with_the_reason() {
        let bad = |kind, body: &[u8]| match check(&message(kind, body), Phase::Messages) {
            Verdict::Bad(Malformed(why)) => why,
            other => panic!("{} {body:?}: {other:?}", kind as char),
        };
        assert!(bad(b'B', b"\0\0\0\0\0\x01\0\x4c\x4b\x40\0\0").contains("5000000 bytes needed"));
        assert!(bad(b'P', b"s\0SELECT 1\0\0\x05").contains("Parse"));
        assert!(bad(b'E', b"p\0").contains("Execute"));
        assert!(bad(b'D', b"").contains("Describe"));
        assert!(bad(b'D', b"Xname\0").contains("invalid target type"));
        assert!(bad(b'Q', b"SELECT 1").contains("string runs past the end"));
        assert!(bad(b'S', b"x").contains("1 bytes left over"));
        assert!(bad(b'!', b"").contains("invalid frontend message type 33"));
        let short = [b'Q', 0, 0, 0, 3];
        assert!(matches!(check(&short, Phase::Messages), Verdict::Bad(_)));
        let huge = [b'E', 0, 1, 0, 0];
        assert!(matches!(check(&huge, Phase::Messages), Verdict::Bad(_)));
        let huge_startup = [0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0];
        assert!(matches!(
            check(&huge_startup, Phase::Startup),
            Verdict::Bad(_)
        ));
        let mut unterminated = startup_packet();
        let last = unterminated.len() - 1;
        unterminated[last] = b'x';
        assert!(matches!(
            check(&unterminated, Phase::Startup),
            Verdict::Bad(_)
        ));
    }

    #[test]
    fn sasl_initial_responses_are_read_with_every_length_checked() {
        assert_eq!(
            sasl_initial_response(b"SCRAM-SHA-256\0\0\0\0\x03n,,"),
            Ok(("SCRAM-SHA-256".to_string(), Some(b"n,,".to_vec())))
        );
        assert_eq!(
            sasl_initial_response(b"SCRAM-SHA-256\0\xff\xff\xff\xff"),
            Ok(("SCRAM-SHA-256".to_string(), None))
        );
        for bad in [
            &b""[..],
            b"SCRAM-SHA-256",
            b"SCRAM-SHA-256\0",
            b"SCRAM-SHA-256\0\0\0\0\x09n,,",
            b"SCRAM-SHA-256\0\x80\0\0\0",
            b"SCRAM-SHA-256\0\0\0\0\x01nn",
        ] {
            assert!(sasl_initial_response(bad).is_err(), "{bad:?}");
        }
    }

    /// A deterministic fuzz run in the ordinary test suite: the corpus and a session,
    /// mutated many times; whatever `check` lets through, pgwire decodes without
    /// panicking (a panic fails this test).
    #[test]
    fn whatever_passes_the_check_pgwire_decodes_without_panicking() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/pgwire_messages");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        seeds.push(session());
        assert!(seeds.len() > 100, "the corpus is there");
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut decoded = 0;
        for round in 0..60_000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            for _ in 0..1 + random() % 2 {
                let at = (random() as usize) % bytes.len().max(1);
                match random() % 4 {
                    0 if !bytes.is_empty() => bytes[at] = random() as u8,
                    1 => bytes.insert(at.min(bytes.len()), random() as u8),
                    2 if !bytes.is_empty() => bytes.truncate(at),
                    _ if at + 4 <= bytes.len() => {
                        bytes[at..at + 4].copy_from_slice(&(random() as i32 % 64).to_be_bytes())
                    }
                    _ => {}
                }
            }
            // Typed messages are what follows a startup packet.
            if bytes.first().is_some_and(|&b| b != 0) {
                bytes = [startup_packet(), bytes].concat();
            }
            for version in [ProtocolVersion::PROTOCOL3_0, ProtocolVersion::PROTOCOL3_2] {
                decoded += decode_what_passes(&bytes, version);
            }
        }
        // The mutations leave most messages whole: the decoders were really exercised.
        assert!(decoded > 50_000, "{decoded} messages decoded");
    }

    /// Decodes every message `check` accepts, with pgwire in the state the
    /// connection would be in.
    fn decode_what_passes(bytes: &[u8], version: ProtocolVersion) -> usize {
        let mut phase = Phase::Startup;
        let mut at = 0;
        let mut decoded = 0;
        while at < bytes.len() {
            let n = match check(&bytes[at..], phase) {
                Verdict::Whole(n, next) => {
                    let mut ctx = DecodeContext::new(version);
                    ctx.awaiting_frontend_ssl = false;
                    ctx.awaiting_frontend_startup = phase == Phase::Startup;
                    phase = next;
                    let mut buf = BytesMut::from(&bytes[at..at + n]);
                    let _ = PgWireFrontendMessage::decode(&mut buf, &ctx);
                    n
                }
                Verdict::Stream(n) if at + n <= bytes.len() => {
                    let mut ctx = DecodeContext::new(version);
                    ctx.awaiting_frontend_ssl = false;
                    ctx.awaiting_frontend_startup = false;
                    let mut buf = BytesMut::from(&bytes[at..at + n]);
                    if let Ok(Some(PgWireFrontendMessage::PasswordMessageFamily(m))) =
                        PgWireFrontendMessage::decode(&mut buf, &ctx)
                        && let PasswordMessageFamily::Raw(body) = m
                    {
                        let _ = sasl_initial_response(&body);
                    }
                    n
                }
                _ => return decoded,
            };
            decoded += 1;
            at += n;
        }
        decoded
    }
}
