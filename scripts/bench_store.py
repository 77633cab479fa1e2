#!/usr/bin/env python3
"""ClickHouse's own cost of storing realistic spans, per table variant.

A benchmark, not a test: it measures how much CPU the ClickHouse server
spends to store N spans (inserts of B rows each, as the writer makes them,
plus every background merge they cause until merges settle) and how much
one trace read costs afterwards, for each variant of the `spans` table.

Source rows: the spans an earlier `scripts/bench realistic` stored (the
organization with the most spans), copied once into `bench_store.src` in a
shuffled order so that each insert covers random traces, as a writer batch
does. Each variant is the stack's own `spans` definition (SHOW CREATE TABLE)
with one change applied (the granule variants differ only in that setting), so the
baseline is measured in the same run.

usage: bench_store.py [ROWS [BLOCK [VARIANT ...]]]
  ROWS     spans to store per variant (default 1,000,000)
  BLOCK    rows per insert (default 10,000: the writer at 20k spans/s)
  VARIANT  names from VARIANTS below (default: all)

Environment: AV_CH_HTTP_PORT and AV_HOME (scripts/lib.sh sets them); the
ClickHouse server's pid is read from $AV_HOME/run/clickhouse.pid and its
CPU from /proc, so the server must run on this machine.
"""
import json
import os
import re
import sys
import time
import urllib.request

from cpu_by_process import read_stat

PORT = int(os.environ.get("AV_CH_HTTP_PORT", "18123"))
STACK = os.environ.get("AV_HOME", os.path.join(os.path.dirname(__file__), "..", ".stack"))
DB = "bench_store"


def q(sql: str, **settings) -> str:
    params = "&".join(f"{k}={v}" for k, v in settings.items())
    url = f"http://127.0.0.1:{PORT}/?{params}"
    req = urllib.request.Request(url, data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=3600) as r:
        return r.read().decode()


def server_pid() -> int:
    with open(os.path.join(STACK, "run", "clickhouse.pid")) as f:
        return int(f.read().strip())


def cpu_seconds(pid: int) -> float:
    return read_stat(pid)[1]


def spans_ddl() -> str:
    ddl = q("SHOW CREATE TABLE agentvista.spans FORMAT TSVRaw").strip()
    return ddl.replace("\\n", "\n").replace("\\'", "'")


def with_codecs(codec: str, columns=("input", "output")):
    def f(ddl: str) -> str:
        for column in columns:
            m = re.search(rf"\n(\s+`{column}` [^\n]*?)(,?)\n", ddl)
            line, comma = m.group(1), m.group(2)
            base = re.sub(r" CODEC\(.*\)$", "", line)
            ddl = ddl.replace(m.group(0), f"\n{base} CODEC({codec}){comma}\n", 1)
        return ddl

    return f


def with_settings(**settings):
    """The table's SETTINGS with these set (replaced or added)."""
    def f(ddl: str) -> str:
        head, _, tail = ddl.partition("\nSETTINGS ")
        current = [kv.strip() for kv in tail.split(",") if kv.strip()] if tail else []
        kept = [kv for kv in current if kv.split("=")[0].strip() not in settings]
        kept += [f"{k} = {v}" for k, v in settings.items()]
        return head + "\nSETTINGS " + ", ".join(kept)

    return f


def without_index(name: str):
    def f(ddl: str) -> str:
        return re.sub(rf"\n\s+INDEX {name} [^\n]*?,?\n", "\n", ddl).replace(",\n)", "\n)")

    return f


VARIANTS = {
    "granules_10mb": with_settings(index_granularity_bytes=10485760),
    "granules_1mb": with_settings(index_granularity_bytes=1048576),
    "text_zstd1": with_codecs("ZSTD(1)"),
    "text_lz4": with_codecs("LZ4"),
    "merge_base_10": with_settings(
        merge_selector_base=10,
        merge_selector_enable_heuristic_to_lower_max_parts_to_merge_at_once=0,
    ),
    "no_model_index": without_index("idx_model"),
}


def prepare_source(rows: int) -> None:
    q(f"CREATE DATABASE IF NOT EXISTS {DB}")
    have = int(q(f"SELECT count() FROM system.tables WHERE database = '{DB}' AND name = 'src'") or 0)
    if have and int(q(f"SELECT count() FROM {DB}.src")) >= rows:
        return
    q(f"DROP TABLE IF EXISTS {DB}.src")
    org = q(
        "SELECT org_id FROM agentvista.spans GROUP BY org_id ORDER BY count() DESC LIMIT 1"
    ).strip()
    if not org:
        sys.exit("no spans stored yet: run `scripts/bench realistic` first")
    # Number the chosen spans by a hash of their id (keys only, so the sort
    # stays small), then copy the rows with their numbers.
    q(f"CREATE TABLE {DB}.src ENGINE = MergeTree ORDER BY n AS "
      f"SELECT k.n AS n, s.* FROM agentvista.spans AS s INNER JOIN "
      f"(SELECT span_id, rowNumberInAllBlocks() AS n FROM (SELECT span_id FROM agentvista.spans "
      f"WHERE org_id = '{org}' ORDER BY cityHash64(span_id) LIMIT {rows})) AS k USING (span_id) "
      f"WHERE s.org_id = '{org}'",
      max_threads=1, max_insert_block_size=100000, max_block_size=8192)
    q(f"OPTIMIZE TABLE {DB}.src FINAL")
    got = int(q(f"SELECT count() FROM {DB}.src"))
    if got < rows:
        sys.exit(f"only {got} spans in the busiest organization; {rows} asked")


def settle(table: str) -> None:
    """Until no merge of the table has run for 5 s."""
    quiet_since = None
    while True:
        busy = int(q(f"SELECT count() FROM system.merges WHERE database = '{DB}' AND table = '{table}'"))
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 5:
            return
        time.sleep(0.2)


def trace_read_ms(pid: int, table: str) -> float:
    """ClickHouse CPU of one trace read as the API makes it (FINAL, every
    column, by start), averaged over 20 traces."""
    org = q(f"SELECT any(org_id) FROM {DB}.src").strip()
    traces = q(f"SELECT DISTINCT trace_id FROM {DB}.src WHERE n < 100000 "
               f"ORDER BY cityHash64(trace_id) LIMIT 20 FORMAT TSV").split()
    c = cpu_seconds(pid)
    for t in traces:
        q(f"SELECT * FROM {DB}.{table} FINAL WHERE org_id = toUUID('{org}') AND trace_id = toUUID('{t}') "
          f"ORDER BY started_at, span_id LIMIT 10000 FORMAT Null")
    return (cpu_seconds(pid) - c) / max(len(traces), 1) * 1000


def run_variant(name: str, make, rows: int, block: int) -> dict:
    pid = server_pid()
    table = f"v_{name}"
    q(f"DROP TABLE IF EXISTS {DB}.{table} SYNC")
    ddl = make(spans_ddl()).replace("CREATE TABLE agentvista.spans", f"CREATE TABLE {DB}.{table}", 1)
    q(ddl)
    cols = q(f"SELECT name FROM system.columns WHERE database = '{DB}' AND table = '{table}' ORDER BY position FORMAT TSV").split()
    collist = ", ".join(f"`{c}`" for c in cols)
    # The cost of reading the source, measured into a Null table, is
    # subtracted so that only storing counts.
    q(f"DROP TABLE IF EXISTS {DB}.null_sink")
    q(f"CREATE TABLE {DB}.null_sink AS {DB}.{table} ENGINE = Null")
    c0 = cpu_seconds(pid)
    for off in range(0, rows, block):
        q(f"INSERT INTO {DB}.null_sink ({collist}) SELECT {collist} FROM {DB}.src WHERE n >= {off} AND n < {off + block}")
    read_cpu = cpu_seconds(pid) - c0
    q(f"DROP TABLE {DB}.null_sink")

    # Inserts alone (merges stopped), then the merges they cause, alone.
    q(f"SYSTEM STOP MERGES {DB}.{table}")
    c0 = cpu_seconds(pid)
    for off in range(0, rows, block):
        q(f"INSERT INTO {DB}.{table} ({collist}) SELECT {collist} FROM {DB}.src WHERE n >= {off} AND n < {off + block}",
          max_insert_threads=1)
    insert_cpu = cpu_seconds(pid) - c0 - read_cpu
    # Reads with as many parts as the inserts made (a store that merges
    # slower than it receives), then after merges settle.
    many_parts_read_ms = trace_read_ms(pid, table)
    c1 = cpu_seconds(pid)
    q(f"SYSTEM START MERGES {DB}.{table}")
    settle(table)
    merge_cpu = cpu_seconds(pid) - c1
    parts = json.loads(q(
        f"SELECT count() AS parts, sum(rows) AS rows, sum(data_compressed_bytes) AS bytes "
        f"FROM system.parts WHERE database = '{DB}' AND table = '{table}' AND active FORMAT JSONEachRow"))
    read_ms = trace_read_ms(pid, table)
    q(f"DROP TABLE {DB}.{table} SYNC")
    return {
        "variant": name,
        "insert_us": insert_cpu / rows * 1e6,
        "merge_us": merge_cpu / rows * 1e6,
        "total_us": (insert_cpu + merge_cpu) / rows * 1e6,
        "many_parts_read_ms": many_parts_read_ms,
        "parts": parts["parts"],
        "bytes_per_span": int(parts["bytes"]) / max(int(parts["rows"]), 1),
        "trace_read_ms": read_ms,
    }


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    block = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    names = sys.argv[3:] or list(VARIANTS)
    prepare_source(rows)
    print(f"{rows} spans per variant, {block} rows per insert; ClickHouse CPU per stored span")
    print("| variant | insert µs | merges µs | total µs | parts after | bytes/span | trace read ms CPU, unmerged / merged |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        r = run_variant(name, VARIANTS[name], rows, block)
        print(f"| {r['variant']} | {r['insert_us']:.1f} | {r['merge_us']:.1f} | {r['total_us']:.1f} | "
              f"{r['parts']} | {r['bytes_per_span']:.0f} | {r['many_parts_read_ms']:.1f} / {r['trace_read_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
