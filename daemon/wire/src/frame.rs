//! Framing: each message is one frame, a 4-byte big-endian length followed
//! by that many bytes of UTF-8 JSON (one object).
//!
//! The decoder is sans-IO ([`FrameDecoder`]): bytes go in as they arrive,
//! whole frames come out, and a length that is zero or larger than
//! [`MAX_FRAME`] is an error before any of the body is buffered, so a peer
//! cannot make the other side allocate more than one frame's worth.
//! [`read_frame`] / [`write_frame`] (feature `tokio`) and the blocking
//! [`read_frame_blocking`] / [`write_frame_blocking`] wrap it for sockets.

/// The largest frame body accepted, in bytes (1 MiB). A status with dozens
/// of bays and jobs is a few KiB.
pub const MAX_FRAME: usize = 1 << 20;

/// Why a byte stream is not a sequence of frames.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A length prefix of zero: every message is a non-empty object.
    #[error("a frame of length 0")]
    Empty,
    /// A length prefix over [`MAX_FRAME`].
    #[error("a frame of {0} bytes; the limit is {MAX_FRAME}")]
    TooLarge(u32),
    /// The stream ended inside a frame.
    #[error("the connection closed inside a frame ({0} bytes of it received)")]
    Truncated(usize),
    /// The socket failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Frame `body`: its length (big-endian u32) and the body.
///
/// # Panics
/// Never for bodies the message types produce; a body over [`MAX_FRAME`]
/// is a bug and panics rather than being sent truncated.
pub fn frame(body: &[u8]) -> Vec<u8> {
    assert!(
        !body.is_empty() && body.len() <= MAX_FRAME,
        "frame body of {} bytes",
        body.len()
    );
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Collects bytes and yields whole frame bodies.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame body, `None` if more bytes are needed. After an
    /// error the stream is unusable: close the connection.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        check_len(len)?;
        let end = 4 + len as usize;
        if self.buf.len() < end {
            return Ok(None);
        }
        let body = self.buf[4..end].to_vec();
        self.buf.drain(..end);
        Ok(Some(body))
    }

    /// Bytes received but not yet returned as a frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

fn check_len(len: u32) -> Result<(), FrameError> {
    match len {
        0 => Err(FrameError::Empty),
        n if n as usize > MAX_FRAME => Err(FrameError::TooLarge(n)),
        _ => Ok(()),
    }
}

/// Read one frame body; `None` when the peer closed between frames.
#[cfg(feature = "tokio")]
pub async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<Vec<u8>>, FrameError> {
    use tokio::io::AsyncReadExt;
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut len[got..]).await? {
            0 if got == 0 => return Ok(None),
            0 => return Err(FrameError::Truncated(got)),
            n => got += n,
        }
    }
    let len = u32::from_be_bytes(len);
    check_len(len)?;
    let mut body = vec![0u8; len as usize];
    let mut got = 0;
    while got < body.len() {
        match r.read(&mut body[got..]).await? {
            0 => return Err(FrameError::Truncated(4 + got)),
            n => got += n,
        }
    }
    Ok(Some(body))
}

/// Write one frame and flush.
#[cfg(feature = "tokio")]
pub async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    body: &[u8],
) -> Result<(), FrameError> {
    use tokio::io::AsyncWriteExt;
    w.write_all(&frame(body)).await?;
    w.flush().await?;
    Ok(())
}

/// Read one frame body from a blocking stream; `None` at a clean end.
pub fn read_frame_blocking<R: std::io::Read>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut dec = FrameDecoder::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(f) = dec.next_frame()? {
            return Ok(Some(f));
        }
        // Read no further than the current frame: the rest belongs to the
        // next call (a blocking reader has no place to keep it).
        let want = if dec.pending() < 4 {
            4 - dec.pending()
        } else {
            let len = u32::from_be_bytes(chunk_len(&dec)) as usize;
            4 + len - dec.pending()
        };
        let cap = want.min(chunk.len());
        let n = r.read(&mut chunk[..cap])?;
        if n == 0 {
            return match dec.pending() {
                0 => Ok(None),
                p => Err(FrameError::Truncated(p)),
            };
        }
        dec.push(&chunk[..n]);
    }
}

fn chunk_len(dec: &FrameDecoder) -> [u8; 4] {
    [dec.buf[0], dec.buf[1], dec.buf[2], dec.buf[3]]
}

/// Write one frame to a blocking stream.
pub fn write_frame_blocking<W: std::io::Write>(w: &mut W, body: &[u8]) -> Result<(), FrameError> {
    w.write_all(&frame(body))?;
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut bytes = frame(b"{\"a\":1}");
        bytes.extend(frame(b"{}"));
        for cut in 0..bytes.len() {
            let mut d = FrameDecoder::new();
            let mut out = Vec::new();
            d.push(&bytes[..cut]);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
            d.push(&bytes[cut..]);
            while let Some(f) = d.next_frame().unwrap() {
                out.push(f);
            }
            assert_eq!(
                out,
                vec![b"{\"a\":1}".to_vec(), b"{}".to_vec()],
                "cut {cut}"
            );
            assert_eq!(d.pending(), 0);
        }
    }

    #[test]
    fn bad_lengths_are_refused_before_buffering() {
        let mut d = FrameDecoder::new();
        d.push(&[0, 0, 0, 0]);
        assert!(matches!(d.next_frame(), Err(FrameError::Empty)));
        let mut d = FrameDecoder::new();
        d.push(&((MAX_FRAME as u32) + 1).to_be_bytes());
        assert!(matches!(d.next_frame(), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn blocking_reads_stop_at_each_frame() {
        let mut bytes = frame(b"{\"x\":true}");
        bytes.extend(frame(b"{\"y\":false}"));
        bytes.extend(&[0, 0, 0, 9, b'{']);
        let mut r = std::io::Cursor::new(bytes);
        assert_eq!(
            read_frame_blocking(&mut r).unwrap().unwrap(),
            b"{\"x\":true}"
        );
        assert_eq!(
            read_frame_blocking(&mut r).unwrap().unwrap(),
            b"{\"y\":false}"
        );
        assert!(matches!(
            read_frame_blocking(&mut r),
            Err(FrameError::Truncated(5))
        ));
        assert!(read_frame_blocking(&mut std::io::Cursor::new(Vec::new()))
            .unwrap()
            .is_none());
    }

    #[tokio::test]
    async fn async_round_trip_and_truncation() {
        let (mut a, mut b) = tokio::io::duplex(64);
        write_frame(&mut a, b"{\"k\":\"v\"}").await.unwrap();
        assert_eq!(read_frame(&mut b).await.unwrap().unwrap(), b"{\"k\":\"v\"}");
        tokio::io::AsyncWriteExt::write_all(&mut a, &[0, 0, 0, 5, b'{'])
            .await
            .unwrap();
        drop(a);
        assert!(matches!(
            read_frame(&mut b).await,
            Err(FrameError::Truncated(5))
        ));
    }

    proptest! {
        /// Whatever bytes arrive, the decoder returns frames or an error,
        /// never panics, and never returns more bytes than it was given.
        #[test]
        fn the_decoder_never_panics(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8)) {
            let mut d = FrameDecoder::new();
            let mut given = 0;
            let mut taken = 0;
            'outer: for c in &chunks {
                given += c.len();
                d.push(c);
                loop {
                    match d.next_frame() {
                        Ok(Some(f)) => taken += 4 + f.len(),
                        Ok(None) => break,
                        Err(_) => break 'outer,
                    }
                }
            }
            prop_assert!(taken <= given);
        }
    }
}
