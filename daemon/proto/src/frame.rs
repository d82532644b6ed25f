//! Framing: postcard body + CRC-16/IBM-SDLC (X.25; poly 0x1021 reflected, init/xorout 0xFFFF),
//! appended little-endian, then COBS-encoded and terminated with a single 0x00.
//! COBS is implemented here (small, no panics on any input) rather than pulled in.
use crate::msg::Frame;
use crc::{Crc, CRC_16_IBM_SDLC};

/// Largest postcard body we ever produce or accept.
pub const MAX_PAYLOAD: usize = 64;
/// Largest encoded frame including the trailing 0x00.
pub const MAX_FRAME: usize = MAX_PAYLOAD + 2 + 2 + 1;

const CRC16: Crc<u16> = Crc::<u16>::new(&CRC_16_IBM_SDLC);

/// Errors from encoding or decoding a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// Output buffer too small or body too large.
    TooLong,
    /// Fewer bytes than a CRC.
    TooShort,
    /// COBS violation (a zero inside the frame or a code past the end).
    Cobs,
    /// CRC mismatch.
    Crc,
    /// Postcard could not decode the body.
    Postcard,
}

/// CRC over `data` as used on the wire.
pub fn crc16(data: &[u8]) -> u16 {
    CRC16.checksum(data)
}

/// Encode `frame` into `out`; returns the number of bytes including the 0x00 terminator.
pub fn encode_frame(frame: &Frame, out: &mut [u8]) -> Result<usize, FrameError> {
    let mut raw = [0u8; MAX_PAYLOAD + 2];
    let body_len = postcard::to_slice(frame, &mut raw[..MAX_PAYLOAD])
        .map_err(|_| FrameError::TooLong)?
        .len();
    let crc = crc16(&raw[..body_len]).to_le_bytes();
    raw[body_len] = crc[0];
    raw[body_len + 1] = crc[1];
    let n = cobs_encode(&raw[..body_len + 2], out)?;
    let end = out.get_mut(n).ok_or(FrameError::TooLong)?;
    *end = 0;
    Ok(n + 1)
}

/// Decode one frame from its COBS bytes (without the 0x00 terminator).
pub fn decode_frame(encoded: &[u8]) -> Result<Frame, FrameError> {
    let mut raw = [0u8; MAX_FRAME];
    let n = cobs_decode(encoded, &mut raw)?;
    if n < 3 {
        return Err(FrameError::TooShort);
    }
    let (body, crc) = raw[..n].split_at(n - 2);
    if crc16(body).to_le_bytes() != [crc[0], crc[1]] {
        return Err(FrameError::Crc);
    }
    // Trailing bytes after the message are rejected so every frame has one canonical encoding.
    match postcard::take_from_bytes::<Frame>(body) {
        Ok((frame, [])) => Ok(frame),
        _ => Err(FrameError::Postcard),
    }
}

/// COBS-encode `src` into `dst`; returns the encoded length (no terminator).
pub fn cobs_encode(src: &[u8], dst: &mut [u8]) -> Result<usize, FrameError> {
    let mut code_idx = 0usize;
    let mut out = 1usize;
    let mut code = 1u8;
    if dst.is_empty() {
        return Err(FrameError::TooLong);
    }
    for &b in src {
        if b == 0 {
            dst[code_idx] = code;
            code_idx = out;
            out += 1;
            code = 1;
        } else {
            *dst.get_mut(out).ok_or(FrameError::TooLong)? = b;
            out += 1;
            code += 1;
            if code == 0xFF {
                dst[code_idx] = code;
                code_idx = out;
                out += 1;
                code = 1;
            }
        }
        if code_idx >= dst.len() {
            return Err(FrameError::TooLong);
        }
    }
    dst[code_idx] = code;
    Ok(out)
}

/// COBS-decode `src` (no terminator) into `dst`; returns the decoded length.
pub fn cobs_decode(src: &[u8], dst: &mut [u8]) -> Result<usize, FrameError> {
    let mut i = 0usize;
    let mut out = 0usize;
    while i < src.len() {
        let code = src[i];
        if code == 0 {
            return Err(FrameError::Cobs);
        }
        i += 1;
        let run = usize::from(code) - 1;
        let chunk = src.get(i..i + run).ok_or(FrameError::Cobs)?;
        if chunk.contains(&0) {
            return Err(FrameError::Cobs);
        }
        dst.get_mut(out..out + run)
            .ok_or(FrameError::TooLong)?
            .copy_from_slice(chunk);
        out += run;
        i += run;
        if code != 0xFF && i < src.len() {
            *dst.get_mut(out).ok_or(FrameError::TooLong)? = 0;
            out += 1;
        }
    }
    Ok(out)
}

/// Byte-at-a-time frame accumulator for a serial stream.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    buf: [u8; MAX_FRAME],
    len: usize,
    overflow: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// Empty decoder.
    pub const fn new() -> Self {
        Self {
            buf: [0; MAX_FRAME],
            len: 0,
            overflow: false,
        }
    }

    /// Feed one byte. Returns `Some` when a 0x00 delimiter completes a (possibly bad) frame.
    /// Empty frames (back-to-back delimiters) are ignored so a sender can flush with 0x00.
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame, FrameError>> {
        if byte == 0 {
            let res = if self.overflow {
                Some(Err(FrameError::TooLong))
            } else if self.len == 0 {
                None
            } else {
                Some(decode_frame(&self.buf[..self.len]))
            };
            self.len = 0;
            self.overflow = false;
            return res;
        }
        match self.buf.get_mut(self.len) {
            Some(slot) => {
                *slot = byte;
                self.len += 1;
            }
            None => self.overflow = true,
        }
        None
    }
}
