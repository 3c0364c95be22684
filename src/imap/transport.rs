//! Framing: bytes <-> IMAP responses, with a timeout on every wait.
//!
//! Parsing is imap-proto's (the parser async-imap uses, reached through `async_imap::imap_proto`).
//! The transport never logs what it writes (LOGIN and AUTHENTICATE lines carry secrets); it logs
//! responses at `trace` only, without literal contents.

use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::ImapError;

/// Anything we can speak IMAP over: a TCP stream or a TLS stream over one.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// Responses borrow nothing: each is copied out of the read buffer once parsed.
pub type OwnedResponse = Response<'static>;

/// The largest single response accepted. imapsort never asks for more than headers, a
/// BODYSTRUCTURE and 256 KiB of a body per message, so anything near this is hostile or
/// broken (`{4294967295}`, a line that never ends) and would otherwise be buffered whole.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// Bytes in, parsed responses out.
pub struct Transport {
    /// The connection.
    stream: Box<dyn Io>,
    /// Bytes read but not parsed yet, from `start`.
    buf: Vec<u8>,
    /// Where unparsed data begins in `buf` (compacted lazily, so big FETCHes stay linear).
    start: usize,
    /// Don't re-parse until at least this many unparsed bytes are there (imap-proto told us).
    need: usize,
    /// Don't re-parse until a `\n` arrives at or after this offset of the unparsed data: a
    /// response always ends with CRLF, so without a new line end it cannot be complete (this
    /// keeps a long line from being re-parsed at every read, which is quadratic).
    newline_from: usize,
    /// Bytes of responses parsed so far (for per-command limits).
    consumed: u64,
    /// For tags `A1`, `A2`, ...
    next_tag: u32,
    /// The longest wait for the next response (and for a write to complete).
    pub timeout: Duration,
    /// The text of an untagged BYE, so a following EOF explains itself.
    pub bye: Option<String>,
}

impl Transport {
    pub fn new(stream: Box<dyn Io>, timeout: Duration) -> Transport {
        Transport {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
            need: 0,
            newline_from: 0,
            consumed: 0,
            next_tag: 0,
            timeout,
            bye: None,
        }
    }

    /// Give the stream back (for the TLS upgrade after STARTTLS). Errors if the server sent
    /// anything after the tagged OK: that is plaintext injection (CVE-2011-0411 style).
    pub fn into_stream(self) -> Result<Box<dyn Io>, ImapError> {
        if self.start < self.buf.len() {
            return Err(ImapError::Protocol(
                "data after the STARTTLS response (possible injection)".into(),
            ));
        }
        Ok(self.stream)
    }

    /// The next tag.
    pub fn tag(&mut self) -> String {
        self.next_tag += 1;
        format!("A{}", self.next_tag)
    }

    /// Write one line (CRLF appended) and flush, under the timeout.
    pub async fn write_line(&mut self, line: &[u8]) -> Result<(), ImapError> {
        if line.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ImapError::InvalidArgument("command"));
        }
        let fut = async {
            self.stream.write_all(line).await?;
            self.stream.write_all(b"\r\n").await?;
            self.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(e)),
            Err(_) => Err(ImapError::Timeout(self.timeout, "writing a command")),
        }
    }

    /// Write bytes as they are (a literal's contents), under the timeout.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), ImapError> {
        if bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(ImapError::InvalidArgument("literal"));
        }
        let fut = self.stream.write_all(bytes);
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.io_error(e)),
            Err(_) => Err(ImapError::Timeout(self.timeout, "writing a literal")),
        }
    }

    /// Send `TAG command`; returns the tag. Never logs the command (it may hold a secret).
    pub async fn send(&mut self, command: &str) -> Result<String, ImapError> {
        let tag = self.tag();
        let line = format!("{tag} {command}");
        self.write_line(line.as_bytes()).await?;
        Ok(tag)
    }

    /// The next response, waiting at most `timeout`.
    pub async fn read(&mut self) -> Result<OwnedResponse, ImapError> {
        let limit = self.timeout;
        match tokio::time::timeout(limit, self.read_untimed()).await {
            Ok(r) => r,
            Err(_) => Err(ImapError::Timeout(limit, "a server response")),
        }
    }

    /// The next response, however long it takes. Cancel-safe: dropping the future loses nothing
    /// (bytes read stay in the buffer), so it can sit in a `select!` (IDLE).
    pub async fn read_untimed(&mut self) -> Result<OwnedResponse, ImapError> {
        loop {
            if let Some(resp) = self.parse_buffered()? {
                if let Response::Data {
                    status: Status::Bye,
                    outcome,
                } = &resp
                {
                    self.bye = Some(outcome.information.as_deref().unwrap_or("").to_string());
                }
                tracing::trace!(response = %summarize(&resp), "imap <");
                return Ok(resp);
            }
            if self.start > 0 && self.start * 2 >= self.buf.len() {
                self.buf.drain(..self.start);
                self.start = 0;
            }
            self.buf.reserve(16 * 1024);
            let n = match self.stream.read_buf(&mut self.buf).await {
                Ok(n) => n,
                Err(e) => return Err(self.io_error(e)),
            };
            if n == 0 {
                return Err(ImapError::ConnectionLost(self.bye.clone()));
            }
        }
    }

    /// Bytes of responses parsed since the connection opened.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    fn parse_buffered(&mut self) -> Result<Option<OwnedResponse>, ImapError> {
        loop {
            let data = &self.buf[self.start..];
            if data.len() > MAX_RESPONSE_BYTES {
                return Err(too_large());
            }
            if data.is_empty() || data.len() < self.need {
                return Ok(None);
            }
            if self.newline_from > 0
                && memchr::memchr(b'\n', &data[self.newline_from.min(data.len())..]).is_none()
            {
                self.newline_from = data.len();
                return Ok(None);
            }
            match Response::parse(data) {
                Ok((rest, resp)) => {
                    let consumed = data.len() - rest.len();
                    let owned = resp.into_owned();
                    self.start += consumed;
                    self.consumed += consumed as u64;
                    self.need = 0;
                    self.newline_from = 0;
                    return Ok(Some(owned));
                }
                Err(nom::Err::Incomplete(needed)) => {
                    self.need = match needed {
                        nom::Needed::Size(n) => data.len().saturating_add(n.get()),
                        nom::Needed::Unknown => 0,
                    };
                    if self.need > MAX_RESPONSE_BYTES {
                        // An announced literal beyond the limit: refuse before reading it.
                        return Err(too_large());
                    }
                    self.newline_from = data.len();
                    return Ok(None);
                }
                Err(_) => {
                    let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                        // Wait for the whole line before judging it.
                        self.newline_from = data.len();
                        return Ok(None);
                    };
                    let line = &data[..nl];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    let shown = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
                    // An untagged line we cannot parse (an extension's data) without a literal
                    // is skipped; anything else leaves the stream in an unknown state.
                    if line.starts_with(b"* ") && !line.ends_with(b"}") {
                        tracing::debug!(line = %shown, "skipping an unparsable untagged response");
                        self.start += nl + 1;
                        self.consumed += nl as u64 + 1;
                        self.need = 0;
                        self.newline_from = 0;
                        continue;
                    }
                    return Err(ImapError::Protocol(shown));
                }
            }
        }
    }

    fn io_error(&self, e: std::io::Error) -> ImapError {
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::ConnectionAborted => ImapError::ConnectionLost(self.bye.clone()),
            _ => ImapError::Io(e),
        }
    }
}

fn too_large() -> ImapError {
    ImapError::Protocol(format!(
        "a server response larger than {} MiB (refused unread)",
        MAX_RESPONSE_BYTES >> 20
    ))
}

/// A short description of a response for trace logs: never literal contents.
fn summarize(resp: &OwnedResponse) -> String {
    match resp {
        Response::Done { tag, status, .. } => format!("{} {:?}", tag.0, status),
        Response::Data { status, .. } => format!("* {status:?}"),
        Response::Fetch(seq, attrs) => format!("* {seq} FETCH ({} items)", attrs.len()),
        Response::Continue(_) => "+".to_string(),
        Response::Capabilities(c) => format!("* CAPABILITY ({} items)", c.len()),
        Response::MailboxData(d) => format!("* {}", mailbox_datum_name(d)),
        Response::Expunge(n) => format!("* {n} EXPUNGE"),
        _ => "* (other)".to_string(),
    }
}

fn mailbox_datum_name(d: &async_imap::imap_proto::MailboxDatum<'_>) -> &'static str {
    use async_imap::imap_proto::MailboxDatum as M;
    match d {
        M::Exists(_) => "EXISTS",
        M::Recent(_) => "RECENT",
        M::Flags(_) => "FLAGS",
        M::List { .. } => "LIST",
        M::Search(_) => "SEARCH",
        M::Status { .. } => "STATUS",
        _ => "mailbox data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_split_literals_and_eof() {
        let (client, mut server) = tokio::io::duplex(64);
        let mut t = Transport::new(Box::new(client), Duration::from_secs(5));
        let writer = tokio::spawn(async move {
            let msg = b"* 1 FETCH (UID 7 BODY[] {11}\r\nhello world)\r\nA1 OK done\r\n";
            for chunk in msg.chunks(5) {
                server.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
        });
        let first = t.read().await.unwrap();
        assert!(matches!(first, Response::Fetch(1, _)), "{first:?}");
        let done = t.read().await.unwrap();
        assert!(matches!(done, Response::Done { .. }), "{done:?}");
        writer.await.unwrap();
        let eof = t.read().await.unwrap_err();
        assert!(matches!(eof, ImapError::ConnectionLost(None)), "{eof:?}");
    }
}
