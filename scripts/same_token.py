#!/usr/bin/env python3
"""Requests a second from clients that show the same token at every request, as a page that
polls or an officer at work does: one `govfusion serve` on the in-memory bus (rate limit off),
four threads on keep-alive connections asking `GET /api/v1/applicants/me/cases`.

It measures; it asserts nothing. Usage (from the repository root, after `cargo build --release`):

    scripts/same_token.py [requests] [binary]     # default: 8000, target/release/govfusion
"""
import http.client
import os
import subprocess
import sys
import tempfile
import threading
import time

REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
BINARY = sys.argv[2] if len(sys.argv) > 2 else "target/release/govfusion"
PORT = 18181
THREADS = 4


def ready():
    try:
        connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=1)
        connection.request("GET", "/readyz")
        return connection.getresponse().status == 200
    except OSError:
        return False


def main():
    work = tempfile.mkdtemp(prefix="same-token.")
    env = dict(
        os.environ,
        GOVFUSION__BUS__KIND="memory",
        GOVFUSION__HTTP__BIND=f"127.0.0.1:{PORT}",
        GOVFUSION__HTTP__RATE_LIMIT__ENABLED="false",
        GOVFUSION__STORE__DATA_DIR=os.path.join(work, "data"),
        RUST_LOG="warn",
    )
    with open(os.path.join(work, "serve.log"), "w") as log:
        serve = subprocess.Popen([BINARY, "serve"], env=env, stdout=log, stderr=log)
    try:
        while not ready():
            time.sleep(0.1)
        token = subprocess.check_output(
            [BINARY, "token", "--role", "applicant", "--sub", "same-token"], env=env, text=True
        ).strip()

        def client():
            connection = http.client.HTTPConnection("127.0.0.1", PORT)
            for _ in range(REQUESTS // THREADS):
                connection.request(
                    "GET", "/api/v1/applicants/me/cases", headers={"authorization": f"Bearer {token}"}
                )
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"answered {response.status}")

        threads = [threading.Thread(target=client) for _ in range(THREADS)]
        started = time.time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        print(f"{round(REQUESTS / (time.time() - started))} requests/s ({REQUESTS} requests, {THREADS} clients, one token)")
    finally:
        serve.kill()
        serve.wait()


if __name__ == "__main__":
    main()
