# Sourced by the shell-level tests (tests/apps/*_test.sh).
#   scratch_test SRC BUILD    sets src, build and trainer ($build/bin/trainer), and makes
#                             work, a temporary folder removed at exit, the current directory
#   check "what" command...   runs the command; records a failure without stopping the test
#   finish                    ends the test: exit 1 if any check failed
#   losses METRICS.jsonl      "step loss" per line; for a step logged twice (a resumed run
#                             repeats steps), the last record wins
#   close_losses A B FROM TO TOL
#                             steps FROM..TO of two `losses` lists agree within TOL relative
#                             (every step present in both)
#   tiny_gpt_recipe FILE      writes the tiny-gpt-sized model, data (under $work/data) and
#                             optimizer the multi-process tests share, then stdin's sections

failures=0

scratch_test() {
  src=$1
  build=$2
  trainer="$build/bin/trainer"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cd "$work" || exit 1
}

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

close_losses() {
  awk -v from="$3" -v to="$4" -v tol="$5" 'NR == FNR { a[$1] = $2; next }
    $1 >= from && $1 <= to { n++; d = a[$1] - $2; if (d < 0) d = -d; s = $2 < 0 ? -$2 : $2;
      if (!($1 in a) || d > tol * s) { print "step " $1 ": " a[$1] " vs " $2; bad = 1 } }
    END { exit (bad || n != to - from + 1) }' "$1" "$2"
}

tiny_gpt_recipe() {
  {
    cat <<YAML
model: {plugin: gpt, n_layer: 2, n_head: 2, d_model: 32, vocab: 48, seq_len: 16, dropout: 0.0}
data:
  train: $work/data/train.bin
  val: $work/data/val.bin
  synth: {vocab: 48, branching: 3, train_tokens: 20000, val_tokens: 4000, seed: 7}
optimizer: {plugin: adamw, lr: 3.0e-3, warmup_steps: 1}
YAML
    cat
  } > "$1"
}
