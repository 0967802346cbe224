#!/usr/bin/env python3
"""Turns the raw lines bazel/bench.sh gathered into the README's allocator tables.

Input (stdin): lines "ALLOC<TAB>ROUND<TAB>line", where line is either a google-benchmark
console line ("BM_x  12.3 ns  4.56 ns  1000 ...") or a churn_benchmark line
("churn<TAB>size=... gib_per_s=... cpu_s_per_gib=..."). Output: markdown tables of medians
over the rounds, with ratios against glibc measured in the same run.

With --summary=FANOUT_OUTPUT: instead, ONE table of every goal (README "Performance"),
from the same input plus fanout_benchmark's output.

The 64 KiB churn goal has rounds of its own (ALLOC "goal64-baseline": the code when issue
16 was filed; "goal64-memload": this code under memload-worker's tcmalloc), interleaved in
one run. Its statistic is the median over the rounds of the per-round ratio (bytes per CPU
second, baseline CPU s/GiB ÷ memload's in the same round), shown with its spread; the ratio
of each side's lowest CPU s/GiB (its least disturbed round) is the cross-check.
With --goal64 only that comparison's table is printed.
"""
import collections
import re
import statistics
import sys

BM = re.compile(r"^(BM_\S+?)\s+([\d.]+) (ns|us|ms)\s+([\d.]+) (ns|us|ms)\s+\d+")
UNIT_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6}


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    summary = None
    for arg in sys.argv[1:]:
        if arg.startswith("--summary="):
            summary = arg.split("=", 1)[1]
    order = []
    bm = collections.defaultdict(list)  # (alloc, name) -> [cpu ns]
    churn = collections.defaultdict(lambda: collections.defaultdict(list))
    rss = collections.defaultdict(lambda: collections.defaultdict(list))
    peers = collections.defaultdict(lambda: collections.defaultdict(list))
    floor = collections.defaultdict(lambda: collections.defaultdict(list))  # touch only
    # The 64 KiB goal's rounds: alloc -> key -> {round: (GiB/s, CPU s/GiB)}; the touch alone
    # (key (size, window, 0)) as (nan, CPU s/GiB).
    goal = collections.defaultdict(lambda: collections.defaultdict(dict))
    for raw in sys.stdin:
        parts = raw.rstrip("\n").split("\t", 2)
        if len(parts) < 3:
            continue
        alloc, round_, line = parts
        if alloc not in order and not alloc.startswith("goal64-"):
            order.append(alloc)
        m = BM.match(line)
        if m:
            name = m.group(1)
            # CPU time in ns, except the plan's real-time figure (wall time, per run).
            value = (float(m.group(2)) * UNIT_NS[m.group(3)] if name.endswith("/real_time")
                     else float(m.group(4)) * UNIT_NS[m.group(5)])
            bm[(alloc, name)].append(value)
            continue
        fields = line.split("\t", 1)
        if len(fields) != 2:
            continue
        kv = dict(f.split("=", 1) for f in fields[1].split())
        if alloc.startswith("goal64-"):
            if fields[0] in ("churn", "churn_floor"):
                key = (int(kv["size"]), int(kv["window"]), int(kv.get("workers", 0)))
                goal[alloc][key][round_] = (float(kv.get("gib_per_s", "nan")),
                                            float(kv["cpu_s_per_gib"]))
            continue
        if fields[0] == "churn":
            key = (int(kv["size"]), int(kv["window"]), int(kv["workers"]))
            churn[alloc][key].append((float(kv["gib_per_s"]), float(kv["cpu_s_per_gib"])))
        elif fields[0] == "churn_floor":
            floor[alloc][(int(kv["size"]), int(kv["window"]))].append(float(kv["cpu_s_per_gib"]))
        elif fields[0] == "rss":
            key = int(kv["size"])
            rss[alloc][key].append((float(kv["overhead_mib"]), float(kv["kept_after_release_mib"])))
        elif fields[0] == "peers":
            key = (kv["who"], int(kv["size"]))
            peers[alloc][key].append((float(kv["gib_per_s"]), float(kv["cpu_s_per_gib"]),
                                      float(kv["gib_per_cpu_s"])))

    if summary is not None:
        print_summary(bm, churn, peers, summary, floor, goal)
        return
    if "--goal64" in sys.argv[1:]:
        print_goal64(goal)
        return

    if bm:
        print("\n1-byte paths, CPU ns per op (median of the rounds). Ratios: against glibc's own "
              "malloc(1)+free pair (from libc.so.6) timed in the same process, "
              "median of the per-round ratios\n")
        print("| allocator | glibc pair (same process) | raw malloc+free | BM_Stream1Byte "
              "| ÷ glibc pair (goal ≤ 0.65) | BM_Retain1Byte | ÷ glibc pair (goal ≤ 1.3) "
              "| BM_StreamPlan1Byte ns/block |")
        print("|---|---|---|---|---|---|---|---|")
        for alloc in order:
            if (alloc, "BM_Stream1Byte/touch_page:0") not in bm:
                continue  # No 1-byte figures (its core step was stopped).
            glibc = bm[(alloc, "BM_GlibcRawMalloc1Byte")]
            rawp = bm[(alloc, "BM_RawMalloc1Byte")]
            stream = bm[(alloc, "BM_Stream1Byte/touch_page:0")]
            retain = bm[(alloc, "BM_Retain1Byte")]
            plan = median(bm[(alloc, "BM_StreamPlan1Byte/real_time")])
            print("| %s | %.2f | %.2f | %.2f | %.2f× | %.2f | %.2f× | %.1f |" % (
                alloc, median(glibc), median(rawp), median(stream),
                median([x / g for x, g in zip(stream, glibc)]), median(retain),
                median([x / g for x, g in zip(retain, glibc)]),
                plan / (1 << 20) if plan == plan else float("nan")))

    if churn:
        keys = sorted({k for a in churn for k in churn[a]})
        print("\nStreaming churn, touch page, backing malloc, steady state: GiB/s (wall) / "
              "CPU s per GiB (medians); × = GiB per CPU second against glibc's\n")
        print("| block | window | workers | " + " | ".join(order) + " |")
        print("|---|---|---|" + "---|" * len(order))
        for key in keys:
            base = churn["glibc"].get(key)
            base_cpu = median([c for _, c in base]) if base else float("nan")
            cells = []
            for alloc in order:
                runs = churn[alloc].get(key, [])
                if not runs:
                    cells.append("—")
                    continue
                gbs = median([g for g, _ in runs])
                cpu = median([c for _, c in runs])
                cells.append("%.1f / %.4f (%.2f×)" % (gbs, cpu, base_cpu / cpu if cpu else 0))
            size = "%d KiB" % (key[0] // 1024) if key[0] < (1 << 20) else "%d MiB" % (key[0] >> 20)
            print("| %s | %d | %d | %s |" % (size, key[1], key[2], " | ".join(cells)))
        for key in sorted({k for a in floor for k in floor[a]}):
            base = median(floor["glibc"].get(key, []))
            cells = []
            for alloc in order:
                if not floor[alloc].get(key):
                    cells.append("—")
                    continue
                cpu = median(floor[alloc].get(key, []))
                cells.append("— / %.4f (%.2f×)" % (cpu, base / cpu if cpu else 0))
            print("| %d KiB, touch only (no allocator, no plan) | %d | 1 | %s |" % (
                key[0] // 1024, key[1], " | ".join(cells)))

    if rss:
        print("\nA held 1 GiB malloc set (touch page): RSS beyond payload + block table, and RSS "
              "still held right after the set is released (MiB; one process per figure)\n")
        print("| allocator | " + " | ".join(
            "%s blocks: overhead / kept" % ("%d KiB" % (s // 1024) if s < (1 << 20) else "%d MiB" % (s >> 20))
            for s in sorted({k for a in rss for k in rss[a]})) + " |")
        sizes = sorted({k for a in rss for k in rss[a]})
        print("|---|" + "---|" * len(sizes))
        for alloc in order:
            if alloc not in rss:
                continue
            cells = []
            for size in sizes:
                runs = rss[alloc].get(size, [])
                cells.append("%.1f / %.1f" % (median([o for o, _ in runs]), median([k for _, k in runs])))
            print("| %s | %s |" % (alloc, " | ".join(cells)))

    if peers:
        print("\nChurn against stress-ng --vm 1 (same block, every byte written once): GiB/s "
              "touched (wall), CPU s per GiB, GiB per CPU second (medians)\n")
        print("| who | block | GiB/s | CPU s/GiB | GiB per CPU s | ÷ best stress-ng, same block |")
        print("|---|---|---|---|---|---|")
        for alloc in order:
            rows = peers.get(alloc, {})
            for (who, size), runs in sorted(rows.items()):
                stress = [median([p for _, _, p in v]) for (w, sz), v in rows.items()
                          if sz == size and w.startswith("stress-ng")]
                best = max(stress) if stress else float("nan")
                per_cpu = median([p for _, _, p in runs])
                label = who if who.startswith("stress-ng") else "%s (%s)" % (who, alloc)
                print("| %s | %d KiB | %.2f | %.2f | %.2f | %.2f× |" % (
                    label, size // 1024, median([g for g, _, _ in runs]),
                    median([c for _, c, _ in runs]), per_cpu, per_cpu / best))

    if goal:
        print_goal64(goal)


GOAL = 1.5  # memload ≥ 1.5× the bytes/s of the code when issue 16 was filed (64 KiB)


def quantile(values, q):
    """Linear-interpolated quantile of a sorted list."""
    if not values:
        return float("nan")
    pos = (len(values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def goal64_points(goal):
    """Per point (window, workers) of the 64 KiB goal: the figures of its rounds."""
    base, mine = goal.get("goal64-baseline", {}), goal.get("goal64-memload", {})
    points = []
    for key in sorted(k for k in mine if k[2] != 0 and k in base):
        rounds = sorted(set(base[key]) & set(mine[key]), key=int)
        if not rounds:
            continue
        cpu = sorted(base[key][r][1] / mine[key][r][1] for r in rounds)
        wall = sorted(mine[key][r][0] / base[key][r][0] for r in rounds)
        base_cpu = [base[key][r][1] for r in rounds]
        mine_cpu = [mine[key][r][1] for r in rounds]
        floor = [v[1] for v in mine.get((key[0], key[1], 0), {}).values()]
        points.append({
            "key": key, "rounds": len(rounds), "cpu": cpu, "wall": wall,
            "base_cpu": base_cpu, "mine_cpu": mine_cpu, "floor": floor,
            "median": median(cpu), "min_ratio": min(base_cpu) / min(mine_cpu),
        })
    return points


def print_goal64(goal):
    points = goal64_points(goal)
    if not points:
        return
    print("\n64 KiB streaming churn against the code when issue 16 was filed (glibc) — the "
          "goal's own rounds, interleaved in one run (baseline and memload alternate which "
          "goes first). Ratio = bytes per CPU second of memload-worker (tcmalloc) ÷ the "
          "baseline's in the same round; goal ≥ %.1f× by the median of the per-round "
          "ratios\n" % GOAL)
    print("| window | workers | rounds | baseline CPU s/GiB min / median | memload CPU s/GiB "
          "min / median | per-round ratio: median (middle half; all) | ratio of the lowest "
          "CPU s/GiB | per-round ratio, wall: median (all) | met |")
    print("|---|---|---|---|---|---|---|---|---|")
    for p in points:
        cpu, wall = p["cpu"], p["wall"]
        print("| %d | %d | %d | %.4f / %.4f | %.4f / %.4f | **%.2f×** (%.2f-%.2f; %.2f-%.2f) | "
              "%.2f× | %.2f× (%.2f-%.2f) | %s |" % (
                  p["key"][1], p["key"][2], p["rounds"], min(p["base_cpu"]),
                  median(p["base_cpu"]), min(p["mine_cpu"]), median(p["mine_cpu"]), p["median"],
                  quantile(cpu, 0.25), quantile(cpu, 0.75), cpu[0], cpu[-1], p["min_ratio"],
                  median(wall), wall[0], wall[-1], "yes" if p["median"] >= GOAL else "**no**"))
    for window in sorted({p["key"][1] for p in points if p["floor"]}):
        p = next(q for q in points if q["key"][1] == window and q["floor"])
        print("| %d | touch alone, 1 thread (same blocks, same order, no allocator, no plan) "
              "| %d | — | %.4f / %.4f | at most %.2f× the baseline's lowest (%.2f× its median) "
              "| — | — | — |" % (window, len(p["floor"]), min(p["floor"]), median(p["floor"]),
                                  min(p["base_cpu"]) / min(p["floor"]),
                                  median(p["base_cpu"]) / median(p["floor"])))


FANOUT_ROW = re.compile(r"^\| memloadctl (usage|start \+ stop), (\d+) agents, (cold|warm) \| "
                        r"([\d.]+) s .*?\| raw gRPC fan-out: ([\d.]+) s .*?\| ([\d.]+)x \|")
MEMORY_ROW = re.compile(r"^\| controller memory per target \((\d+) warm channels\).*?\| ([\d.]+) KiB \|")
FDS_ROW = re.compile(r"^\| controller fds / threads added by (\d+) warm channels.*?\| (\d+) fds "
                     r"\(([\d.]+) per target\) / (\d+) threads \|")
PARALLELISM = re.compile(r"memloadctl --parallelism=(\d+)")


def print_summary(bm, churn, peers, fanout_path, floor, goal_rounds):
    rows = []  # (goal, measured, ratio, goal text, met)

    def row(what, measured, ratio, goal, met):
        rows.append((what, measured, ratio, goal, "yes" if met else "**no**"))

    glibc = bm.get(("tcmalloc", "BM_GlibcRawMalloc1Byte"), [])
    for name, label, goal in (("BM_Stream1Byte/touch_page:0", "1-byte streaming step", 0.65),
                              ("BM_Retain1Byte", "1-byte retained set (create + release)", 1.3)):
        runs = bm.get(("tcmalloc", name), [])
        if runs and glibc:
            ratio = median([x / g for x, g in zip(runs, glibc)])
            row("%s, tcmalloc (memload-worker)" % label,
                "%.2f ns vs glibc's malloc(1)+free %.2f ns, same process" % (median(runs), median(glibc)),
                "%.2f×" % ratio, "≤ %.2f×" % goal, ratio <= goal)
    # 64 KiB churn against the code as it was when issue 16 was filed: the goal's own
    # rounds (bench.sh builds that code), every point; the verdict at the lowest point.
    points = goal64_points(goal_rounds)
    if points:
        low = min(points, key=lambda p: p["median"])
        high = max(points, key=lambda p: p["median"])
        row("64 KiB streaming churn, memload-worker (tcmalloc) vs the code when issue 16 was "
            "filed (glibc): bytes per CPU second, median of %d per-round ratios" % low["rounds"],
            "lowest of %d points (window %d, %d workers; its rounds %.2f-%.2f×, ratio of the "
            "lowest CPU s/GiB %.2f×); highest %.2f×" % (
                len(points), low["key"][1], low["key"][2], low["cpu"][0], low["cpu"][-1],
                low["min_ratio"], high["median"]),
            "%.2f×" % low["median"], "≥ %.1f×" % GOAL, low["median"] >= GOAL)
        low_wall = min(points, key=lambda p: median(p["wall"]))
        rows.append(("64 KiB streaming churn, same rounds: bytes per wall second (2 shared "
                     "cores: for information)",
                     "lowest of %d points (window %d, %d workers)" % (
                         len(points), low_wall["key"][1], low_wall["key"][2]),
                     "%.2f×" % median(low_wall["wall"]), "—", "—"))
    # glibc at HEAD: the goal's row when the goal's own rounds are missing (no git history to
    # build the issue-time code from), otherwise for information only.
    glibc_is_goal = not points
    cpu_ratios, wall_ratios = [], []
    for key in sorted(k for k in churn.get("tcmalloc", {}) if k[0] == 65536):
        base, runs = churn.get("glibc", {}).get(key), churn["tcmalloc"][key]
        if not base:
            continue
        cpu_ratios.append((median([c for _, c in base]) / median([c for _, c in runs]), key))
        wall_ratios.append((median([g for g, _ in runs]) / median([g for g, _ in base]), key))
    if cpu_ratios:
        who = "glibc at HEAD" + ("" if glibc_is_goal else " (not the goal's baseline)")
        for label, ratios in (("bytes per CPU second", cpu_ratios),
                              ("bytes per wall second", wall_ratios)):
            low, key = min(ratios)
            measured = "lowest of %d points (window %d, %d workers); highest %.2f×" % (
                len(ratios), key[1], key[2], max(ratios)[0])
            if glibc_is_goal:
                row("64 KiB streaming churn, memload-worker (tcmalloc) vs %s: %s" % (who, label),
                    measured, "%.2f×" % low, "≥ 1.5×", low >= 1.5)
            else:
                rows.append(("64 KiB streaming churn, tcmalloc vs %s: %s" % (who, label),
                             measured, "%.2f×" % low, "—", "—"))
    # What no allocator can beat: the window's touch alone (same blocks, same order).
    for key in sorted(k for k in floor.get("tcmalloc", {}) if k[0] == 65536):
        runs = churn.get("tcmalloc", {}).get((key[0], key[1], 1))
        base = churn.get("glibc", {}).get((key[0], key[1], 1))
        old = [p["base_cpu"] for p in points if p["key"] == (key[0], key[1], 1)]
        touch = median(floor["tcmalloc"][key])
        if runs and base:
            cap = ("at most %.2f× the code when issue 16 was filed (%.4f, its own rounds), "
                   "%.2f× glibc at HEAD" % (median(old[0]) / touch, median(old[0]),
                                           median([c for _, c in base]) / touch) if old else
                   "at most %.2f× glibc at HEAD" % (median([c for _, c in base]) / touch))
            rows.append(("64 KiB churn, window %d, 1 worker: CPU per GiB above the touch alone "
                         "(blocks touched in the same order, no allocator)" % key[1],
                         "tcmalloc %.4f, glibc %.4f, touch alone %.4f CPU s/GiB" % (
                             median([c for _, c in runs]), median([c for _, c in base]), touch),
                         "%.2f× (glibc: %.2f×)" % (median([c for _, c in runs]) / touch,
                                                   median([c for _, c in base]) / touch),
                         "— (no allocator beats the touch alone: %s)" % cap, "—"))
    for alloc in ("tcmalloc",):
        found = peers.get(alloc, {})
        for size in sorted({k[1] for k in found}):
            stress = [median([p for _, _, p in v]) for (who, sz), v in found.items()
                      if sz == size and who.startswith("stress-ng")]
            mine = found.get(("memload-mmap", size))
            if stress and mine:
                ratio = median([p for _, _, p in mine]) / max(stress)
                row("memload streaming (mmap, fill) vs best stress-ng --vm, %d KiB blocks: "
                    "GiB per CPU second" % (size // 1024),
                    "%.2f vs %.2f" % (median([p for _, _, p in mine]), max(stress)),
                    "%.2f×" % ratio, "≥ 1×", ratio >= 1.0)
    parallelism = "256"
    try:
        lines = open(fanout_path).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        m = PARALLELISM.search(line)
        if m:
            parallelism = m.group(1)
        m = FANOUT_ROW.match(line)
        if m:
            what, n, temp, ctl, raw, ratio = m.groups()
            row("memloadctl %s, %s agents, %s (--parallelism=%s) vs raw gRPC" % (
                what, n, temp, parallelism), "%s s vs %s s" % (ctl, raw), "%s×" % ratio,
                "≤ 1.5×", float(ratio) <= 1.5)
        m = MEMORY_ROW.match(line)
        if m:
            row("controller memory per target, %s targets" % m.group(1), "%s KiB" % m.group(2),
                "—", "≤ 40 KiB", float(m.group(2)) <= 40)
        m = FDS_ROW.match(line)
        if m:
            n, fds, per, threads = m.groups()
            row("controller fds / threads per target, %s targets" % n,
                "%s fds (%s per target), %s threads in all" % (fds, per, threads), "—",
                "1 fd per target, no thread per target",
                float(per) <= 1.01 and int(threads) < 64)
    print("| goal | measured (this run) | ratio | target | met |")
    print("|---|---|---|---|---|")
    for r in rows:
        print("| %s | %s | %s | %s | %s |" % r)


if __name__ == "__main__":
    main()
