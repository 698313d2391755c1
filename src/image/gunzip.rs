//! Reading a gzip layer: zlib-rs's inflate (zlib's algorithm and checks in Rust: 0.27 s of
//! CPU for the 49 MB gzip layer of the lab's debian:apache2, 121 MB of tar, against 0.34 s
//! with flate2's miniz_oxide, medians of five) with zlib's own gzip handling (`windowBits`
//! 16 + 15): the header is parsed and the trailer's CRC-32 and length are checked, so a
//! damaged stream is an error, never short data. Compression stays
//! with flate2 (miniz_oxide): the gzip blobs dockling writes, and so their digests, are as
//! before.
//!
//! One member is read, as flate2's `GzDecoder` reads one: what follows its trailer is left
//! to the caller (the blob's digest covers it; the tar it would add is not part of the layer
//! the diff_id names).

use std::io::{BufRead, Read};

use zlib_rs::{Inflate, InflateFlush, Status};

/// The uncompressed stream of the gzip member at the start of `inner`.
pub(crate) struct GzipReader<R> {
    inner: R,
    inflate: Inflate,
    done: bool,
}

impl<R: BufRead> GzipReader<R> {
    pub(crate) fn new(inner: R) -> GzipReader<R> {
        GzipReader {
            inner,
            // A gzip header (16) and a 32 KiB window (15), as gzip writes them.
            inflate: Inflate::new(true, 16 + 15),
            done: false,
        }
    }
}

impl<R: BufRead> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.inner.fill_buf()?;
            let eof = input.is_empty();
            let (in0, out0) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self
                .inflate
                .decompress(input, buf, InflateFlush::NoFlush)
                .map_err(|e| {
                    let why = self.inflate.error_message().unwrap_or(e.as_str());
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("corrupt gzip stream: {why}"),
                    )
                })?;
            let used = (self.inflate.total_in() - in0) as usize;
            let made = (self.inflate.total_out() - out0) as usize;
            self.inner.consume(used);
            if status == Status::StreamEnd {
                self.done = true;
                return Ok(made);
            }
            if made > 0 {
                return Ok(made);
            }
            if eof {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the gzip stream ends before its trailer (truncated)",
                ));
            }
            // Input taken, nothing out yet (a header, a table): read on.
            if used == 0 {
                // zlib neither took input nor made output with room for both: it is stuck.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "corrupt gzip stream: inflate made no progress",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    fn read_all(r: impl Read) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        std::io::BufReader::with_capacity(7, r).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn a_gzip_stream_reads_back_whole_through_small_buffers() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 20) as u8)
            .collect();
        let gz = gzip(&data);
        // Input a few bytes at a time: headers and blocks split anywhere.
        let r = GzipReader::new(std::io::BufReader::with_capacity(5, &gz[..]));
        assert_eq!(read_all(r).unwrap(), data);
        assert_eq!(read_all(GzipReader::new(&gz[..])).unwrap(), data);
    }

    #[test]
    fn a_damaged_or_truncated_gzip_stream_is_an_error_not_short_data() {
        let data = b"hello, layer\n".repeat(10_000);
        let gz = gzip(&data);
        let cut = &gz[..gz.len() - 3];
        let e = read_all(GzipReader::new(cut)).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
        // The trailer's CRC-32 no longer matches.
        let mut crc = gz.clone();
        let n = crc.len();
        crc[n - 6] ^= 1;
        let e = read_all(GzipReader::new(&crc[..])).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        let e = read_all(GzipReader::new(&b"not gzip at all"[..])).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn one_member_is_read_and_what_follows_it_is_left() {
        let (a, b) = (gzip(b"first"), gzip(b"second"));
        let both = [a.clone(), b.clone()].concat();
        let mut rest = &both[..];
        let got = read_all(GzipReader::new(&mut rest)).unwrap();
        assert_eq!(got, b"first");
        assert_eq!(rest, &b[..]);
    }
}
