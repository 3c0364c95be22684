//! A minimal blocking IMAP client on raw TCP: enough to log in, send commands, read responses
//! (literals included) and APPEND. The server-floor client, the push-latency probes and the
//! checks of what a run left behind are built on it, so they cost the server what a lean client
//! costs and nothing more.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Raw {
    /// Buffered reading side.
    reader: BufReader<TcpStream>,
    /// Writing side (a clone of the same socket).
    writer: TcpStream,
    /// The next tag number.
    tag: u32,
}

/// Reads one logical response line: the line plus any literals it announces (`{n}`), joined.
pub fn read_logical(reader: &mut impl BufRead, out: &mut Vec<u8>) -> io::Result<usize> {
    out.clear();
    loop {
        let start = out.len();
        let n = reader.read_until(b'\n', out)?;
        if n == 0 {
            return Ok(out.len());
        }
        let line = &out[start..];
        let trimmed = line.strip_suffix(b"\r\n").unwrap_or(line);
        let Some(lit) = literal_len(trimmed) else {
            return Ok(out.len());
        };
        let at = out.len();
        out.resize(at + lit, 0);
        reader.read_exact(&mut out[at..])?;
    }
}

/// The length of a literal announced at the end of a line (`{123}` or `{123+}`).
fn literal_len(line: &[u8]) -> Option<usize> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    std::str::from_utf8(digits).ok()?.parse().ok()
}

impl Raw {
    pub fn connect(port: u16) -> io::Result<Raw> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(600)))?;
        let writer = stream.try_clone()?;
        let mut raw = Raw {
            reader: BufReader::with_capacity(1 << 16, stream),
            writer,
            tag: 0,
        };
        let mut greeting = Vec::new();
        read_logical(&mut raw.reader, &mut greeting)?;
        Ok(raw)
    }

    pub fn login(port: u16, user: &str) -> io::Result<Raw> {
        let mut raw = Raw::connect(port)?;
        raw.cmd(&format!("LOGIN {user} pass"))?;
        Ok(raw)
    }

    /// Sends a command and returns its untagged responses; an error unless it ends in OK.
    pub fn cmd(&mut self, command: &str) -> io::Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("r{}", self.tag);
        self.writer
            .write_all(format!("{tag} {command}\r\n").as_bytes())?;
        self.finish(&tag)
    }

    /// Reads until the tagged response of `tag`.
    fn finish(&mut self, tag: &str) -> io::Result<Vec<String>> {
        let mut untagged = Vec::new();
        let mut line = Vec::new();
        loop {
            if read_logical(&mut self.reader, &mut line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed",
                ));
            }
            let text = String::from_utf8_lossy(&line).into_owned();
            if let Some(rest) = text.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                if rest.starts_with("OK") {
                    return Ok(untagged);
                }
                return Err(io::Error::other(format!("{tag}: {}", rest.trim_end())));
            }
            untagged.push(text);
        }
    }

    /// APPEND with a non-synchronising literal (LITERAL+).
    pub fn append(&mut self, mailbox: &str, message: &[u8]) -> io::Result<()> {
        self.tag += 1;
        let tag = format!("r{}", self.tag);
        let mut buf = format!("{tag} APPEND {mailbox} {{{}+}}\r\n", message.len()).into_bytes();
        buf.extend_from_slice(message);
        buf.extend_from_slice(b"\r\n");
        self.writer.write_all(&buf)?;
        self.finish(&tag).map(drop)
    }

    /// `UID SEARCH` results.
    pub fn search(&mut self, criteria: &str) -> io::Result<Vec<u32>> {
        let lines = self.cmd(&format!("UID SEARCH {criteria}"))?;
        Ok(lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().filter_map(|w| w.parse().ok()))
            .collect())
    }

    /// Enters IDLE: after this, [`Raw::read_line`] yields the untagged notifications.
    pub fn start_idle(&mut self) -> io::Result<()> {
        self.tag += 1;
        self.writer
            .write_all(format!("r{} IDLE\r\n", self.tag).as_bytes())?;
        let mut line = Vec::new();
        read_logical(&mut self.reader, &mut line)?;
        if !line.starts_with(b"+") {
            return Err(io::Error::other("IDLE refused"));
        }
        Ok(())
    }

    /// One logical line (blocking).
    pub fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        if read_logical(&mut self.reader, &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        Ok(String::from_utf8_lossy(&line).into_owned())
    }
}
