#!/usr/bin/env python3
"""CPU by process while a benchmark runs (a measuring aid, not a test).

Every INTERVAL seconds, prints the share of one core each process used in
that interval (from /proc/<pid>/stat), busiest first: run it beside
`scripts/bench realistic` to see where the machine's CPU goes. The local
ClickHouse server is a Python process (chdb); it is shown as `clickhouse`.

usage: cpu_by_process.py INTERVAL COUNT
"""
import os
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def read_stat(pid) -> tuple:
    """A process's command name and its user + system CPU seconds (all its
    threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat.rsplit(")", 1)[1].split()
    return comm, (int(fields[11]) + int(fields[12])) / TICK


def snapshot() -> dict:
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            comm, seconds = read_stat(pid)
            with open(f"/proc/{pid}/cmdline") as f:
                cmdline = f.read().replace("\0", " ")
        except OSError:
            continue
        if comm.startswith("python") and "clickhouse" in cmdline:
            comm = "clickhouse"
        out[pid] = (comm, seconds)
    return out


def main() -> None:
    interval, count = float(sys.argv[1]), int(sys.argv[2])
    prev = snapshot()
    start = time.monotonic()
    for _ in range(count):
        time.sleep(interval)
        cur = snapshot()
        by_name: dict = {}
        for pid, (comm, seconds) in cur.items():
            if pid in prev:
                by_name[comm] = by_name.get(comm, 0) + seconds - prev[pid][1]
        prev = cur
        pct = {k: v / interval * 100 for k, v in by_name.items()}
        busiest = sorted(pct.items(), key=lambda kv: -kv[1])[:8]
        print(f"{time.monotonic() - start:5.0f} s  all {sum(pct.values()):4.0f}%  | "
              + ", ".join(f"{k} {v:.0f}%" for k, v in busiest), flush=True)


if __name__ == "__main__":
    main()
