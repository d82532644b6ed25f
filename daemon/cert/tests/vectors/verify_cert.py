#!/usr/bin/env python3
"""Check Lethe certificates (lethe-certificate/1) without Lethe: Python 3.8+, standard library only.

usage: verify_cert.py APPLIANCE.pub CERT.json [CERT.json ...]
Prints VALID or INVALID with the reason for each file; exits 0 only if every file is valid.
A certificate that carries an audit-log proof ("audit") is valid only if the proof verifies too.
"""
import base64, hashlib, json, os, re, stat, sys

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
MAX_BYTES = 64 << 20


class Bad(Exception):
    pass


def check(ok, why):
    if not ok:
        raise Bad(why)


# --- Ed25519 (RFC 8032), strict: canonical encodings, no small-order points, S < L ---
def add(a, b):
    (x1, y1, z1, t1), (x2, y2, z2, t2) = a, b
    e, f = (y1 - x1) * (y2 - x2) % P, (y1 + x1) * (y2 + x2) % P
    g, h = 2 * D * t1 * t2 % P, 2 * z1 * z2 % P
    e, f, g, h = f - e, h - g, h + g, f + e
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def mul(s, pt):
    q = (0, 1, 1, 0)
    while s:
        if s & 1:
            q = add(q, pt)
        pt, s = add(pt, pt), s >> 1
    return q


def encode(pt):
    x, y, z, _ = pt
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def decode(b, what):
    n = int.from_bytes(b, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    check(y < P, what + " is not a canonical encoding")
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P:
        x = x * SQRT_M1 % P
    check((v * x * x - u) % P == 0, what + " is not a point on the curve")
    check(not (x == 0 and sign), what + " is not a canonical encoding")
    if x & 1 != sign:
        x = P - x
    pt = (x, y, 1, x * y % P)
    check(encode(mul(8, pt)) != encode((0, 1, 1, 0)), what + " is a small-order point")
    return pt


B = decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"), "base point")


def ed25519_verify(pub, sig, msg):
    a, r = decode(pub, "public_key"), decode(sig[:32], "signature R")
    s = int.from_bytes(sig[32:], "little")
    check(s < L, "signature S is not below the group order L")
    k = int.from_bytes(hashlib.sha512(sig[:32] + pub + msg).digest(), "little") % L
    check(encode(mul(s, B)) == encode(add(r, mul(k, a))), "INVALID signature: the content does not match its signature")


# --- strict JSON and the field list of docs/certificate.md section 2 ---
def no_dupes(pairs):
    keys = [k for k, _ in pairs]
    check(len(keys) == len(set(keys)), "duplicate key")
    return dict(pairs)


def no_float(text):
    raise Bad("number %s is not an integer" % text)


S, U32, U64, BOOL = "str", "u32", "u64", "bool"
ENUM = lambda *v: ("enum", v)
OPT = lambda t: ("opt", t)  # null or t
OMIT = lambda t: ("omit", t)  # absent or t, never null
LIST = lambda t: ("list", t)
CAT = ENUM("clear", "purge", "destroy")
HEALTH = {"source": ENUM("ata_smart", "nvme_smart_log", "scsi_log_pages"),
          "assessment": ENUM("passed", "warning", "failing", "unknown"),
          "power_on_hours": OPT(U64), "power_cycles": OPT(U64), "reallocated_sectors": OPT(U64),
          "pending_sectors": OPT(U64), "uncorrectable_errors": OPT(U64), "percentage_used": OPT(U32),
          "available_spare_percent": OPT(U32), "temperature_celsius": OPT(U32), "notes": LIST(S)}
BODY = {
    "format": S, "id": S, "issued_at": S,
    "appliance": {"id": S, "hostname": S, "location": OPT(S)},
    "tool": {"name": S, "version": S},
    "device": {"manufacturer": OPT(S), "model": S, "serial": S, "wwn": S, "firmware": S,
               "capacity_bytes": U64, "logical_sector_size": U32, "physical_sector_size": U32,
               "media_type": ENUM("magnetic", "flash", "hybrid", "unknown"), "transport": S, "path": S,
               "stable_id": S, "hidden_areas": OPT(S), "health": OMIT(HEALTH)},
    "method": {"category": CAT, "technique": S, "pattern": S, "passes": U32, "final_blank": BOOL,
               "standard": S, "reason": S, "requested_level": OMIT(CAT),
               "drive_command": OMIT({"name": S, "completion_status": S, "commands": LIST(S),
                                         "erased_namespaces": OMIT(LIST(S))})},
    "verification": {"method": ENUM("full", "sample", "controller_confirmed", "none"), "coverage_ppm": U32,
                     "bytes_verified": U64, "sample_seed": OPT(S), "result": ENUM("pass", "fail", "not_performed"),
                     "detail": OMIT(S), "attestation": OMIT({"attested_by": S, "verified": LIST(S), "attested": LIST(S)})},
    "operator": {"id": S, "name": S},
    "timing": {"started_at": S, "ended_at": S, "duration_seconds": U64},
    "customer": OPT(S), "asset_tag": OPT(S), "media_source": OPT(S),
    "destination": OPT(ENUM("reuse", "resale", "donation", "return_to_lessor", "return_to_owner", "recycle", "destroy", "storage")),
    "result": {"status": ENUM("pass", "clear_only", "unverified", "fail", "incomplete", "not_started"),
               "bytes_written": U64, "failed_ranges": LIST({"offset": U64, "length": U64}), "messages": LIST(S)},
    "events": LIST({"at": S, "kind": S, "detail": S}),
}


def shape(v, t, where):
    if isinstance(t, dict):
        check(isinstance(v, dict), where + " is not an object")
        for k in v:
            check(k in t, "unknown field " + where + "." + k)
        for k, sub in t.items():
            if k not in v:
                check(isinstance(sub, tuple) and sub[0] == "omit", "missing field " + where + "." + k)
            else:
                shape(v[k], sub[1] if isinstance(sub, tuple) and sub[0] == "omit" else sub, where + "." + k)
    elif isinstance(t, tuple) and t[0] == "opt":
        if v is not None:
            shape(v, t[1], where)
    elif isinstance(t, tuple) and t[0] == "list":
        check(isinstance(v, list), where + " is not an array")
        for i, item in enumerate(v):
            shape(item, t[1], "%s[%d]" % (where, i))
    elif isinstance(t, tuple):
        check(v in t[1], where + " is not one of " + ", ".join(t[1]))
    elif t == S:
        check(isinstance(v, str), where + " is not a string")
    elif t == BOOL:
        check(isinstance(v, bool), where + " is not a boolean")
    else:
        check(type(v) is int and 0 <= v < 2 ** (32 if t == U32 else 64), where + " is not a " + t)


TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?Z\Z")


def real_time(s):
    m = TIME.match(s)
    if not m:
        return False
    y, mo, d, h, mi, se = (int(g) for g in m.groups()[:6])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= mo <= 12 and 1 <= d <= days[mo - 1] and h <= 23 and mi <= 59 and se <= 60


def rules(c):
    check(c["format"] == "lethe-certificate/1", "unsupported certificate format")
    check(re.fullmatch(r"[A-Za-z0-9._-]{1,128}", c["id"]) and not c["id"].startswith("."), "id is not valid")
    for name, t in [("issued_at", c["issued_at"]), ("timing.started_at", c["timing"]["started_at"]),
                    ("timing.ended_at", c["timing"]["ended_at"])] + [("events[].at", e["at"]) for e in c["events"]]:
        check(real_time(t), name + " is not an RFC 3339 UTC time")
    v, st = c["verification"], c["result"]["status"]
    seed = v["sample_seed"]
    check(seed is None or re.fullmatch(r"[0-9a-f]+", seed), "sample_seed is not lowercase hex")
    check(v["coverage_ppm"] <= 1000000, "coverage_ppm is above 1000000")
    check((v["method"] == "sample") == (seed is not None), "sample_seed must be set for sampled verification and only then")
    check(v["result"] == "not_performed" or v["method"] != "none", "a verification result without a method")
    rank = {"clear": 0, "purge": 1, "destroy": 2}
    lower = rank.get(c["method"].get("requested_level"), -1) > rank[c["method"]["category"]]
    passed = v["result"] == "pass"
    check(st != "pass" or (passed and not lower), "status pass is not supported by its evidence")
    check(st != "clear_only" or (passed and lower and c["method"]["category"] == "clear"), "status clear_only is not supported")
    check(st != "unverified" or v["result"] == "not_performed", "status unverified with a verification result")
    check(st != "not_started" or (c["result"]["bytes_written"] == 0 and v["result"] == "not_performed"), "status not_started with work done")


# --- the optional audit-log proof (docs/audit-log.md): RFC 6962 inclusion under a signed checkpoint ---
def b64(text, n, what):
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise Bad(what + " is not base64")
    check(base64.b64encode(raw).decode() == text and (n is None or len(raw) == n), what + " is not canonical base64")
    return raw


def checkpoint(note, trusted_pub):
    text, sep, sigs = note.partition("\n\n")
    lines = text.split("\n")
    check(sep and len(lines) >= 3 and sigs.endswith("\n"), "audit checkpoint is not a signed note")
    origin, size, root = lines[0], lines[1], b64(lines[2], 32, "audit checkpoint root")
    check(re.fullmatch(r"0|[1-9][0-9]*", size), "audit checkpoint size is not a decimal number")
    key_id = hashlib.sha256(origin.encode() + b"\n\x01" + trusted_pub).digest()[:4]
    signed = False
    for line in sigs[:-1].split("\n"):
        name, _, sig = line[2:].rpartition(" ")
        check(line.startswith("\u2014 ") and name, "audit checkpoint signature line is malformed")
        sig = b64(sig, None, "audit checkpoint signature")
        if name == origin and sig[:4] == key_id:
            check(len(sig) == 68, "audit checkpoint signature is not 4 + 64 bytes")
            ed25519_verify(trusted_pub, sig[4:], (text + "\n").encode())
            signed = True
    check(signed, "audit checkpoint is not signed by the trusted key")
    return int(size), root


def audit(a, cert, canon, trusted_pub):
    shape(a, {"checkpoint": S, "index": U64, "leaf": S, "proof": LIST(S)}, "audit")
    size, root = checkpoint(a["checkpoint"], trusted_pub)
    prefix, _, text = a["leaf"].partition("\n")
    check(prefix == "lethe-audit-v1", "audit leaf is not a lethe-audit-v1 entry")
    try:
        e = json.loads(text, object_pairs_hook=no_dupes, parse_float=no_float, parse_constant=no_float)
    except ValueError as err:
        raise Bad("audit leaf is not JSON: %s" % err)
    check(isinstance(e, dict) and canon(e) == text.encode(), "audit leaf is not canonical")
    check(e.get("seq") == a["index"], "audit leaf is not entry %d" % a["index"])
    check(e.get("action") == "certificate.issued" and e.get("entity") == "certificate"
          and e.get("record_id") == cert["id"], "audit entry is not this certificate's issue record")
    check((e.get("detail") or {}).get("body_sha256") == hashlib.sha256(canon(cert)).hexdigest(),
          "audit entry records another certificate body")
    h = lambda b: hashlib.sha256(b).digest()
    r, fn, sn = h(b"\x00" + a["leaf"].encode()), a["index"], size - 1
    check(fn < size, "audit index is outside the checkpoint")
    for p in a["proof"]:
        p = b64(p, 32, "audit proof element")
        check(sn > 0, "audit proof is too long")
        if fn & 1 or fn == sn:
            r = h(b"\x01" + p + r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = h(b"\x01" + r + p)
        fn, sn = fn >> 1, sn >> 1
    check(sn == 0 and r == root, "audit proof does not lead to the checkpoint's root")
    return a["index"], size


def verify(path, trusted_pub):
    st = os.stat(path)
    check(stat.S_ISREG(st.st_mode), "not a regular file")
    check(st.st_size <= MAX_BYTES, "larger than any certificate")
    with open(path, "rb") as f:
        raw = f.read(MAX_BYTES + 1)
    try:
        doc = json.loads(raw.decode("utf-8"), object_pairs_hook=no_dupes, parse_float=no_float, parse_constant=no_float)
    except ValueError as e:
        raise Bad("not JSON: %s" % e)
    check(isinstance(doc, dict) and sorted(doc) in (["certificate", "signature"], ["audit", "certificate", "signature"]),
          "not a Lethe certificate")
    canon = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    shape(doc["certificate"], BODY, "certificate")
    shape(doc["signature"], {"algorithm": S, "key_id": S, "public_key": S, "value": S}, "signature")
    check(doc["signature"]["algorithm"] == "ed25519", "unsupported signature algorithm")
    rules(doc["certificate"])
    check(raw == canon(doc) + b"\n", "the file was modified or re-formatted after signing")
    sig = doc["signature"]
    check(re.fullmatch(r"[0-9a-f]{64}", sig["public_key"]), "public_key is not 64 lowercase hex digits")
    pub = bytes.fromhex(sig["public_key"])
    check(sig["key_id"] == hashlib.sha256(pub).hexdigest()[:16], "key_id does not belong to public_key")
    try:
        value = base64.b64decode(sig["value"], validate=True)
    except ValueError:
        raise Bad("signature value is not base64")
    check(len(value) == 64 and base64.b64encode(value).decode() == sig["value"], "signature value is not canonical base64 of 64 bytes")
    ed25519_verify(pub, value, b"lethe-certificate-v1\n" + canon(doc["certificate"]))
    check(pub == trusted_pub, "signed by another key: key_id " + sig["key_id"])
    proof = audit(doc["audit"], doc["certificate"], canon, trusted_pub) if "audit" in doc else None
    return doc["certificate"], proof


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    trusted = bytes.fromhex(open(argv[1]).read().strip())
    ok = True
    for path in argv[2:]:
        try:
            c, proof = verify(path, trusted)
            print("VALID", c["id"], c["result"]["status"], *(["audit-entry", proof[0], "of", proof[1]] if proof else []))
        except (Bad, OSError, ValueError, KeyError, TypeError) as e:
            print("INVALID", path + ":", e)
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(sys.argv)
