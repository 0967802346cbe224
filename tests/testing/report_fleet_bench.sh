#!/bin/bash
# The fleet report's figures (issue 15.7), reproducibly:
#   1. a synthetic recording of NODES nodes x SECONDS s at 1 s (make_fleet_recording.py);
#   2. `memloadctl report` on it: wall, CPU and maximum RSS (/usr/bin/time), page size;
#   3. headless Chromium on the page, RUNS times, against a trivial page in the same minutes:
#      - layoutMs: from a script first in <head> to a forced layout of the whole page (parse,
#        style, layout); renderMs: to the first frame painted after it, when Chromium's
#        --dump-dom waited for it (under load it sometimes does not: then only layoutMs);
#      - screenshot: wall time of `chromium --headless --screenshot` (start-up, layout and
#        paint), for the page and for the trivial page (mostly the browser's start-up).
#   The load average is printed before each step: the machine is shared.
#
#   bazel build -c opt //controller:memloadctl
#   tests/testing/report_fleet_bench.sh bazel-bin/controller/memloadctl /tmp/fleet-bench
#
# Environment: NODES (1000), SECONDS_OF_RUN (3600), RUNS (5), CHROMIUM (/usr/bin/chromium).
set -euo pipefail

memloadctl=${1:?usage: report_fleet_bench.sh MEMLOADCTL WORKDIR}
dir=${2:?usage: report_fleet_bench.sh MEMLOADCTL WORKDIR}
nodes=${NODES:-1000}
seconds=${SECONDS_OF_RUN:-3600}
runs=${RUNS:-5}
chromium=${CHROMIUM:-/usr/bin/chromium}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
recording="$dir/fleet-${nodes}x${seconds}.jsonl"
page="$dir/fleet-${nodes}x${seconds}.html"

load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

if [[ ! -s "$recording" ]]; then
  load
  echo "generating $recording"
  python3 "$here/make_fleet_recording.py" --nodes="$nodes" --seconds="$seconds" --out="$recording"
fi
echo "recording: $(stat -L -c %s "$recording") bytes, $(wc -l < "$recording") lines"

load
/usr/bin/time -f "report: wall %e s, user %U s, sys %S s, max RSS %M KB" \
  "$memloadctl" report "$recording" --html="$page" > "$dir/report.out" 2> "$dir/report.err" || {
  cat "$dir/report.err"; exit 1; }
tail -1 "$dir/report.err"
head -1 "$dir/report.out"
echo "page: $(stat -c %s "$page") bytes"

[[ -x "$chromium" ]] || { echo "no $chromium: browser figures skipped"; exit 0; }

# Timing from inside the page: a script first in <head> notes the time; one last in <body>
# forces a layout, then waits for the next frame (painted) and writes what it measured into
# the DOM, which --dump-dom prints. renderMs excludes the browser's own start-up and
# navigation (sinceNavigationMs includes them).
head_probe='<script>window.benchStart=performance.now();</script>'
tail_probe='<script>(function(){document.body.getBoundingClientRect();const laid=performance.now();'\
'const p=document.createElement("pre");p.id="bench";const o={layoutMs:Math.round(laid-window.benchStart),'\
'elements:document.getElementsByTagName("*").length};p.textContent=JSON.stringify(o);document.body.appendChild(p);'\
'requestAnimationFrame(()=>setTimeout(()=>{o.renderMs=Math.round(performance.now()-window.benchStart);'\
'o.sinceNavigationMs=Math.round(performance.now());p.textContent=JSON.stringify(o);},0));})();</script>'
timed="$dir/timed.html"
trivial="$dir/trivial.html"
sed -e "s#<head>#<head>${head_probe}#" -e "s#</body>#${tail_probe}</body>#" "$page" > "$timed"
echo "<!DOCTYPE html><html><head>${head_probe}</head><body><p>trivial</p>${tail_probe}</body></html>" > "$trivial"

chrome() {  # chrome WIDTH OUTPUT-FLAG URL
  "$chromium" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$dir/chromium-profile" --window-size="$1,900" "$2" "file://$3" 2>/dev/null
}

for i in $(seq 1 "$runs"); do
  load
  for which in "$timed" "$trivial"; do
    name=$(basename "$which" .html)
    # --dump-dom may print the DOM before the painted frame's callback ran (then renderMs
    # is missing; layoutMs is always there), or print nothing when Chromium fails: retried.
    layout=""
    for try in 1 2 3; do
      layout=$(chrome 1280 --dump-dom "$which" | sed -n 's#.*<pre id="bench">\(.*\)</pre>.*#\1#p')
      [[ -n "$layout" ]] && break
    done
    start=$(date +%s%N)
    (cd "$dir" && chrome 1280 --screenshot="$dir/$name.png" "$which" > /dev/null)
    end=$(date +%s%N)
    echo "run $i $name: $layout, screenshot wall $(( (end - start) / 1000000 )) ms"
  done
done
