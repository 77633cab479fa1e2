#!/usr/bin/env python3
"""Cluster-mode insert benchmark: how the writer should reach the shards.

Starts two ClickHouse servers (the stack's engine) as the two shards of a
cluster, applies the schema with the real writer binary in cluster mode
(`writer migrate`), makes one body of realistic spans (about 1 KB of
message text each, 16 spans per trace, RowBinary as the writer sends it) and
inserts it, in turn and repeatedly, three ways:

  one node      into one server's local table (the single-node baseline)
  distributed   into the Distributed table with distributed_foreground_insert
                (the writer's path in cluster mode: ClickHouse shards it)
  client-side   split by the sharding key first, each half straight into its
                shard's local table, both at once

and prints rows/s for each and the ratios to the baseline, measured in the
same run. Both shards share this machine's cores, so the figures show the
cost of each path, not the gain of a second machine.

usage: bench_cluster.py WRITER_BINARY [SPANS [ROUNDS]]
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = "av_bench"
DB = "agentvista"
ORG = "5f1e2d3c-0000-4000-8000-00000000b0b0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, sql: str, body: bytes = b"", settings: str = "") -> bytes:
    from urllib.parse import quote

    url = f"http://127.0.0.1:{port}/?query={quote(sql)}{settings}"
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=600) as r:
        return r.read()


def main() -> None:
    writer = sys.argv[1]
    spans = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    tmp = tempfile.mkdtemp(prefix="av-bench-cluster-")
    ports = [(free_port(), free_port()) for _ in range(2)]
    shards = "".join(
        f"<shard><replica><host>127.0.0.1</host><port>{tcp}</port></replica></shard>"
        for _, tcp in ports
    )
    extra = os.path.join(tmp, "cluster.xml")
    with open(extra, "w") as f:
        f.write(f"<remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>")
    servers = []
    for i, (http, tcp) in enumerate(ports):
        env = dict(os.environ, AV_CH_CONFIG_EXTRA=extra, AV_CH_EPHEMERAL="1")
        servers.append(
            subprocess.Popen(
                [sys.executable, os.path.join(ROOT, "scripts/clickhouse_server.py"), "run",
                 os.path.join(tmp, f"shard{i}"), str(http), str(tcp)],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    try:
        for i in range(2):
            ready = os.path.join(tmp, f"shard{i}", "run", "ports.tsv")
            for _ in range(600):
                if os.path.exists(ready) and os.path.getsize(ready) > 0:
                    break
                time.sleep(0.1)
        nodes = ",".join(f"http://127.0.0.1:{http}" for http, _ in ports)
        env = dict(os.environ, AV_CLICKHOUSE_URL=f"http://127.0.0.1:{ports[0][0]}",
                   AV_CLICKHOUSE_CLUSTER=CLUSTER, AV_CLICKHOUSE_NODES=nodes,
                   AV_CLICKHOUSE_DATABASE=DB, RUST_LOG="warn")
        subprocess.run([writer, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
        n0, n1 = ports[0][0], ports[1][0]
        # The body: realistic spans made by ClickHouse itself, as RowBinary.
        text = "x" * 500
        select = (
            f"SELECT toUUID('{ORG}') AS org_id, "
            "toUUID(concat(substring(hex(cityHash64(intDiv(number, 16))), 1, 8), '-0000-4000-8000-', "
            "substring(hex(cityHash64(intDiv(number, 16), 7)), 1, 12))) AS trace_id, "
            "generateUUIDv4(number) AS span_id, NULL AS parent_span_id, toUUID('00000000-0000-4000-8000-000000000001') AS agent_id, "
            "'bench-agent' AS agent_name, 'llm' AS span_type, 'chat gpt-4o' AS name, 'completed' AS status, "
            "now64(6) - toIntervalMillisecond(number % 3600000) AS started_at, NULL AS ended_at, toInt64(1200) AS duration_ms, "
            "'gpt-4o' AS model, toInt64(800) AS input_tokens, toInt64(120) AS output_tokens, toInt64(920) AS total_tokens, "
            "toDecimal64(0.0032, 9) AS cost, "
            f"concat('[{{\"role\":\"user\",\"content\":\"', toString(number), '{text}\"}}]') AS input, "
            f"concat('[{{\"role\":\"assistant\",\"content\":\"{text}\"}}]') AS output, NULL AS error, "
            "map('gen_ai.system', 'openai', 'gen_ai.operation.name', 'chat', 'server.address', 'api.openai.com', "
            "'app.user', toString(number % 1000), 'app.session', toString(intDiv(number, 64)), 'env', 'prod', "
            "'region', 'eu-west-1', 'service.version', '1.4.2', 'team', 'growth', 'tier', 'gold') AS attributes, "
            "toUInt16(30) AS retention_days, toUInt64(number) AS version, now() AS ingested_at, 'otlp' AS source, "
            "'client' AS kind, 'openai' AS provider, NULL AS cached_tokens, true AS cost_computed, NULL AS status_message, "
            "map('service.name', 'bench') AS resource_attributes, 'bench@1' AS scope, '[]' AS events, '[]' AS links "
            f"FROM numbers({spans})"
        )
        # Made in a scratch table of the same structure, so that the
        # RowBinary body has the table's exact types.
        post(n0, "CREATE DATABASE IF NOT EXISTS bench")
        post(n0, f"CREATE TABLE bench.spans AS {DB}.spans ENGINE = Memory")
        post(n0, f"INSERT INTO bench.spans SELECT * FROM ({select})")
        body = post(n0, "SELECT * FROM bench.spans FORMAT RowBinary")
        halves = [
            post(n0, f"SELECT * FROM bench.spans WHERE cityHash64(org_id, trace_id) % 2 = {i} FORMAT RowBinary")
            for i in range(2)
        ]
        post(n0, "DROP DATABASE bench")

        def one_node() -> None:
            post(n0, f"INSERT INTO {DB}.spans FORMAT RowBinary", body)

        def distributed() -> None:
            post(n0, f"INSERT INTO {DB}_dist.spans FORMAT RowBinary", body,
                 "&distributed_foreground_insert=1")

        def client_side() -> None:
            ts = [threading.Thread(target=post, args=(port, f"INSERT INTO {DB}.spans FORMAT RowBinary", half))
                  for port, half in zip((n0, n1), halves)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()

        ways = [("one node (baseline)", one_node), ("distributed, foreground", distributed),
                ("client-side, straight to each shard", client_side)]
        best = {name: 0.0 for name, _ in ways}
        for _ in range(rounds):
            for name, fn in ways:
                start = time.perf_counter()
                fn()
                best[name] = max(best[name], spans / (time.perf_counter() - start))
        split = [int(post(p, f"SELECT count() FROM {DB}.spans WHERE org_id = toUUID('{ORG}')")) for p in (n0, n1)]
        base = best[ways[0][0]]
        print(f"{spans} realistic spans per insert ({len(body) / spans:.0f} B each as RowBinary), "
              f"best of {rounds} rounds; rows on the shards: {split[0]} / {split[1]}")
        print("| path | rows/s | vs one node |")
        print("|---|---:|---:|")
        for name, _ in ways:
            print(f"| {name} | {best[name]:,.0f} | {best[name] / base:.2f} |")
    finally:
        for s in servers:
            s.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
