# metrics.jsonl files -> medians (docs/benchmarks.md, checkpoint cost): blocked ms per save, write ms per save, step ms with a write
# in flight (between a save and its "written" record) and without; steps 1-10 are warm-up.
function val(key,   m) { return match($0, "\"" key "\":[0-9.e+-]+") ? substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0 : -1 }
function median(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t } return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
FNR == 1 { open = 0 }
/"event":"checkpoint",/ { b[++nb] = val("blocked_ms"); open = 1 }
/"event":"checkpoint_written"/ { w[++nw] = val("write_ms"); open = 0 }
/"event":"step"/ { if (val("step") > 10) { if (open) f[++nf] = val("ms_per_step"); else q[++nq] = val("ms_per_step") } }
END { printf "blocked %.1f ms | write %.1f ms | step in flight %.1f ms (%d) | step otherwise %.1f ms (%d)\n", median(b, nb), nw ? median(w, nw) : 0, nf ? median(f, nf) : 0, nf, median(q, nq), nq }
