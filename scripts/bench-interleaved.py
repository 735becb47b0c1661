#!/usr/bin/env python3
"""Whole-process timing of two or more commands, alternated run by run.

Each round runs every command once, in turn, so a change in machine load (another build, a
frequency step) hits all of them alike instead of the one that happened to run then; the
order within a round rotates so that no command always follows the same one. A command is
started with posix_spawn (no shell) with stdout and stderr to /dev/null, and timed from the
spawn to the end of waitpid; the spawn overhead is the same for every command, and a
`/bin/true` entry shows it. It refuses to report when a command fails.

Usage:
  bench-interleaved.py [--rounds N] [--warmup N] [--json FILE] LABEL=COMMAND ...
COMMAND is split like a shell would (shlex) but never run through one.

Prints the load average before and after, then per command the median, the quartiles and
the minimum in milliseconds, and the ratio of each median to the first command's median.
"""

import argparse
import json
import os
import shlex
import statistics
import sys
import time


def spawn_and_wait(argv, devnull):
    start = time.perf_counter_ns()
    pid = os.posix_spawn(
        argv[0] if "/" in argv[0] else _which(argv[0]),
        argv,
        os.environ,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, devnull, 1),
            (os.POSIX_SPAWN_DUP2, devnull, 2),
        ],
    )
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter_ns() - start
    return elapsed, os.waitstatus_to_exitcode(status)


_paths = {}


def _which(name):
    if name not in _paths:
        for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                _paths[name] = p
                break
        else:
            sys.exit(f"bench-interleaved: {name} not found on PATH")
    return _paths[name]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--json", help="write the samples and summary here")
    ap.add_argument("--ok-exit", type=int, action="append", default=None,
                    help="an exit code that counts as success (default 0; repeatable)")
    ap.add_argument("commands", nargs="+", metavar="LABEL=COMMAND")
    args = ap.parse_args()
    ok = set(args.ok_exit or [0])
    cmds = []
    for spec in args.commands:
        label, sep, command = spec.partition("=")
        if not sep or not command:
            sys.exit(f"bench-interleaved: {spec!r} is not LABEL=COMMAND")
        cmds.append((label, shlex.split(command)))
    devnull = os.open(os.devnull, os.O_WRONLY)
    samples = {label: [] for label, _ in cmds}
    load_before = os.getloadavg()
    n = len(cmds)
    for r in range(args.warmup + args.rounds):
        for k in range(n):
            label, argv = cmds[(r + k) % n]
            ns, code = spawn_and_wait(argv, devnull)
            if code not in ok:
                sys.exit(f"bench-interleaved: {label} exited {code}: {shlex.join(argv)}")
            if r >= args.warmup:
                samples[label].append(ns / 1e6)
    load_after = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
          f"after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}; "
          f"{os.cpu_count()} cores; {args.rounds} rounds alternated, {args.warmup} warm-up")
    base = statistics.median(samples[cmds[0][0]])
    summary = []
    for label, argv in cmds:
        s = sorted(samples[label])
        q1, _, q3 = statistics.quantiles(s, n=4)
        med = statistics.median(s)
        row = {"label": label, "command": shlex.join(argv), "median_ms": med, "q1_ms": q1,
               "q3_ms": q3, "min_ms": s[0], "ratio_to_first": med / base}
        summary.append(row)
        print(f"{label:<28} median {med:8.3f} ms  (q1 {q1:.3f}, q3 {q3:.3f}, min {s[0]:.3f})"
              f"  median/{cmds[0][0]} {med / base:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"load_before": load_before, "load_after": load_after,
                       "summary": summary, "samples": samples}, f, indent=1)


if __name__ == "__main__":
    main()
