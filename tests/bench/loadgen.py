"""A bounded HTTPS load generator for the deploy benchmark and tests.

Sends GET requests through the edge's port published on loopback, from a few
threads with keep-alive connections, at no more than `rate` requests per
second, and stops by itself after `max_requests` or `max_seconds`. Every
request is recorded (start time, latency, outcome) so that a caller can mark
phases ("baseline", "switch", ...) and get figures per phase.

    with LoadGenerator("127.0.0.1", 8443, host="quiz.aiquiz.lab") as load:
        load.mark("baseline"); time.sleep(5)
        load.mark("deploy"); run_the_deploy()
    print(load.summary())

Only loopback targets are accepted.
"""

import http.client
import ipaddress
import json
import ssl
import threading
import time

PATHS = ("/api/quizzes", "/version", "/")
# Errors of a request on a connection the server closed before answering.
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    idx = min(len(ordered) - 1, max(0, int(round(pct / 100.0 * len(ordered) + 0.5)) - 1))
    return round(ordered[idx], 2)


class LoadGenerator:
    """Threads sending GETs until stop(), max_requests or max_seconds."""

    def __init__(self, address, port, host=None, paths=PATHS, rate=300, threads=8,
                 max_requests=60000, max_seconds=600, timeout=5.0):
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError("load only goes to loopback, not %s" % address)
        self.address, self.port, self.host = address, port, host or address
        self.paths, self.rate, self.threads = paths, rate, threads
        self.max_requests, self.max_seconds, self.timeout = max_requests, max_seconds, timeout
        self.records = []          # (t_start, latency_ms, ok, detail, release)
        self.marks = [(0.0, "start")]
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []
        self._sent = 0
        self.retries = 0
        self._t0 = None

    # -- control
    def start(self):
        self._t0 = time.monotonic()
        for i in range(self.threads):
            worker = threading.Thread(target=self._run, args=(i,), daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self):
        self._stop.set()
        for worker in self._workers:
            worker.join(self.timeout + 2)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def now(self):
        return time.monotonic() - self._t0

    def mark(self, name):
        with self._lock:
            self.marks.append((self.now(), name))

    # -- the work
    def _connect(self):
        ctx = ssl.create_default_context()
        # The edge's bootstrap certificate is self-signed; the target is loopback.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(self.address, self.port, timeout=self.timeout, context=ctx)

    def _take_slot(self):
        with self._lock:
            if self._sent >= self.max_requests:
                return None
            slot = self._sent
            self._sent += 1
        due = slot / float(self.rate)
        return due

    def _run(self, index):
        conn = None
        n = 0
        while not self._stop.is_set():
            due = self._take_slot()
            if due is None or self.now() > self.max_seconds:
                break
            delay = due - self.now()
            if delay > 0:
                if self._stop.wait(delay):
                    break
            path = self.paths[(index + n) % len(self.paths)]
            n += 1
            started = self.now()
            ok, detail, release = False, "", None
            for attempt in (1, 2):
                reused = conn is not None
                try:
                    if conn is None:
                        conn = self._connect()
                    conn.request("GET", path, headers={"Host": self.host, "User-Agent": "aiquiz-loadgen"})
                    resp = conn.getresponse()
                    body = resp.read()
                    ok = 200 <= resp.status < 400
                    detail = str(resp.status)
                    if ok and path == "/version":
                        release = json.loads(body).get("release")
                    if resp.getheader("Connection", "").lower() == "close":
                        conn.close()
                        conn = None
                    break
                except STALE as exc:
                    if conn is not None:
                        conn.close()
                    conn = None
                    detail = type(exc).__name__ + ": " + str(exc)[:120]
                    # A kept-alive connection the server closed as the request
                    # went out (a graceful reload closes idle ones): like
                    # browsers and RFC 9112 9.3.1, retry a GET once on a new
                    # connection. A new connection that fails is a failure.
                    if reused and attempt == 1:
                        with self._lock:
                            self.retries += 1
                        continue
                    break
                except (OSError, http.client.HTTPException, ValueError) as exc:
                    detail = type(exc).__name__ + ": " + str(exc)[:120]
                    if conn is not None:
                        conn.close()
                    conn = None
                    break
            latency = (self.now() - started) * 1000.0
            with self._lock:
                self.records.append((started, latency, ok, detail, release))
        if conn is not None:
            conn.close()

    # -- figures
    def phases(self):
        """[(name, start, end)] from the marks."""
        with self._lock:
            marks = list(self.marks)
            end = max([r[0] for r in self.records] + [m[0] for m in marks] + [0.0]) + 1
        return [(name, start, marks[i + 1][0] if i + 1 < len(marks) else end)
                for i, (start, name) in enumerate(marks)]

    def served(self, release):
        """(first, last) time a /version answer named this release, or None."""
        with self._lock:
            times = [r[0] for r in self.records if r[4] == release]
        return (round(min(times), 2), round(max(times), 2)) if times else None

    def summary(self):
        with self._lock:
            records = list(self.records)
        out = {"requests": len(records), "failed": sum(1 for r in records if not r[2]),
               "rate_limit_rps": self.rate, "stale_keepalive_retries": self.retries, "phases": {}}
        failures = {}
        for r in records:
            if not r[2]:
                failures[r[3]] = failures.get(r[3], 0) + 1
        out["failures"] = failures
        for name, start, end in self.phases():
            chunk = [r for r in records if start <= r[0] < end]
            lat = [r[1] for r in chunk if r[2]]
            out["phases"][name] = {"seconds": round(end - start, 2), "requests": len(chunk),
                                   "failed": sum(1 for r in chunk if not r[2]),
                                   "p50_ms": percentile(lat, 50), "p99_ms": percentile(lat, 99)}
        return out


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--host", default="quiz.aiquiz.lab")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    gen = LoadGenerator(args.address, args.port, host=args.host, rate=args.rate,
                        max_requests=int(args.rate * args.seconds), max_seconds=args.seconds)
    with gen:
        time.sleep(args.seconds)
    print(json.dumps(gen.summary(), indent=2))
