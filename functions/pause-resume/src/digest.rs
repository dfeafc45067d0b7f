//! What an exported object holds, measured as its bytes stream by: SHA-256 and the number of
//! lines of its gunzipped content. Its own module because both ends use it: the S3 reader in
//! [`crate::ops`] feeds it, verify-export judges what it measured.

use std::io::Write;

use flate2::write::MultiGzDecoder;
use sha2::{Digest, Sha256};

/// SHA-256 of an object's bytes and the number of lines of its gunzipped content, computed
/// as the bytes stream by.
pub struct ObjectDigest {
    sha256: Sha256,
    gunzip: MultiGzDecoder<LineCounter>,
    gzip_error: Option<std::io::Error>,
    bytes: u64,
}

/// What an object turned out to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Measured {
    pub sha256: String,
    /// Lines of the gunzipped content, or why it is not valid gzip.
    pub lines: Result<u64, String>,
    /// The object's size as stored (compressed).
    pub bytes: u64,
}

#[derive(Default)]
struct LineCounter {
    newlines: u64,
    last: Option<u8>,
}

impl Write for LineCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.newlines += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(&b) = buf.last() {
            self.last = Some(b);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Default for ObjectDigest {
    fn default() -> Self {
        Self {
            sha256: Sha256::new(),
            gunzip: MultiGzDecoder::new(LineCounter::default()),
            gzip_error: None,
            bytes: 0,
        }
    }
}

impl ObjectDigest {
    pub fn update(&mut self, chunk: &[u8]) {
        self.bytes += chunk.len() as u64;
        self.sha256.update(chunk);
        if self.gzip_error.is_none() {
            if let Err(e) = self.gunzip.write_all(chunk) {
                self.gzip_error = Some(e);
            }
        }
    }

    /// The digest and the line count; a last line without a newline counts too.
    pub fn finish(self) -> Measured {
        let sha256 = hex::encode(self.sha256.finalize());
        let lines = match self.gzip_error {
            Some(e) => Err(e.to_string()),
            None => self
                .gunzip
                .finish()
                .map(|c| c.newlines + u64::from(c.last.is_some_and(|b| b != b'\n')))
                .map_err(|e| e.to_string()),
        };
        Measured {
            sha256,
            lines,
            bytes: self.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fakes::gzip;

    #[test]
    fn concatenated_gzip_members_are_all_counted() {
        let mut body = gzip("1\n2\n");
        body.extend(gzip("3\n"));
        let mut digest = ObjectDigest::default();
        digest.update(&body);
        assert_eq!(digest.finish().lines, Ok(3));
    }
}
