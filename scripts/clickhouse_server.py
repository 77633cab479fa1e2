#!/usr/bin/env python3
"""Run a real ClickHouse server (HTTP + native TCP) from the chdb-core wheel.

chdb-core ships the whole ClickHouse engine. Its low-level stateless call runs
clickhouse-local, which implements `SYSTEM START LISTEN HTTP/TCP`; the
listeners live while that call runs, so one multi-statement query starts
them, writes the bound ports to a file (the readiness signal) and then blocks
until `KILL QUERY` (see stop()) ends it.

usage: clickhouse_server.py run  DATA_DIR HTTP_PORT TCP_PORT
       clickhouse_server.py stop HTTP_PORT

Environment of `run`:
  AV_CH_CONFIG_EXTRA   a file of XML elements added to config.xml (for
                       example a cluster's <remote_servers>)
  AV_CH_EPHEMERAL=1    a test's server: it exits, removing DATA_DIR, once
                       the process that started it is gone
"""
import os
import shutil
import sys
import threading
import time
import urllib.request

BLOCKER = "sum(sleepEachRow(1)) FROM system.numbers"


def run(data_dir: str, http_port: int, tcp_port: int) -> None:
    data_dir = os.path.abspath(data_dir)
    os.makedirs(data_dir, exist_ok=True)
    run_dir = os.path.join(data_dir, "run")
    os.makedirs(run_dir, exist_ok=True)
    ports_file = os.path.join(run_dir, "ports.tsv")
    if os.path.exists(ports_file):
        os.remove(ports_file)
    extra = ""
    if os.environ.get("AV_CH_CONFIG_EXTRA"):
        with open(os.environ["AV_CH_CONFIG_EXTRA"]) as f:
            extra = f.read()
    with open(os.path.join(run_dir, "config.xml"), "w") as f:
        f.write(f"""<clickhouse>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <logger>
    <level>warning</level>
    <log>{run_dir}/clickhouse.log</log>
    <errorlog>{run_dir}/clickhouse.err.log</errorlog>
    <console>0</console>
  </logger>
  <max_server_memory_usage_to_ram_ratio>0.5</max_server_memory_usage_to_ram_ratio>
  <max_concurrent_queries>200</max_concurrent_queries>
{extra}
</clickhouse>
""")
    # clickhouse-local reads ./config.xml and turns piped stdin into a table.
    os.chdir(run_dir)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    if os.environ.get("AV_CH_EPHEMERAL") == "1":
        threading.Thread(target=exit_with_parent, args=(data_dir,), daemon=True).start()
    from chdb import _chdb  # imported late: it reads the environment at load time

    sql = (
        "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
        "SELECT getServerPort('http_port'), getServerPort('tcp_port') "
        f"INTO OUTFILE '{ports_file}' TRUNCATE FORMAT TSV; "
        f"SELECT {BLOCKER} SETTINGS max_block_size = 1, "
        "function_sleep_max_microseconds_per_block = 0"
    )
    _chdb.query(sql, "TabSeparated", path=os.path.join(data_dir, "db"))


def exit_with_parent(data_dir: str) -> None:
    """Exit (and remove the data) once the parent process is gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    shutil.rmtree(data_dir, ignore_errors=True)
    os._exit(0)


def stop(http_port: int) -> None:
    sql = (
        "KILL QUERY WHERE query LIKE '%sleepEachRow%' "
        "AND query NOT LIKE '%KILL QUERY%' SYNC"
    )
    req = urllib.request.Request(
        f"http://127.0.0.1:{http_port}/", data=sql.encode(), method="POST"
    )
    urllib.request.urlopen(req, timeout=10).read()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "run":
        run(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif len(sys.argv) == 3 and sys.argv[1] == "stop":
        stop(int(sys.argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
