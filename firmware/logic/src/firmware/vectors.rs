//! The firmware side of the `docs/protocol.md` test vectors: the documented request bytes, fed
//! to the real firmware logic, must produce exactly the documented reply bytes.
extern crate std;
use super::*;
use core::convert::Infallible;
use lethe_proto::{decode_frame, vectors::CASES};
use std::string::{String, ToString};
use std::vec::Vec;

const DOC: &str = include_str!("../../../../docs/protocol.md");

fn doc(name: &str) -> Vec<u8> {
    for l in DOC.lines() {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        if cells
            .get(1)
            .and_then(|c| c.strip_prefix("`v:"))
            .and_then(|c| c.strip_suffix('`'))
            == Some(name)
        {
            return cells[3]
                .trim_matches('`')
                .split_whitespace()
                .map(|b| u8::from_str_radix(b, 16).unwrap())
                .collect();
        }
    }
    panic!("vector {name} not in docs/protocol.md");
}

struct Pin(bool);
impl embedded_hal::digital::ErrorType for Pin {
    type Error = Infallible;
}
impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0 = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0 = true;
        Ok(())
    }
}
impl InputPin for Pin {
    fn is_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0)
    }
    fn is_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0)
    }
}
struct NoSim;
impl Board for NoSim {
    fn sim_inputs(&mut self, _: bool, _: bool) -> bool {
        false
    }
}

fn fresh() -> Firmware<Pin, Pin, Pin, Pin, NoSim, 2> {
    Firmware::new(
        Config::default(),
        Pin(true),
        [Pin(false), Pin(false)],
        Pin(true),
        Pin(true),
        NoSim,
        1,
    )
}

struct Sink(Vec<u8>);
impl embedded_io::ErrorType for Sink {
    type Error = Infallible;
}
impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

fn exchange(fw: &mut Firmware<Pin, Pin, Pin, Pin, NoSim, 2>, req: &[u8], now: u32) -> Vec<u8> {
    let mut out = Sink(Vec::new());
    for &b in req {
        fw.on_byte(b, now, &mut out);
    }
    out.0
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| std::format!("{x:02x} "))
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[test]
fn every_documented_vector_decodes_to_the_shared_case() {
    for (name, frame) in CASES {
        let bytes = doc(name);
        assert_eq!(
            decode_frame(&bytes[..bytes.len() - 1]),
            Ok(*frame),
            "{name}"
        );
    }
}

#[test]
fn documented_requests_produce_documented_replies() {
    let mut fw = fresh();
    let pairs = [
        ("hello-host", "hello-fw"),
        ("set-led-bay1-busy", "ack"),
        ("fire", "refused-not-armed"),
    ];
    for (req, reply) in pairs {
        let got = exchange(&mut fw, &doc(req), 0);
        assert_eq!(hex(&got), hex(&doc(reply)), "{req} -> {reply}");
    }
    let got = exchange(&mut fw, &[0x13, 0x37, 0x42, 0x00], 0);
    assert_eq!(hex(&got), hex(&doc("nak-malformed")));
    // Corrupt the CRC of a documented frame: exactly the documented CRC NAK.
    let mut bad = doc("get-status");
    let n = bad.len();
    bad[n - 2] ^= 0x01;
    assert_eq!(hex(&exchange(&mut fw, &bad, 0)), hex(&doc("nak-crc")));
    // Armed/Firing carry a random nonce; check their shape against the documented ones.
    let Some(Ok(Frame {
        msg: Msg::Armed {
            nonce,
            expires_in_ms,
        },
        seq: 4,
    })) = exchange(&mut fw, &doc("arm"), 10)
        .split(|&b| b == 0)
        .next()
        .map(decode_frame)
    else {
        panic!("arm")
    };
    assert_eq!(expires_in_ms, 5_000);
    let mut f = [0u8; MAX_FRAME];
    let n = encode_frame(
        &Frame {
            seq: 5,
            msg: Msg::Fire { nonce },
        },
        &mut f,
    )
    .unwrap();
    assert_eq!(hex(&exchange(&mut fw, &f[..n], 20)), hex(&doc("firing")));
}
