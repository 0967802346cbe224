#!/usr/bin/env python3
"""Turns the raw lines bazel/bench.sh gathered into the README's allocator tables.

Input (stdin): lines "ALLOC<TAB>ROUND<TAB>line", where line is either a google-benchmark
console line ("BM_x  12.3 ns  4.56 ns  1000 ...") or a churn_benchmark line
("churn<TAB>size=... gib_per_s=... cpu_s_per_gib=..."). Output: markdown tables of medians
over the rounds, with ratios against glibc measured in the same run.
"""
import collections
import re
import statistics
import sys

BM = re.compile(r"^(BM_\S+?)\s+([\d.]+) ns\s+([\d.]+) ns\s+\d+")


def median(values):
    return statistics.median(values) if values else float("nan")


def main():
    order = []
    bm = collections.defaultdict(list)  # (alloc, name) -> [cpu ns]
    churn = collections.defaultdict(lambda: collections.defaultdict(list))
    rss = collections.defaultdict(lambda: collections.defaultdict(list))
    peers = collections.defaultdict(lambda: collections.defaultdict(list))
    for raw in sys.stdin:
        parts = raw.rstrip("\n").split("\t", 2)
        if len(parts) < 3:
            continue
        alloc, _, line = parts
        if alloc not in order:
            order.append(alloc)
        m = BM.match(line)
        if m:
            bm[(alloc, m.group(1))].append(float(m.group(3)))
            continue
        fields = line.split("\t", 1)
        if len(fields) != 2:
            continue
        kv = dict(f.split("=", 1) for f in fields[1].split())
        if fields[0] == "churn":
            key = (int(kv["size"]), int(kv["window"]), int(kv["workers"]))
            churn[alloc][key].append((float(kv["gib_per_s"]), float(kv["cpu_s_per_gib"])))
        elif fields[0] == "rss":
            key = int(kv["size"])
            rss[alloc][key].append((float(kv["overhead_mib"]), float(kv["kept_after_release_mib"])))
        elif fields[0] == "peers":
            key = (kv["who"], int(kv["size"]))
            peers[alloc][key].append((float(kv["gib_per_s"]), float(kv["cpu_s_per_gib"]),
                                      float(kv["gib_per_cpu_s"])))

    if bm:
        raw_glibc = median(bm[("glibc", "BM_RawMalloc1Byte")])
        print("\n1-byte paths, CPU ns per op (median of the rounds); ratios against glibc's raw "
              "malloc(1)+free pair in the same run (%.2f ns)\n" % raw_glibc)
        print("| allocator | raw malloc+free | BM_Stream1Byte | ÷ glibc raw (goal ≤ 0.65) "
              "| BM_Retain1Byte | ÷ glibc raw (goal ≤ 1.3) | BM_StreamPlan1Byte ns/block |")
        print("|---|---|---|---|---|---|---|")
        for alloc in order:
            rawp = median(bm[(alloc, "BM_RawMalloc1Byte")])
            stream = median(bm[(alloc, "BM_Stream1Byte/touch_page:0")])
            retain = median(bm[(alloc, "BM_Retain1Byte")])
            plan = median(bm[(alloc, "BM_StreamPlan1Byte/real_time")])
            print("| %s | %.2f | %.2f | %.2f× | %.2f | %.2f× | %.1f |" % (
                alloc, rawp, stream, stream / raw_glibc, retain, retain / raw_glibc,
                plan * 1e6 / (1 << 20) if plan == plan else float("nan")))

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
                gbs = median([g for g, _ in runs])
                cpu = median([c for _, c in runs])
                cells.append("%.1f / %.4f (%.2f×)" % (gbs, cpu, base_cpu / cpu if cpu else 0))
            size = "%d KiB" % (key[0] // 1024) if key[0] < (1 << 20) else "%d MiB" % (key[0] >> 20)
            print("| %s | %d | %d | %s |" % (size, key[1], key[2], " | ".join(cells)))

    if rss:
        print("\nA held 1 GiB malloc set (touch page): RSS beyond payload + block table, and RSS "
              "still held right after the set is released (MiB; one process per figure)\n")
        print("| allocator | " + " | ".join(
            "%s blocks: overhead / kept" % ("%d KiB" % (s // 1024) if s < (1 << 20) else "%d MiB" % (s >> 20))
            for s in sorted({k for a in rss for k in rss[a]})) + " |")
        sizes = sorted({k for a in rss for k in rss[a]})
        print("|---|" + "---|" * len(sizes))
        for alloc in order:
            cells = []
            for size in sizes:
                runs = rss[alloc].get(size, [])
                cells.append("%.1f / %.1f" % (median([o for o, _ in runs]), median([k for _, k in runs])))
            print("| %s | %s |" % (alloc, " | ".join(cells)))

    if peers:
        print("\nChurn against stress-ng --vm 1 (same block, every byte written once): GiB/s "
              "touched (wall), CPU s per GiB, GiB per CPU second (medians)\n")
        print("| who | block | GiB/s | CPU s/GiB | GiB per CPU s | ÷ best stress-ng |")
        print("|---|---|---|---|---|---|")
        for alloc in order:
            rows = peers.get(alloc, {})
            stress = [median([p for _, _, p in v]) for (who, _), v in rows.items()
                      if who.startswith("stress-ng")]
            best = max(stress) if stress else float("nan")
            for (who, size), runs in sorted(rows.items()):
                per_cpu = median([p for _, _, p in runs])
                label = who if who.startswith("stress-ng") else "%s (%s)" % (who, alloc)
                print("| %s | %d KiB | %.2f | %.2f | %.2f | %.2f× |" % (
                    label, size // 1024, median([g for g, _, _ in runs]),
                    median([c for _, c, _ in runs]), per_cpu, per_cpu / best))


if __name__ == "__main__":
    main()
