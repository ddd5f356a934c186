"""Requests generated from the API's own OpenAPI schema (schemathesis: the schema's examples,
edge cases, random data, then chains of calls) against a real `crmsms serve` with the demo
data: no server error, whatever it sends."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path


def test_no_request_built_from_the_schema_gets_a_server_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}  # its own scratch SQLite database
    env.update(CRMSMS_DATA_DIR=str(tmp_path), CRMSMS_SMS_URL="memory://")
    crmsms = [sys.executable, "-m", "crmsms"]
    for command in (["migrate", "--verbosity", "0"], ["load-demo"]):
        subprocess.run([*crmsms, *command], env=env, check=True, capture_output=True)
    token = subprocess.run([*crmsms, "api-token", "demo"], env=env, check=True, capture_output=True,
                           text=True).stdout.strip().splitlines()[-1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([*crmsms, "serve", "--port", str(port)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()  # "Web UI on ...": listening
        time.sleep(0.2)
        run = subprocess.run(
            [str(Path(sys.executable).with_name("schemathesis")), "run",
             f"http://127.0.0.1:{port}/api/v1/openapi.json", "-H", f"Authorization: Bearer {token}",
             "--checks", "not_a_server_error", "--max-examples", "15", "--seed", "7", "--no-color"],
            capture_output=True, text=True, timeout=900, cwd=tmp_path)
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = run.stdout[-3000:]
    assert run.returncode == 0, summary
    assert " passed" in summary.split("SUMMARY")[-1] and "failed" not in summary.split("SUMMARY")[-1], summary
