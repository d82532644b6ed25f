#!/usr/bin/env bash
# Fuzz the HTTPS API against its own OpenAPI document with schemathesis
# (https://schemathesis.io): start `lethe serve` on loopback in a temporary
# directory (one `ask` bay over loop devices, no drive in it), add an admin
# user, log in, create an admin API token, and run every check of
# `schemathesis run` on every operation with that token. Exits non-zero on
# any failure (a 5xx, a response the document does not allow, ...).
#
# Run by hand as root (the daemon's worker runs as root and drops its front
# to the `lethe` user; hw-tests/setup.sh creates it), not in CI:
#   bash hw-tests/schemathesis.sh [extra `schemathesis run` options]
# e.g. `--max-examples 20` or `--seed 1`. SCHEMATHESIS=/path/to/schemathesis
# picks the binary; without it and without one on PATH, schemathesis is
# installed into a venv under ~/.cache/lethe-schemathesis. LETHE_ST_KEEP=1
# keeps the temporary directory (daemon log, reports) for a look afterwards.
#
# Every operation is tested, logout included: with a token, the
# session-only routes (session, reauth, password, logout, break-glass entry)
# answer 401 and the actions that need a re-authenticated session (users,
# tokens, keys) answer 403, so they are tested for their refusals
# (schemathesis warns that they "returned only 401/403") and cannot end
# the run's own token.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the daemon's worker needs it" >&2; exit 1; }
getent passwd lethe >/dev/null || { echo "the front's system user \`lethe\` is missing: run hw-tests/setup.sh" >&2; exit 1; }

ST_VERSION=4.32.5
if [ -n "${SCHEMATHESIS:-}" ]; then
    ST="$SCHEMATHESIS"
elif command -v schemathesis >/dev/null; then
    ST=$(command -v schemathesis)
else
    venv="${XDG_CACHE_HOME:-$HOME/.cache}/lethe-schemathesis"
    if [ ! -x "$venv/bin/schemathesis" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q "schemathesis==$ST_VERSION"
    fi
    ST="$venv/bin/schemathesis"
fi
echo "== $("$ST" --version)"

cargo build -q -p lethe-cli
LETHE="${CARGO_TARGET_DIR:-$PWD/target}/debug/lethe"

base=/tmp
[ -d /dev/shm ] && base=/dev/shm
WORK=$(mktemp -d "$base/lethe-st-XXXXXX")
chmod 755 "$WORK"
mkdir "$WORK/bays"
PID=""
cleanup() {
    if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
        kill -TERM "$PID" 2>/dev/null || true
        # Until it has exited (a zombie not yet waited for has).
        for _ in $(seq 300); do
            case "$(awk '{print $3}' "/proc/$PID/stat" 2>/dev/null)" in
            '' | Z | X) break ;;
            esac
            sleep 0.1
        done
        kill -KILL "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    if [ "${LETHE_ST_KEEP:-0}" = 1 ]; then
        echo "kept $WORK (daemon log: $WORK/serve.log)"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# A free loopback port below the ephemeral range.
PORT=$(python3 -c '
import random, socket
while True:
    p = random.randint(20000, 31999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError:
        pass
    finally:
        s.close()')

cat >"$WORK/lethe.toml" <<EOF
[site]
operator_id = "tech-7"
operator_name = "Test Technician"

[server]
listen = "127.0.0.1:$PORT"

[auth.argon2]
memory_kib = 8192
iterations = 1
parallelism = 1

[[bay]]
name = "loops"
match = ["loop:$WORK/bays/drive-*.img"]
policy = "ask"
level = "clear"
verify = "full"
EOF

lethe() {
    env -u LETHE_STATE_DIR -u LETHE_OPERATOR_NAME -u SUDO_USER \
        LETHE_OPERATOR_ID=test-operator LETHE_CONFIG=/dev/null \
        "$LETHE" --state-dir "$WORK/state" "$@"
}

echo "== lethe serve on 127.0.0.1:$PORT ($WORK)"
# Not through the function: `$!` must be the daemon itself (env execs
# it), not a subshell that a signal would leave it behind.
env -u LETHE_STATE_DIR -u LETHE_OPERATOR_NAME -u SUDO_USER \
    LETHE_OPERATOR_ID=test-operator LETHE_CONFIG=/dev/null LETHE_LOG=info \
    "$LETHE" --state-dir "$WORK/state" serve --config "$WORK/lethe.toml" \
    --runtime-dir "$WORK/run" >/dev/null 2>"$WORK/serve.log" &
PID=$!
for i in $(seq 300); do
    curl -ks -o /dev/null "https://127.0.0.1:$PORT/healthz" && break
    kill -0 "$PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; echo "lethe serve died" >&2; exit 1; }
    [ "$i" = 300 ] && { cat "$WORK/serve.log" >&2; echo "the HTTPS API did not come up" >&2; exit 1; }
    sleep 0.1
done

echo "== admin user and API token"
PASSWORD="Correct-Horse-Battery-Staple-$RANDOM$RANDOM"
printf '%s\n' "$PASSWORD" >"$WORK/admin.pw"
lethe user add st-admin --role admin --json --password-file "$WORK/admin.pw" \
    --runtime-dir "$WORK/run" >"$WORK/user.json"
TOKEN=$(PORT="$PORT" PASSWORD="$PASSWORD" python3 - "$WORK/user.json" <<'EOF'
import base64, hashlib, hmac, http.client, json, os, ssl, struct, sys, time, urllib.parse

port = int(os.environ["PORT"])
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
v = json.loads(lines[-1])
uri = v.get("otpauth_uri") or v["enrolment"]["otpauth_uri"]
secret = urllib.parse.parse_qs(urllib.parse.urlparse(uri).query)["secret"][0]
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
used = set()

def totp():
    # A code of a time step not used yet (a code is good once).
    while True:
        step = int(time.time()) // 30
        if step not in used:
            used.add(step)
            break
        time.sleep(1)
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = h[-1] & 15
    n = (struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000
    return f"{n:06d}"

ctx = ssl._create_unverified_context()
cookie = None

def call(method, path, body):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    h = {"Content-Type": "application/json"}
    if cookie:
        h["Cookie"] = cookie
    c.request(method, path, json.dumps(body), h)
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        sys.exit(f"{method} {path}: {r.status} {data!r}")
    return r, json.loads(data) if data else None

password = os.environ["PASSWORD"]
r, _ = call("POST", "/api/v1/login", {"username": "st-admin", "password": password, "totp": totp()})
cookie = r.getheader("Set-Cookie").split(";")[0]
call("POST", "/api/v1/reauth", {"password": password, "totp": totp()})
_, t = call("POST", "/api/v1/tokens", {"label": "schemathesis", "role": "admin", "lifetime_secs": 3600})
print(t["secret"])
EOF
)

# The token goes to the document's `token` scheme (not a bare
# `--header`): schemathesis then knows the request's credentials, and its
# `ignored_auth` check probes every operation without them and with bad ones
# (with a bare header it mistakes a generated session cookie beside the
# token for the credential in use).
cat >"$WORK/schemathesis.toml" <<'EOF'
[auth.openapi.token]
bearer = "${LETHE_ST_TOKEN}"
EOF

echo "== schemathesis"
rc=0
# From the temporary directory: schemathesis keeps a cache
# (`.schemathesis/`) in its working directory.
(cd "$WORK" && LETHE_ST_TOKEN="$TOKEN" "$ST" --config-file "$WORK/schemathesis.toml" \
    run "https://127.0.0.1:$PORT/api/v1/openapi.json" \
    --url "https://127.0.0.1:$PORT" \
    --tls-verify false \
    --checks all \
    --report junit,ndjson --report-dir "$WORK/report" \
    "$@") || rc=$?
if [ "$rc" != 0 ]; then
    echo "schemathesis failed ($rc); the daemon's log: $WORK/serve.log (LETHE_ST_KEEP=1 keeps it)" >&2
fi
exit "$rc"
