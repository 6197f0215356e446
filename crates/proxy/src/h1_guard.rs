//! Envoy's HTTP/1 request framing rules, enforced before the codec (hyper) sees a request.
//!
//! hyper is lenient where Envoy 1.40 is strict: it merges two identical `Content-Length`
//! headers, reads `Content-Length` + `Transfer-Encoding: chunked` as chunked, answers 400 to a
//! `Transfer-Encoding` other than `chunked` (Envoy: 501), takes any method token, request target
//! and `Host` value (Envoy: only http-parser's methods, origin, `http(s)` absolute, `OPTIONS *`
//! and CONNECT `host:port` targets, and authority characters in `Host`; 400 for others), drops
//! a target's fragment (Envoy: 400 `path_normalization_failed`), and answers its parse errors
//! with an empty 400.
//! [`RequestGuard`] wraps a downstream HTTP/1 connection: it holds every request
//! head back until it is complete, checks it with [`check_head`], and releases it to the codec
//! only when Envoy would accept it. In place of a refused head the codec reads a stand-in
//! request (method [`REFUSED_METHOD`]) naming the rejection, which the connection manager
//! answers with Envoy's reply (`400 Bad Request` / `501 Not Implemented`, `connection: close`)
//! in its turn, after the responses owed to earlier requests; nothing after it is read.
//!
//! To know where the next head starts, the guard follows each body's framing
//! (`Content-Length` or chunked). Anything it does not follow exactly (upgrades, CONNECT,
//! HTTP/1.0, a malformed chunk, a head larger than the codec accepts) switches it to pass-through
//! for the rest of the connection, leaving the codec to judge.
//!
//! Invariants: bytes reach the codec in the order they were received; only bytes of a refused
//! head (and everything after it) are withheld for good, and the stand-in is the last request
//! the codec reads.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::validate::Rejection;

/// Most headers a head may have for the guard to judge it (more: the codec judges).
const MAX_HEADERS: usize = 128;

/// Method of the stand-in request that replaces a refused head (a client head with this
/// method is itself refused).
pub const REFUSED_METHOD: &str = "LEGATE-REFUSED";

/// Header of a stand-in that carries the refused head's method and target (`GET /a#b`).
pub const REFUSED_REQUEST: &str = "legate-refused-request";

/// The rejections a stand-in request can name, by index (its path is `/<index>`).
const REJECTIONS: [Rejection; 5] = [
    Rejection::CODEC_ERROR,
    Rejection::LENGTH_AND_CHUNKED,
    Rejection::TRANSFER_ENCODING,
    Rejection::INVALID_AUTHORITY,
    Rejection::PATH_WITH_FRAGMENT,
];

/// The stand-in request for `rejection` of `head`. A codec error names the rejection only.
/// A rejection Envoy makes after its codec, with the request headers known, also carries the
/// refused head's method and target ([`REFUSED_REQUEST`]) and its headers, for the access log;
/// without the framing and connection headers, as the stand-in has no body and is the last
/// request of its connection.
fn stand_in(rejection: Rejection, head: &[u8]) -> Vec<u8> {
    let index = REJECTIONS.iter().position(|r| *r == rejection).unwrap_or(0);
    let mut out = format!("{REFUSED_METHOD} /{index} HTTP/1.1\r\n").into_bytes();
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = !rejection.is_codec_error() && req.parse(head).is_ok_and(|s| s.is_complete());
    match (parsed, req.method, req.path) {
        (true, Some(method), Some(target)) => {
            out.extend_from_slice(format!("{REFUSED_REQUEST}: {method} {target}\r\n").as_bytes());
            for h in req.headers.iter().filter(|h| !FRAMING_HEADERS.iter().any(|f| h.name.eq_ignore_ascii_case(f))) {
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(h.value);
                out.extend_from_slice(b"\r\n");
            }
        }
        _ => out.extend_from_slice(b"host: refused\r\n"),
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Headers a stand-in never copies from the head it replaces.
const FRAMING_HEADERS: [&str; 6] = ["content-length", "transfer-encoding", "expect", "upgrade", "connection", REFUSED_REQUEST];

/// The rejection a request stands in for, if it is the guard's stand-in.
pub fn refused<B>(req: &http::Request<B>) -> Option<Rejection> {
    if req.method().as_str() != REFUSED_METHOD {
        return None;
    }
    let index: usize = req.uri().path().trim_start_matches('/').parse().ok()?;
    REJECTIONS.get(index).copied()
}

/// The method and target of the head a stand-in replaces, when it carries them.
pub fn refused_request<B>(req: &http::Request<B>) -> Option<(http::Method, &str)> {
    if req.method().as_str() != REFUSED_METHOD {
        return None;
    }
    let (method, target) = req.headers().get(REFUSED_REQUEST)?.to_str().ok()?.split_once(' ')?;
    Some((http::Method::from_bytes(method.as_bytes()).ok()?, target))
}

/// How a request's body is framed, as far as the guard follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body: the next bytes are the next head.
    None,
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// The guard stops following the connection.
    PassThrough,
}

/// Where the scanner is in the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Collecting a request head.
    Head,
    /// Inside a `Content-Length` body: bytes left.
    Length(u64),
    /// Reading a chunk-size line: the size so far, and whether an extension started.
    ChunkSize { size: u64, digits: u32, extension: bool },
    /// Inside chunk data: bytes left.
    ChunkData(u64),
    /// Expecting the CRLF after chunk data: bytes of it seen.
    ChunkDataEnd(u8),
    /// In the trailer section: length of the current line so far (without CR).
    Trailers(usize),
    /// Not following anymore: everything goes to the codec.
    PassThrough,
    /// A head was refused: nothing more goes to the codec.
    Refused,
}

impl State {
    /// Where a head with this body framing leads.
    fn after_head(framing: Framing) -> Self {
        match framing {
            Framing::None | Framing::Length(0) => State::Head,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize { size: 0, digits: 0, extension: false },
            Framing::PassThrough => State::PassThrough,
        }
    }
}

/// Follows the request stream of one connection and decides what the codec may see.
#[derive(Debug)]
pub struct RequestScanner {
    state: State,
    /// The head being collected.
    head: Vec<u8>,
    /// Largest head the guard holds back; past it the codec judges (431).
    max_head: usize,
}

// === impl RequestScanner ===

impl RequestScanner {
    /// A scanner for a connection whose codec accepts heads up to `max_head` bytes.
    pub fn new(max_head: usize) -> Self {
        Self { state: State::Head, head: Vec::new(), max_head }
    }

    /// Follows the body bytes at the start of `data` (everything when passing through); returns
    /// how many bytes the codec may see as they are. Stops at the start of the next head.
    fn consume_body(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        while used < data.len() {
            let rest = &data[used..];
            match self.state {
                State::PassThrough => return data.len(),
                State::Head | State::Refused => break,
                State::Length(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    used += n;
                    self.state = if left == n as u64 { State::Head } else { State::Length(left - n as u64) };
                }
                State::ChunkData(left) => {
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    used += n;
                    self.state = if left == n as u64 { State::ChunkDataEnd(0) } else { State::ChunkData(left - n as u64) };
                }
                State::ChunkSize { .. } | State::ChunkDataEnd(_) | State::Trailers(_) => {
                    self.chunk_byte(rest[0]);
                    used += 1;
                }
            }
        }
        used
    }

    /// How many leading bytes of `data` the codec may read where they lie: body bytes and the
    /// whole heads accepted among them, up to a head that is partial or refused, which
    /// [`RequestScanner::feed`] collects and judges from there. A request that arrives whole in
    /// one read (as most do) is then never copied out of the codec's buffer and back.
    pub fn accept_in_place(&mut self, data: &[u8]) -> usize {
        let mut kept = 0;
        loop {
            kept += self.consume_body(&data[kept..]);
            let rest = &data[kept..];
            if rest.is_empty() || self.state != State::Head || !self.head.is_empty() || !ends_head(after_empty_lines(rest)) {
                return kept;
            }
            match check_head(rest) {
                Checked::Accepted(len, framing) => {
                    kept += len;
                    self.state = State::after_head(framing);
                }
                Checked::Partial | Checked::Refused(_) => return kept,
            }
        }
    }

    /// Feeds received bytes; what the codec may see now is appended to `out`. Returns the
    /// rejection of a refused head (after which nothing more is released).
    pub fn feed(&mut self, mut data: &[u8], out: &mut BytesMut) -> Option<Rejection> {
        while !data.is_empty() {
            // Body bytes and whole heads accepted where they lie go out as they are.
            let kept = self.accept_in_place(data);
            out.extend_from_slice(&data[..kept]);
            data = &data[kept..];
            match self.state {
                _ if data.is_empty() => {}
                State::Refused => return None,
                State::Head => {
                    let searched = self.head.len().saturating_sub(3);
                    self.head.extend_from_slice(data);
                    data = &[];
                    let from = searched.max(self.head.len() - after_empty_lines(&self.head).len());
                    if !ends_head(&self.head[from..]) {
                        if self.head.len() > self.max_head {
                            self.pass_through(out);
                        }
                        continue;
                    }
                    match check_head(&self.head) {
                        Checked::Partial if self.head.len() > self.max_head => self.pass_through(out),
                        Checked::Partial => {}
                        Checked::Refused(rejection) => {
                            // The head stays for `stand_in`; nothing is collected after it.
                            self.state = State::Refused;
                            return Some(rejection);
                        }
                        Checked::Accepted(len, framing) => {
                            out.extend_from_slice(&self.head[..len]);
                            let rest = self.head.split_off(len);
                            self.head.clear();
                            self.state = State::after_head(framing);
                            if let Some(rejection) = self.feed(&rest, out) {
                                return Some(rejection);
                            }
                        }
                    }
                }
                // accept_in_place stops only at a head it could not accept, or a refusal.
                _ => debug_assert!(false, "accept_in_place stopped in {:?}", self.state),
            }
        }
        None
    }

    /// Releases what is held and stops following the connection.
    fn pass_through(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(&self.head);
        self.head = Vec::new();
        self.state = State::PassThrough;
    }

    /// The request the codec reads in place of the head refused with `rejection` (what
    /// [`RequestScanner::feed`] returned).
    pub fn stand_in(&self, rejection: Rejection) -> Vec<u8> {
        debug_assert_eq!(self.state, State::Refused, "stand_in before a refusal");
        stand_in(rejection, &self.head)
    }

    /// The end of the stream: a partial head goes to the codec, which judges it.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.state == State::Head && !self.head.is_empty() {
            self.pass_through(out);
        }
    }

    /// Advances the chunked-framing state by one byte of a size line, data CRLF or trailer.
    fn chunk_byte(&mut self, b: u8) {
        self.state = match (self.state, b) {
            (State::ChunkSize { size, digits, extension: false }, b) if b.is_ascii_hexdigit() && digits < 16 => {
                let d = u64::from((b as char).to_digit(16).unwrap_or(0));
                State::ChunkSize { size: size * 16 + d, digits: digits + 1, extension: false }
            }
            (State::ChunkSize { size, digits, .. }, b';' | b' ' | b'\t') if digits > 0 => {
                State::ChunkSize { size, digits, extension: true }
            }
            (s @ State::ChunkSize { extension: true, .. }, b) if b != b'\n' && b != b'\r' => s,
            (s @ State::ChunkSize { digits, .. }, b'\r') if digits > 0 => s,
            (State::ChunkSize { size: 0, digits, .. }, b'\n') if digits > 0 => State::Trailers(0),
            (State::ChunkSize { size, digits, .. }, b'\n') if digits > 0 => State::ChunkData(size),
            (State::ChunkDataEnd(0), b'\r') => State::ChunkDataEnd(1),
            (State::ChunkDataEnd(_), b'\n') => State::ChunkSize { size: 0, digits: 0, extension: false },
            (State::Trailers(n), b'\r') => State::Trailers(n),
            (State::Trailers(0), b'\n') => State::Head,
            (State::Trailers(_), b'\n') => State::Trailers(0),
            (State::Trailers(n), _) => State::Trailers(n + 1),
            // Anything else is malformed: the codec reports it.
            _ => State::PassThrough,
        };
    }
}

/// `buf` from its first byte that is not CR or LF: the empty lines a client may send before a
/// request line (RFC 9112, 2.2) end no head. Looking for a head's end only after them keeps the
/// verdict on a head independent of how its bytes were split into reads.
fn after_empty_lines(buf: &[u8]) -> &[u8] {
    let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(buf.len());
    &buf[start..]
}

/// Whether `tail` (the end of a head buffer, past any leading empty lines) contains the blank
/// line that ends a head.
fn ends_head(tail: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', tail).any(|i| match &tail[i + 1..] {
        [b'\n', ..] | [b'\r', b'\n', ..] => true,
        _ => false,
    })
}

/// Whether Envoy's HTTP/1 codec (Balsa, without `allow_custom_methods`) accepts `method`:
/// http-parser's methods, exactly as written (`get`, `M-SEARCH` or `QUERY` are answered 400).
/// HTTP/2 takes any method.
fn known_method(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "CONNECT" | "OPTIONS" | "TRACE" | "PATCH" | "COPY" | "LOCK"
            | "MKCOL" | "MOVE" | "PROPFIND" | "PROPPATCH" | "SEARCH" | "UNLOCK" | "BIND" | "REBIND" | "UNBIND"
            | "ACL" | "REPORT" | "MKACTIVITY" | "CHECKOUT" | "MERGE" | "MSEARCH" | "NOTIFY" | "SUBSCRIBE"
            | "UNSUBSCRIBE" | "PURGE" | "MKCALENDAR" | "LINK" | "UNLINK" | "SOURCE"
    )
}

/// Whether Envoy's HTTP/1 codec takes `target` for `method`: an origin form (`/...`), an
/// absolute form with scheme `http` or `https` (any case), `*` for OPTIONS, and for CONNECT only
/// an authority form `host:port`.
fn valid_target(method: &str, target: &str) -> bool {
    if method == "CONNECT" {
        let Some((host, port)) = target.rsplit_once(':') else { return false };
        return !host.is_empty() && valid_authority(host.as_bytes()) && port.parse::<u16>().is_ok() && !port.starts_with('+');
    }
    if target == "*" {
        return method == "OPTIONS";
    }
    if target.starts_with('/') {
        return true;
    }
    target
        .split_once("://")
        .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"))
}

/// Whether Envoy takes `host` as a `Host` header: unreserved and sub-delimiter characters,
/// `:`, `@`, `[`, `]` and `%` only (no space, `"#/<>?\^`{|}`, control or non-ASCII byte).
fn valid_authority(host: &[u8]) -> bool {
    host.iter().all(|b| AUTHORITY_BYTES[usize::from(*b)])
}

/// [`valid_authority`]'s bytes, by value (one look-up per byte of every request's host).
const AUTHORITY_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=:@[]%";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

/// The verdict on a head.
enum Checked {
    /// Not complete yet.
    Partial,
    /// Complete, `len` bytes long, with this body framing.
    Accepted(usize, Framing),
    /// Refused, with Envoy's reply.
    Refused(Rejection),
}

/// Checks a request head with Envoy 1.40's codec rules.
fn check_head(head: &[u8]) -> Checked {
    // Left uninitialized: the parser writes the headers it finds (4 KiB not cleared per head).
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(head, &mut headers) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Checked::Partial,
        // Too many headers for the guard: the codec judges (and answers 431).
        Err(httparse::Error::TooManyHeaders) => return Checked::Accepted(head.len(), Framing::PassThrough),
        Err(_) => return Checked::Refused(Rejection::CODEC_ERROR),
    };
    // Envoy's HTTP/1 codec knows a fixed set of methods (the stand-in's is not one of them),
    // takes the request targets of `valid_target` and hosts of `valid_authority` only.
    let (Some(method), Some(target)) = (req.method, req.path) else { return Checked::Refused(Rejection::CODEC_ERROR) };
    if !known_method(method) || !valid_target(method, target) {
        return Checked::Refused(Rejection::CODEC_ERROR);
    }
    let mut upgrade = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("host") && !valid_authority(h.value) {
            return Checked::Refused(Rejection::INVALID_AUTHORITY);
        }
        upgrade |= h.name.eq_ignore_ascii_case("upgrade");
    }
    // HTTP/1.0 (426), CONNECT and upgrades leave HTTP/1 framing: the codec and the HCM judge.
    if req.version != Some(1) {
        return Checked::Accepted(len, Framing::PassThrough);
    }
    // Envoy's path normalization refuses a fragment (its codec keeps it in the path; hyper's
    // drops it).
    if method != "CONNECT" && memchr::memchr(b'#', target.as_bytes()).is_some() {
        return Checked::Refused(Rejection::PATH_WITH_FRAGMENT);
    }
    if method == "CONNECT" || upgrade {
        return Checked::Accepted(len, Framing::PassThrough);
    }
    match crate::validate::body_framing(req.headers.iter().map(|h| (h.name, h.value))) {
        Ok(None) => Checked::Accepted(len, Framing::None),
        Ok(Some(crate::validate::BodyFraming::Length(n))) => Checked::Accepted(len, Framing::Length(n)),
        Ok(Some(crate::validate::BodyFraming::Chunked)) => Checked::Accepted(len, Framing::Chunked),
        Err(rejection) => Checked::Refused(rejection),
    }
}

/// A downstream HTTP/1 connection whose request heads pass [`RequestScanner`] before the codec
/// reads them.
pub struct RequestGuard<I> {
    io: I,
    scanner: RequestScanner,
    /// Bytes the codec may read.
    ready: BytesMut,
    /// A head was refused: after the stand-in, the codec reads nothing more (it closes the
    /// connection once it has answered).
    refused: bool,
}

// === impl RequestGuard ===

impl<I> RequestGuard<I> {
    /// Guards `io`; `max_head` is the largest head the codec accepts.
    pub fn new(io: I, max_head: usize) -> Self {
        Self { io, scanner: RequestScanner::new(max_head), ready: BytesMut::new(), refused: false }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for RequestGuard<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.refused {
                // The codec answers the stand-in with `connection: close` and closes.
                return Poll::Pending;
            }
            // Read straight into the codec's buffer; body bytes stay there, head bytes are
            // taken back out until the head is complete and accepted.
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
            let received = buf.filled().len() - before;
            if received == 0 {
                this.scanner.finish(&mut this.ready);
                if this.ready.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let kept = this.scanner.accept_in_place(&buf.filled()[before..]);
            if kept < received {
                if let Some(rejection) = this.scanner.feed(&buf.filled()[before + kept..], &mut this.ready) {
                    this.ready.extend_from_slice(&this.scanner.stand_in(rejection));
                    this.refused = true;
                }
                buf.set_filled(before + kept);
            }
            if kept > 0 {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for RequestGuard<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
