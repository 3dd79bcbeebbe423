# Sourced by the shell-level tests (tests/apps/*_test.sh).
#   check "what" command...   runs the command; records a failure without stopping the test
#   finish                    ends the test: exit 1 if any check failed
#   losses METRICS.jsonl      "step loss" per line; for a step logged twice (a resumed run
#                             repeats steps), the last record wins

failures=0

check() {
  local what=$1; shift
  if "$@"; then echo "ok   - $what"; else echo "FAIL - $what"; failures=$((failures + 1)); fi
}

finish() {
  if [ "$failures" -ne 0 ]; then echo "$failures check(s) failed"; exit 1; fi
  exit 0
}

losses() {
  awk -F'[:,]' '/"event":"step"/ { l[$4] = $6; if ($4 > n) n = $4 }
    END { for (i = 1; i <= n; i++) if (i in l) print i, l[i] }' "$1"
}
