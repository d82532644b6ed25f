//! The firmware side of the `docs/protocol.md` test vectors: the documented request bytes, fed
//! to the real firmware logic, must produce exactly the documented reply bytes.
extern crate std;
use super::*;
use core::convert::Infallible;
use embedded_hal::digital::StatefulOutputPin;
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
impl embedded_hal::digital::OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), Infallible> {
        self.0 = false;
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Infallible> {
        self.0 = true;
        Ok(())
    }
}
impl StatefulOutputPin for Pin {
    fn is_set_high(&mut self) -> Result<bool, Infallible> {
        Ok(self.0)
    }
    fn is_set_low(&mut self) -> Result<bool, Infallible> {
        Ok(!self.0)
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
    fn build(&self) -> BuildKind {
        BuildKind::Production
    }
    fn start_pulse_limit(&mut self, _: u32) {}
    fn stop_pulse_limit(&mut self) {}
    fn pulse_limit_tripped(&mut self) -> bool {
        false
    }
    fn kick_watchdog(&mut self) {}
    fn entropy(&mut self) -> u32 {
        0
    }
    fn simulate(&mut self, _: crate::SimRequest) {}
}

type Fw = Firmware<Pin, Pin, Pin, NoSim, 2>;

/// A controller with the e-stop as given and everything else safe.
fn fresh(estop_ok: bool) -> Fw {
    Firmware::new(
        Config::default(),
        Pin(true),
        InputPins {
            door: Pin(true),
            estop: Pin(estop_ok),
            contact: Pin(true), // coil off
            reset: Pin(false),
        },
        [Pin(false), Pin(false)],
        NoSim,
        ResetCause::PowerOn,
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

fn exchange(fw: &mut Fw, req: &[u8], now: u32) -> Vec<u8> {
    let mut out = Sink(Vec::new());
    for &b in req {
        fw.on_byte(b, now, &mut out);
    }
    out.0
}

fn reply(fw: &mut Fw, req: &[u8], now: u32) -> Frame {
    let out = exchange(fw, req, now);
    decode_frame(&out[..out.len() - 1]).unwrap()
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
    let mut fw = fresh(true);
    // The welcome carries this boot's random session: check its shape.
    let Frame {
        seq: 1,
        msg: Msg::Welcome(w),
    } = reply(&mut fw, &doc("hello-host"), 0)
    else {
        panic!("welcome")
    };
    assert_eq!(
        (w.protocol, (w.major, w.minor, w.patch), w.build),
        (2, crate::FW_VERSION, BuildKind::Production)
    );
    let got = exchange(&mut fw, &doc("set-led-bay1-busy"), 0);
    assert_eq!(hex(&got), hex(&doc("ack")));
    let got = exchange(&mut fw, &[0x13, 0x37, 0x42, 0x00], 0);
    assert_eq!(hex(&got), hex(&doc("nak-malformed")));
    let mut bad = doc("get-status");
    let n = bad.len();
    bad[n - 2] ^= 0x01;
    assert_eq!(hex(&exchange(&mut fw, &bad, 0)), hex(&doc("nak-crc")));
    // The documented fire carries the documented session, not this boot's.
    assert_eq!(
        reply(&mut fw, &doc("fire"), 0).msg,
        Msg::Refused(lethe_proto::Refusal::StaleSession)
    );
    // Arm and fire with this boot's session: the documented Firing reply, byte for byte.
    let mut f = [0u8; MAX_FRAME];
    let n = encode_frame(
        &Frame {
            seq: 4,
            msg: Msg::Arm { session: w.session },
        },
        &mut f,
    )
    .unwrap();
    let Frame {
        seq: 4,
        msg: Msg::Armed {
            nonce,
            expires_in_ms: 5_000,
        },
    } = reply(&mut fw, &f[..n], 10)
    else {
        panic!("arm")
    };
    let n = encode_frame(
        &Frame {
            seq: 5,
            msg: Msg::Fire {
                session: w.session,
                nonce,
            },
        },
        &mut f,
    )
    .unwrap();
    assert_eq!(hex(&exchange(&mut fw, &f[..n], 20)), hex(&doc("firing")));
    // The Abort reusing the Fire's sequence number is executed (answered Ack, not Firing).
    let got = reply(&mut fw, &doc("abort-reusing-fire-seq"), 30);
    assert_eq!((got.seq, got.msg), (5, Msg::Ack));
    assert!(!fw.relay_driven());
}

#[test]
fn clear_fault_on_an_estop_trip_gets_the_documented_refusal() {
    let mut fw = fresh(false);
    assert_eq!(
        hex(&exchange(&mut fw, &doc("clear-fault"), 0)),
        hex(&doc("refused-local-reset"))
    );
}
