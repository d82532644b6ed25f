import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
raw = open(sys.argv[1], "rb").read()
doc = json.loads(raw)
canon = lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
assert raw == canon(doc) + b"\n", "not canonical: the file was modified or re-formatted"
sig, pub = doc["signature"], bytes.fromhex(open(sys.argv[2]).read().strip())
assert sig["public_key"] == pub.hex(), "signed by another key"
msg = b"lethe-certificate-v1\n" + canon(doc["certificate"])
Ed25519PublicKey.from_public_bytes(pub).verify(base64.b64decode(sig["value"], validate=True), msg)
print("VALID", doc["certificate"]["id"], doc["certificate"]["result"]["status"])
