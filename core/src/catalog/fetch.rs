//! HTTP for the catalogue and the voices' files: `ureq` over rustls (no OpenSSL), a proxy from `HTTPS_PROXY` /
//! `HTTP_PROXY` / `ALL_PROXY` with `NO_PROXY` (ureq reads them), timeouts on connecting and on every read, and
//! retries with doubling back-off for what may pass (timeouts, broken connections, 5xx, 429). A download resumes
//! where it broke off with an HTTP range request.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::Duration;

use crate::error::{Error, Result};

/// Timeouts and retries.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Longest wait for a connection, for the answer, and between two reads of the body.
    pub timeout: Duration,
    /// Tries after the first one for what may pass.
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions { timeout: Duration::from_secs(30), retries: 3, backoff: Duration::from_secs(1) }
    }
}

/// A failed try: worth another or not.
enum Failure {
    Transient(String),
    Permanent(String),
}

/// An HTTP client with this program's timeouts and retries.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
    options: HttpOptions,
}

impl Http {
    /// A client with `options`.
    pub fn new(options: HttpOptions) -> Http {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(options.timeout))
            .timeout_recv_response(Some(options.timeout))
            .timeout_per_read(Some(options.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("demod-voice/", env!("CARGO_PKG_VERSION")))
            .build();
        Http { agent: config.into(), options }
    }

    fn describe(&self, error: &ureq::Error) -> Failure {
        let secs = self.options.timeout.as_secs_f32();
        match error {
            ureq::Error::Timeout(_) => Failure::Transient(format!(
                "no answer within {secs:.0} s; check the network or proxy, or raise voices.timeout_s"
            )),
            ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Failure::Transient(format!(
                "no answer within {secs:.0} s; check the network or proxy, or raise voices.timeout_s"
            )),
            // Not retried: a name that does not resolve rarely starts to within seconds, and waiting would only
            // delay the message (offline machines, typos in the URL).
            ureq::Error::HostNotFound => {
                Failure::Permanent("the host name does not resolve; check the network or the URL".into())
            }
            ureq::Error::Io(e)
                if e.to_string().contains("lookup address") || e.to_string().contains("Name or service") =>
            {
                Failure::Permanent("the host name does not resolve; check the network or the URL".into())
            }
            ureq::Error::ConnectionFailed | ureq::Error::Io(_) => {
                Failure::Transient(format!("cannot connect ({error}); check the network or proxy"))
            }
            ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl => {
                Failure::Permanent(format!("{error}; check the URL (and any *_PROXY variable)"))
            }
            other => Failure::Permanent(other.to_string()),
        }
    }

    fn status_failure(status: u16) -> Failure {
        match status {
            404 | 410 => Failure::Permanent(format!(
                "the server answered {status} (not found); check the URL (for a catalogue voice the catalogue may be \
                 out of date: run `demod-voice voices catalog --refresh`, or check voices.base_url / \
                 voices.catalog_url)"
            )),
            429 | 500..=599 => Failure::Transient(format!("the server answered {status}")),
            s => Failure::Permanent(format!("the server answered {s}")),
        }
    }

    /// Run `attempt` until it succeeds, fails for good, or the retries are spent.
    fn with_retries<T>(&self, url: &str, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T> {
        let mut delay = self.options.backoff;
        let mut tries = 0;
        loop {
            tries += 1;
            match attempt() {
                Ok(value) => return Ok(value),
                Err(Failure::Transient(problem)) if tries <= self.options.retries => {
                    tracing::warn!("{url}: {problem}; trying again in {:.1} s", delay.as_secs_f32());
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                }
                Err(Failure::Transient(problem) | Failure::Permanent(problem)) => {
                    let tries = if tries > 1 { format!(" ({tries} tries)") } else { String::new() };
                    return Err(Error::Download { url: url.to_string(), problem: format!("{problem}{tries}") });
                }
            }
        }
    }

    /// The body at `url`, at most `limit` bytes.
    pub fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>> {
        self.with_retries(url, || {
            let response = self.agent.get(url).call().map_err(|e| self.describe(&e))?;
            let status = response.status().as_u16();
            if status != 200 {
                return Err(Self::status_failure(status));
            }
            let mut bytes = Vec::new();
            let mut reader = response.into_body().into_reader().take(limit + 1);
            reader.read_to_end(&mut bytes).map_err(|e| self.read_failure(&e, bytes.len() as u64))?;
            if bytes.len() as u64 > limit {
                return Err(Failure::Permanent(format!("the answer is larger than {limit} bytes")));
            }
            Ok(bytes)
        })
    }

    fn read_failure(&self, error: &std::io::Error, got: u64) -> Failure {
        if error.kind() == std::io::ErrorKind::TimedOut {
            return Failure::Transient(format!(
                "the server stopped sending for {:.0} s after {got} bytes; check the network, or raise voices.timeout_s",
                self.options.timeout.as_secs_f32()
            ));
        }
        Failure::Transient(format!("the connection broke after {got} bytes ({error})"))
    }

    /// Fetch `url` into `file`, continuing after the bytes it already has (HTTP range request; a server that sends
    /// the whole file again restarts it), until `expected` bytes are there (when not given: the size the server
    /// announces, or else until it ends the body). Broken connections and timeouts are retried from where they
    /// stopped. `progress` is told the bytes in the file, and the whole size when known, after every chunk.
    pub fn download_into(
        &self,
        url: &str,
        file: &mut File,
        expected: Option<u64>,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<u64> {
        let io_failure = |e: std::io::Error| Failure::Permanent(format!("cannot write the download: {e}"));
        self.with_retries(url, || {
            let mut have = file.seek(SeekFrom::End(0)).map_err(io_failure)?;
            if expected.is_some_and(|expected| have >= expected) {
                return Ok(have);
            }
            let mut request = self.agent.get(url);
            if have > 0 {
                request = request.header("Range", format!("bytes={have}-"));
            }
            let response = request.call().map_err(|e| self.describe(&e))?;
            let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
            // What the server says the whole file is: Content-Range's total on a resumed answer, else its length.
            let announced = match response.status().as_u16() {
                206 => header("content-range").and_then(|r| r.rsplit('/').next().and_then(|t| t.parse::<u64>().ok())),
                _ => header("content-length").and_then(|l| l.parse::<u64>().ok()),
            };
            let expected = expected.or(announced);
            match response.status().as_u16() {
                206 => {
                    let range = header("content-range").unwrap_or_default();
                    if !range.starts_with(&format!("bytes {have}-")) {
                        return Err(Failure::Permanent(format!(
                            "the server answered the range request from byte {have} with `{range}`"
                        )));
                    }
                }
                200 => {
                    if have > 0 {
                        tracing::debug!("{url}: the server does not resume; starting again");
                        file.set_len(0).map_err(io_failure)?;
                        file.seek(SeekFrom::Start(0)).map_err(io_failure)?;
                        have = 0;
                    }
                }
                // The range starts at or past the end: what is here is the whole file or more; let the checks say.
                416 => return Ok(have),
                status => return Err(Self::status_failure(status)),
            }
            let mut reader = response.into_body().into_reader();
            let mut buffer = vec![0u8; 64 * 1024];
            loop {
                let n = match reader.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        file.flush().map_err(io_failure)?;
                        return Err(self.read_failure(&e, have));
                    }
                };
                if let Some(expected) = expected.filter(|e| have + n as u64 > *e) {
                    return Err(Failure::Permanent(format!("the server sent more than the {expected} bytes expected")));
                }
                file.write_all(&buffer[..n]).map_err(io_failure)?;
                have += n as u64;
                progress(have, expected);
            }
            if let Some(expected) = expected.filter(|e| have < *e) {
                return Err(Failure::Transient(format!("the server ended the file at {have} of {expected} bytes")));
            }
            Ok(have)
        })
    }
}
