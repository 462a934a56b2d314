#!/usr/bin/env bash
# Runs a command and prints its wall time, peak RSS (VmHWM) and peak anonymous
# memory (the largest RssAnon seen, polled every 0.1 s) to stderr:
# a mapped model file is not the process's own memory, RssAnon is.
#   bench/peak_memory.sh layerlab-cli ppl MODEL --text FILE
set -euo pipefail
start=$(date +%s.%N)
"$@" &
pid=$!
peak_anon=0
peak_rss=0
while kill -0 "$pid" 2>/dev/null; do
  if [ -r "/proc/$pid/status" ]; then
    anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ -n "$anon" ] && [ "$anon" -gt "$peak_anon" ] && peak_anon=$anon
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak_rss" ] && peak_rss=$hwm
  fi
  sleep 0.1
done
set +e
wait "$pid"
rc=$?
set -e
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v r="$peak_rss" -v a="$peak_anon" -v rc="$rc" 'BEGIN {
  printf "peak_memory: %.2f s, peak RSS %.0f MiB, peak RssAnon %.0f MiB, exit %d\n", e - s, r / 1024, a / 1024, rc }' >&2
exit "$rc"
