//! Every transition of the degausser state machine, with an injected clock. The feedback contact
//! is passed explicitly: `HOT` is "reads energized".
use super::*;

const CFG: Config = Config {
    arm_expiry_ms: 5_000,
    fire_ms: 1_500,
    cooldown_ms: 1_000,
    link_timeout_ms: 500,
    contact_ms: 50,
    pulse_margin_ms: 20,
};
const SAFE: Inputs = Inputs::SAFE;
const HOT: Inputs = Inputs {
    energized: true,
    ..SAFE
};
const DOOR_OPEN: Inputs = Inputs {
    interlock_closed: false,
    ..SAFE
};
const ESTOP: Inputs = Inputs {
    estop: true,
    ..SAFE
};
const NO_LINK: Inputs = Inputs {
    link_ok: false,
    ..SAFE
};
const RESET_HELD: Inputs = Inputs {
    reset_pressed: true,
    ..SAFE
};

fn armed(now: u32) -> (Degausser, u32) {
    let mut d = Degausser::new(CFG, 42);
    let (nonce, exp) = d.arm(now, SAFE).unwrap();
    assert_eq!(exp, 5_000);
    assert_eq!(d.state(), DegausserState::Armed);
    assert!(!d.relay_on(), "arming never energizes");
    (d, nonce)
}

/// Fired at `now + 10`, contact picked up 5 ms later.
fn firing(now: u32) -> Degausser {
    let (mut d, nonce) = armed(now);
    assert_eq!(d.fire(now + 10, nonce, SAFE), Ok((1, 1_500)));
    assert_eq!(d.state(), DegausserState::Firing);
    assert!(d.relay_on());
    d.tick(now + 15, HOT);
    assert!(d.relay_on());
    d
}

/// Press and release the local reset.
fn local_reset(d: &mut Degausser, now: u32, inp: Inputs) {
    d.tick(
        now,
        Inputs {
            reset_pressed: true,
            ..inp
        },
    );
    d.tick(now + 1, inp);
}

#[test]
fn reset_state_is_idle_and_off() {
    let d = Degausser::new(CFG, 0);
    assert_eq!(d.state(), DegausserState::Idle);
    assert!(!d.relay_on());
    assert_eq!((d.cycles(), d.fault(), d.cooldown_ms()), (0, None, 0));
}

#[test]
fn full_cycle_is_measured_on_the_contact_and_cooldown_follows() {
    let mut d = firing(100);
    d.tick(110 + 1_499, HOT);
    assert!(d.relay_on(), "still inside the cycle");
    d.tick(110 + 1_500, HOT);
    assert!(!d.relay_on(), "pulse ends at fire_ms");
    assert_eq!(d.state(), DegausserState::Cooldown);
    assert_eq!(d.cycles(), 0, "not complete until the contact drops out");
    d.tick(110 + 1_520, SAFE);
    assert_eq!(d.cycles(), 1);
    assert_eq!(
        d.last_cycle_ms(),
        1_630 - 115,
        "from the contact's pick-up to its drop-out as seen by the polls"
    );
    assert_eq!(d.arm(1_700, SAFE), Err(Refusal::CoolingDown));
    // The contact was seen hot at 1_610 and cold at 1_630: it dropped out somewhere in between,
    // so the cooldown counts from 1_630.
    d.tick(1_630 + 999, SAFE);
    assert_eq!(d.state(), DegausserState::Cooldown);
    assert_eq!(d.cooldown_ms(), 1);
    d.tick(1_630 + 1_000, SAFE);
    assert_eq!(d.state(), DegausserState::Idle);
    let (n, _) = d.arm(3_000, SAFE).unwrap();
    assert_eq!(
        d.fire(3_001, n, SAFE),
        Ok((2, 1_500)),
        "cycle numbers count up"
    );
}

/// safeguard: rule:fail-safe-relay
#[test]
fn firing_is_bounded_even_with_late_tick() {
    let mut d = firing(0);
    d.tick(60_000, HOT);
    assert!(!d.relay_on());
    d.tick(60_005, SAFE);
    assert_eq!(d.last_cycle_ms(), 60_005 - 15, "reports the real on-time");
}

#[test]
fn fire_without_arm_refused() {
    let mut d = Degausser::new(CFG, 1);
    assert_eq!(d.fire(0, 0, SAFE), Err(Refusal::NotArmed));
    assert_eq!(d.fire(0, 12345, SAFE), Err(Refusal::NotArmed));
    assert!(!d.relay_on());
}

#[test]
fn fire_with_wrong_nonce_refused_and_stays_armed() {
    let (mut d, n) = armed(0);
    assert_eq!(d.fire(1, n.wrapping_add(1), SAFE), Err(Refusal::BadNonce));
    assert_eq!(d.state(), DegausserState::Armed);
    assert!(d.fire(2, n, SAFE).is_ok());
}

#[test]
fn armed_expires_to_idle_and_late_fire_says_expired() {
    let (mut d, n) = armed(1_000);
    d.tick(5_999, SAFE);
    assert_eq!(d.state(), DegausserState::Armed);
    d.tick(6_000, SAFE);
    assert_eq!(d.state(), DegausserState::Idle);
    assert_eq!(d.fire(6_001, n, SAFE), Err(Refusal::ArmExpired));
    assert!(!d.relay_on());
    let (mut d, n) = armed(0);
    assert_eq!(
        d.fire(5_000, n, SAFE),
        Err(Refusal::ArmExpired),
        "expiry seen inside fire()"
    );
}

#[test]
fn rearm_gives_new_nonce_and_old_one_is_dead() {
    let (mut d, n1) = armed(0);
    let (n2, _) = d.arm(10, SAFE).unwrap();
    assert_ne!(n1, n2);
    assert_eq!(d.fire(11, n1, SAFE), Err(Refusal::BadNonce));
    assert!(d.fire(12, n2, SAFE).is_ok());
}

#[test]
fn abort_disarms_or_latches_when_firing() {
    let (mut d, n) = armed(0);
    d.abort();
    assert_eq!(d.state(), DegausserState::Idle);
    assert_eq!(d.fire(2, n, SAFE), Err(Refusal::NotArmed));
    let mut d = firing(0);
    d.abort();
    assert!(!d.relay_on());
    assert_eq!(d.fault(), Some(FaultCode::Aborted));
    d.tick(100, SAFE);
    assert_eq!(d.cycles(), 0, "an aborted cycle is not a completed cycle");
    let mut d = Degausser::new(CFG, 3);
    d.abort();
    assert_eq!(d.state(), DegausserState::Idle);
}

#[test]
fn arming_needs_the_contact_off_and_a_closed_door() {
    let mut d = Degausser::new(CFG, 1);
    assert_eq!(d.arm(0, HOT), Err(Refusal::EnergizedAtRest));
    assert_eq!(d.arm(0, DOOR_OPEN), Err(Refusal::InterlockOpen));
    let (mut d, n) = armed(0);
    assert_eq!(d.fire(1, n, HOT), Err(Refusal::EnergizedAtRest));
    assert!(!d.relay_on());
    assert_eq!(d.fire(2, n, DOOR_OPEN), Err(Refusal::InterlockOpen));
    assert_eq!(
        d.fire(3, n, SAFE),
        Err(Refusal::NotArmed),
        "door opening disarms"
    );
}

#[test]
fn interlock_open_while_armed_disarms_without_fault() {
    let (mut d, n) = armed(0);
    d.tick(5, DOOR_OPEN);
    assert_eq!((d.state(), d.fault()), (DegausserState::Idle, None));
    assert_eq!(d.fire(6, n, SAFE), Err(Refusal::NotArmed));
}

#[test]
fn interlock_trip_needs_the_local_reset_not_clear_fault() {
    let mut d = firing(0);
    d.tick(
        20,
        Inputs {
            interlock_closed: false,
            ..HOT
        },
    );
    assert!(!d.relay_on());
    assert_eq!(d.fault(), Some(FaultCode::InterlockOpened));
    d.tick(30, DOOR_OPEN);
    assert_eq!(d.clear_fault(40, SAFE), Err(Refusal::LocalResetRequired));
    assert_eq!(d.arm(41, SAFE), Err(Refusal::FaultLatched));
    local_reset(&mut d, 50, DOOR_OPEN);
    assert_eq!(
        d.fault(),
        Some(FaultCode::InterlockOpened),
        "no reset with the door open"
    );
    local_reset(&mut d, 60, SAFE);
    assert_eq!(d.fault(), None);
    assert_eq!(
        d.arm(70, SAFE),
        Err(Refusal::CoolingDown),
        "the reset does not skip the cooldown"
    );
    assert!(d.arm(30 + 1_000, SAFE).is_ok(), "first seen cold at 30");
}

#[test]
fn reset_acts_on_release_so_a_stuck_button_never_resets() {
    let mut d = Degausser::new(CFG, 5);
    d.tick(0, RESET_HELD);
    d.tick(
        1,
        Inputs {
            estop: true,
            ..RESET_HELD
        },
    );
    assert_eq!(d.fault(), Some(FaultCode::EStop));
    for t in 2..10 {
        d.tick(t, RESET_HELD);
    }
    assert_eq!(d.fault(), Some(FaultCode::EStop), "held button: no reset");
    d.tick(10, SAFE);
    assert_eq!(d.fault(), None, "reset on release");
}

/// safeguard: rule:fail-safe-relay
#[test]
fn estop_overrides_every_state_and_needs_local_reset() {
    for setup in 0..4 {
        let mut d = match setup {
            0 => Degausser::new(CFG, 5),
            1 => armed(0).0,
            2 => firing(0),
            _ => {
                let mut d = firing(0);
                d.tick(1_510, HOT);
                assert_eq!(d.state(), DegausserState::Cooldown);
                d
            }
        };
        d.tick(1_600, ESTOP);
        assert!(!d.relay_on());
        assert_eq!(d.fault(), Some(FaultCode::EStop), "setup {setup}");
        assert_eq!(d.arm(1_601, ESTOP), Err(Refusal::FaultLatched));
        assert_eq!(d.clear_fault(1_602, SAFE), Err(Refusal::LocalResetRequired));
        local_reset(&mut d, 1_603, ESTOP);
        assert!(d.fault().is_some(), "no reset while pressed");
    }
    let mut d = Degausser::new(CFG, 5);
    assert_eq!(d.arm(0, ESTOP), Err(Refusal::FaultLatched));
    let (mut d, n) = armed(0);
    assert_eq!(d.fire(1, n, ESTOP), Err(Refusal::FaultLatched));
    assert!(!d.relay_on());
}

/// safeguard: rule:fail-safe-relay
#[test]
fn link_loss_while_armed_disarms_and_while_firing_latches() {
    let (mut d, _) = armed(0);
    d.tick(600, NO_LINK);
    assert_eq!((d.state(), d.fault()), (DegausserState::Idle, None));
    let mut d = firing(0);
    d.tick(
        600,
        Inputs {
            link_ok: false,
            ..HOT
        },
    );
    assert!(!d.relay_on());
    assert_eq!(d.fault(), Some(FaultCode::LinkLost));
}

#[test]
fn clear_fault_needs_a_soft_fault_and_safe_inputs_and_keeps_the_cooldown() {
    let mut d = Degausser::new(CFG, 1);
    assert_eq!(d.clear_fault(0, SAFE), Err(Refusal::NoFault));
    let mut d = firing(0);
    d.abort();
    assert_eq!(d.clear_fault(20, DOOR_OPEN), Err(Refusal::InterlockOpen));
    d.tick(25, SAFE);
    assert_eq!(d.clear_fault(30, SAFE), Ok(()));
    assert_eq!(d.state(), DegausserState::Cooldown);
    assert_eq!(d.arm(40, SAFE), Err(Refusal::CoolingDown));
    assert!(d.arm(20 + 1_000, SAFE).is_ok());
}

/// safeguard: rule:fail-safe-relay
#[test]
fn clear_fault_never_ends_a_pulse() {
    let mut d = firing(0);
    assert_eq!(d.clear_fault(100, HOT), Err(Refusal::NoFault));
    assert!(d.relay_on());
}

#[test]
fn severe_faults_replace_lesser_ones() {
    let mut d = firing(0);
    d.tick(
        20,
        Inputs {
            interlock_closed: false,
            ..HOT
        },
    );
    d.tick(
        30,
        Inputs {
            estop: true,
            energized: true,
            ..SAFE
        },
    );
    assert_eq!(
        d.fault(),
        Some(FaultCode::InterlockOpened),
        "first trip stays"
    );
    let mut d = firing(0);
    d.abort();
    d.tick(20, ESTOP);
    assert_eq!(
        d.fault(),
        Some(FaultCode::EStop),
        "a trip replaces a soft fault, so ClearFault cannot hide it"
    );
}

/// safeguard: rule:fail-safe-relay
#[test]
fn welded_contact_latches_after_the_drop_out_time() {
    let mut d = firing(0);
    d.tick(1_510, HOT);
    assert!(!d.relay_on());
    d.tick(1_559, HOT);
    assert_eq!(d.fault(), None, "inside the drop-out time");
    d.tick(1_560, HOT);
    assert_eq!(d.fault(), Some(FaultCode::RelayWelded));
    assert_eq!(
        d.cycles(),
        0,
        "a cycle that never dropped out is not complete"
    );
    assert_eq!(d.clear_fault(1_600, HOT), Err(Refusal::LocalResetRequired));
    local_reset(&mut d, 1_700, HOT);
    assert_eq!(d.fault(), Some(FaultCode::RelayWelded), "still welded");
    local_reset(&mut d, 1_800, SAFE);
    assert_eq!(d.fault(), None);
    // At rest: energized without a command also latches.
    let mut d = Degausser::new(CFG, 2);
    d.tick(0, HOT);
    d.tick(49, HOT);
    assert_eq!(d.fault(), None);
    d.tick(50, HOT);
    assert_eq!(d.fault(), Some(FaultCode::RelayWelded));
}

#[test]
fn welded_relay_replaces_a_trip() {
    let mut d = firing(0);
    d.tick(
        20,
        Inputs {
            estop: true,
            energized: true,
            ..SAFE
        },
    );
    assert_eq!(d.fault(), Some(FaultCode::EStop));
    d.tick(
        80,
        Inputs {
            estop: true,
            energized: true,
            ..SAFE
        },
    );
    assert_eq!(d.fault(), Some(FaultCode::RelayWelded));
}

#[test]
fn no_pickup_or_lost_contact_latches_and_is_not_a_cycle() {
    let (mut d, n) = armed(0);
    d.fire(10, n, SAFE).unwrap();
    d.tick(59, SAFE);
    assert!(d.relay_on());
    d.tick(60, SAFE);
    assert!(!d.relay_on());
    assert_eq!(d.fault(), Some(FaultCode::RelayNoPickup));
    let mut d = firing(0);
    d.tick(500, SAFE);
    d.tick(550, SAFE);
    assert_eq!(
        d.fault(),
        Some(FaultCode::RelayNoPickup),
        "contact lost mid-pulse"
    );
    assert_eq!(d.cycles(), 0);
}

#[test]
fn detected_faults_latch_and_drop_the_relay() {
    let mut d = firing(0);
    d.detected(FaultCode::PulseLimit);
    assert!(!d.relay_on());
    assert_eq!(d.fault(), Some(FaultCode::PulseLimit));
    d.detected(FaultCode::OutputMismatch);
    assert_eq!(d.fault(), Some(FaultCode::OutputMismatch));
}

#[test]
fn clock_wraparound() {
    let start = u32::MAX - 100;
    let mut d = firing(start);
    d.tick(start.wrapping_add(10 + 1_499), HOT);
    assert!(d.relay_on());
    d.tick(start.wrapping_add(10 + 1_500), HOT);
    assert!(!d.relay_on());
    d.tick(start.wrapping_add(10 + 1_505), SAFE);
    assert_eq!(d.cycles(), 1);
}
