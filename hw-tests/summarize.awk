# Count the tests of a `cargo test … -- --show-output` log honestly.
#
# libtest counts a test that returned early as passed. Lethe's tests that
# cannot run their tier say so on a line of their output that starts with
# "SKIPPED:" (or "SKIPPED (opt-in):" for a tier run only on request, the real
# drives). With --show-output libtest prints each test's captured output under
# "---- NAME stdout ----" after the binary has run; this script attributes
# every marker line to its test and binary, counts each test once, and moves
# it from "passed" to "skipped". The closing line is the last line printed.
#
# Output: one "skipped: BINARY: TEST: REASON" line per skipped test, then
#   workspace: P passed, F failed, S skipped (O opt-in not requested, I ignored)
# and the exit status is 0. Set ci=1 (awk -v ci=1) to exit 1 when S > 0.

/^ *Running / {
    bin = $0; sub(/.*\(/, "", bin); sub(/\).*/, "", bin); sub(/.*\//, "", bin); sub(/-[0-9a-f]+$/, "", bin)
    sect = ""; next
}
/^ *Doc-tests / { bin = "doc:" $2; sect = ""; next }
/^---- .* stdout ----$/ { sect = $2; next }
/^test result:/ { passed += $4; failed += $6; ignored += $8; sect = ""; next }
/^(failures|successes):$/ { next }
sect != "" && /^SKIPPED/ {
    key = bin ": " sect
    if (key in seen) next
    seen[key] = 1
    reason = $0; sub(/^SKIPPED( \(opt-in\))?: */, "", reason)
    if ($0 ~ /^SKIPPED \(opt-in\)/) { optin++; print "opt-in, not run: " key ": " reason }
    else { skipped++; print "skipped: " key ": " reason }
}
END {
    printf "workspace: %d passed, %d failed, %d skipped (%d opt-in not requested, %d ignored)\n",
        passed - skipped - optin, failed, skipped, optin + 0, ignored
    if (ci && skipped > 0) exit 1
}
