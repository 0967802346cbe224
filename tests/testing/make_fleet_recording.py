#!/usr/bin/env python3
"""Writes a synthetic `memloadctl run --record` file of a fleet, for measuring `report`.

    python3 tests/testing/make_fleet_recording.py --nodes=1000 --seconds=3600 \
        --out=/tmp/fleet.jsonl

The lines follow README.md "Recordings": a "run" line (a retained plan: 1 GiB, ramp 60 s,
hold forever), then every second a sample per node that answers, the events (start,
target_reached, capped, oom_killed, error, stop), and after the stop a "result" line per
node and the "end" line. The fleet is deterministic (seeded) and holds what the report
must single out: nodes that never answer, an OOM-killed node, capped nodes, a node that
never reaches its target and slow ones; every other node ramps with a little jitter and
holds with noise. 1,000 nodes x 3,600 s is 3.6 million samples, ~1.3 GB.
"""

import argparse
import datetime
import json
import random
import sys

GIB = 1 << 30


def stamp(origin, seconds):
    t = origin + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not 1 <= args.nodes <= 20000 or args.seconds < 1 or args.interval <= 0:
        sys.exit("want 1..20000 nodes, >= 1 s, interval > 0")

    rng = random.Random(args.seed)
    origin = datetime.datetime(2026, 11, 25, 16, 0, 0, tzinfo=datetime.timezone.utc)
    plan = "fleet"
    target = GIB
    ramp = 60.0
    nodes = []
    for i in range(args.nodes):
        nodes.append({
            "name": "node-%05d" % i,
            "addr": "10.%d.%d.%d:7070" % (i // 65536, (i // 256) % 256, i % 256),
            "start": rng.uniform(0.2, 2.0),           # the rollout
            "ramp": ramp * rng.uniform(0.95, 1.1),     # time to the target
            "kind": "ok",
        })
    # What the report must single out (indexes spread over the fleet).
    special = {}
    step = max(1, args.nodes // 9)
    for k, kind in enumerate(["down", "down", "oom", "capped", "capped", "stuck", "slow", "slow"]):
        special[(k * step + 7) % args.nodes] = kind
    for i, kind in special.items():
        nodes[i]["kind"] = kind
        if kind == "slow":
            nodes[i]["ramp"] = ramp * rng.uniform(2.5, 4.0)
    total = 16 * GIB
    out = open(args.out, "w", buffering=1 << 20)
    w = out.write
    spec = {"planId": plan, "retained": {"blockSize": "1048576", "touch": "TOUCH_MODE_PAGE",
            "backing": "BACKING_MMAP", "phases": [{"target": {"bytes": str(target)},
            "rampDuration": "%ds" % int(ramp), "holdForever": True}]}}
    w(json.dumps({"event": "run", "time": stamp(origin, 0), "planId": plan, "spec": spec,
                  "targets": [n["addr"] for n in nodes]}, separators=(",", ":")) + "\n")

    def event(name, node, seconds, state=None, message=None, extra=""):
        line = '{"event":"%s","time":"%s","node":"%s","target":"%s","planId":"%s"' % (
            name, stamp(origin, seconds), node["name"], node["addr"], plan)
        if state:
            line += ',"state":"%s"' % state
        if message:
            line += ',"message":%s' % json.dumps(message)
        w(line + extra + "}\n")

    steps = int(args.seconds / args.interval)
    reached = set()
    ended = set()
    for s in range(1, steps + 1):
        now = s * args.interval
        for i, n in enumerate(nodes):
            kind = n["kind"]
            if kind == "down":
                if s == 1:  # Never answered: its name is unknown.
                    event("error", dict(n, name=""), now,
                          message="UNAVAILABLE: agent unreachable")
                continue
            if now < n["start"]:
                continue
            if i not in reached and s == int(n["start"] / args.interval) + 1:
                event("start", n, n["start"])
            if i in ended:
                continue
            elapsed = now - n["start"]
            goal = target
            if kind == "capped":
                goal = int(target * 0.8)
            if kind == "stuck":
                goal = int(target * 0.55)
            payload = min(goal, int(target * elapsed / n["ramp"]))
            state = "ramping"
            if payload >= goal:
                if kind == "capped":
                    state = "capped"
                    if i not in reached:
                        event("capped", n, now, state="capped",
                              message="growth stopped at the reserve")
                        reached.add(i)
                elif kind == "stuck":
                    state = "ramping"
                else:
                    state = "holding"
                    if i not in reached:
                        event("target_reached", n, now, extra=',"targetBytes":%d' % target)
                        reached.add(i)
            if kind == "oom" and elapsed > n["ramp"] * 0.7:
                event("oom_killed", n, now, state="oom_killed",
                      message="the worker was OOM-killed (unexpected)")
                ended.add(i)
                continue
            resident = payload + (payload >> 6) + rng.randrange(0, 4 << 20)
            w('{"time":"%s","node":"%s","target":"%s","planId":"%s","state":"%s",'
              '"targetBytes":%d,"payloadBytes":%d,"residentBytes":%d,'
              '"peakResidentBytes":%d,"allocationRateBytesPerSec":%d,"totalBytes":%d,'
              '"availableBytes":%d,"pressureSomeAvg10":%.2f,"pressureFullAvg10":0}\n' % (
                  stamp(origin, now), n["name"], n["addr"], plan, state, target, payload,
                  resident, resident, 0 if state != "ramping" else target // int(n["ramp"]),
                  total, total - resident - (2 * GIB), rng.random() * 0.2))
    end = steps * args.interval + 0.5
    ok = failed = 0
    for i, n in enumerate(nodes):
        kind = n["kind"]
        if kind not in ("down", "oom") and i not in ended:
            event("stop", n, end, state="stopped")
        good = kind in ("ok", "slow", "capped", "stuck")
        ok += good
        failed += not good
        message = {"down": "UNAVAILABLE: agent unreachable",
                   "oom": "RESOURCE_EXHAUSTED: the worker was OOM-killed (unexpected)",
                   }.get(kind)
        w('{"event":"result","time":"%s","node":"%s","target":"%s","planId":"%s","ok":%s%s%s}\n'
          % (stamp(origin, end), "" if kind == "down" else n["name"], n["addr"], plan,
             "true" if good else "false",
             "" if kind == "down" else ',"state":"%s"' % ("oom_killed" if kind == "oom" else "stopped"),
             ',"message":%s' % json.dumps(message) if message else ""))
    w('{"event":"end","time":"%s","planId":"%s","exitCode":%d,"nodes":%d,"ok":%d,"failed":%d}\n'
      % (stamp(origin, end), plan, 1 if failed else 0, len(nodes), ok, failed))
    out.close()


if __name__ == "__main__":
    main()
