"""Shared pieces of the lab workload: JSON logs, settings, the database pool,
the migrations, and an HTTP server that drains on SIGTERM.

Python 3 standard library plus python3-psycopg2 (imported lazily, so the web
service does not need a database driver to start).
"""

import contextlib
import datetime
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

RELEASE = os.environ.get("QUIZ_RELEASE", "0.0.0")
FAIL_READY = os.environ.get("QUIZ_FAIL_READY", "0") == "1"
PORT = int(os.environ.get("QUIZ_PORT", "8080"))
ACCESS_LOG = os.environ.get("QUIZ_ACCESS_LOG", "1") == "1"
# Seconds a SIGTERM'd server waits for in-flight requests before it exits.
DRAIN_SECONDS = float(os.environ.get("QUIZ_DRAIN_SECONDS", "4"))
SERVICE = os.environ.get("QUIZ_SERVICE", "quiz")
_LOG_LOCK = threading.Lock()
# Where log lines go; `migrate` sets stderr so that stdout holds only its result line.
LOG_STREAM = sys.stdout


def log(level, msg, **fields):
    """One JSON object per line on stdout."""
    now = datetime.datetime.now(datetime.timezone.utc)
    rec = {"ts": now.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (now.microsecond // 1000),
           "level": level, "service": SERVICE, "release": RELEASE, "msg": msg}
    rec.update(fields)
    line = json.dumps(rec, default=str, separators=(",", ":")) + "\n"
    with _LOG_LOCK:
        LOG_STREAM.write(line)
        LOG_STREAM.flush()


def release_tuple(release):
    parts = []
    for piece in release.split("-")[0].split("."):
        try:
            parts.append(int(piece))
        except ValueError:
            parts.append(0)
    return tuple((parts + [0, 0, 0])[:3])


def required_schema(release=RELEASE):
    """The schema version a release needs: 1.0.x needs 1, 1.1.0 and later need 2."""
    return 2 if release_tuple(release) >= (1, 1, 0) else 1


def redact(url):
    """A URL without its password, for logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    cred, host = rest.rsplit("@", 1)
    user = cred.split(":", 1)[0]
    return "%s://%s:***@%s" % (scheme, user, host)


# --------------------------------------------------------------------------
# TLS to the data services
#
# QUIZ_TLS_CA_FILE names the CA that signed the data services' certificates
# (the tls role's own CA, mounted into the container). With it, every
# connection to PostgreSQL, Redis and RabbitMQ is TLS and checks the
# server's certificate against that CA and the host name of the URL:
# PostgreSQL with sslmode=verify-full (whatever the URL says), Redis and
# RabbitMQ only through rediss:// and amqps:// URLs (a plaintext URL is
# refused, never silently used). Without it, rediss:// and amqps:// still
# check the certificate, against the system's CAs.

TLS_CA_FILE = os.environ.get("QUIZ_TLS_CA_FILE", "")


def events_queue_arguments(queue_type=None):
    """The events queue's declaration arguments: {"x-queue-type": "quorum"} where the operators
    declare it as a quorum queue (rabbitmq_queues; RabbitMQ refuses a declare whose type differs),
    None (a classic queue, as before) when QUIZ_EVENTS_QUEUE_TYPE is empty."""
    queue_type = os.environ.get("QUIZ_EVENTS_QUEUE_TYPE", "") if queue_type is None else queue_type
    if queue_type not in ("", "classic", "quorum"):
        raise ValueError("QUIZ_EVENTS_QUEUE_TYPE: %r is not classic or quorum" % queue_type)
    return {"x-queue-type": queue_type} if queue_type else None


class InsecureURL(ValueError):
    """A data service URL that would send the password and the data in clear."""


def _scheme(url):
    return url.split("://", 1)[0].lower() if "://" in url else ""


def tls_context(ca_file=None):
    """A client context that checks the certificate chain (ca_file, else the system's CAs) and the host name."""
    ca_file = TLS_CA_FILE if ca_file is None else ca_file
    ctx = ssl.create_default_context(cafile=ca_file or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def pg_tls_args(ca_file=None):
    """Keyword arguments for psycopg2.connect: with a CA file, verify-full against it (they win over the URL's)."""
    ca_file = TLS_CA_FILE if ca_file is None else ca_file
    if not ca_file:
        return {}
    return {"sslmode": "verify-full", "sslrootcert": ca_file}


def redis_tls_args(url, ca_file=None):
    """Keyword arguments for redis.Redis.from_url: certificate and host name checked for rediss://."""
    ca_file = TLS_CA_FILE if ca_file is None else ca_file
    scheme = _scheme(url)
    if scheme == "rediss":
        args = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
        if ca_file:
            args["ssl_ca_certs"] = ca_file
        return args
    if ca_file:
        raise InsecureURL("QUIZ_REDIS_URL uses %s:// (plaintext) while QUIZ_TLS_CA_FILE is set: use rediss://"
                          % (scheme or "no scheme"))
    return {}


def amqp_parameters(url, ca_file=None):
    """pika.URLParameters of url; for amqps://, TLS that checks the certificate and the URL's host name."""
    import pika  # pylint: disable=import-outside-toplevel
    ca_file = TLS_CA_FILE if ca_file is None else ca_file
    scheme = _scheme(url)
    if scheme != "amqps" and ca_file:
        raise InsecureURL("QUIZ_AMQP_URL uses %s:// (plaintext) while QUIZ_TLS_CA_FILE is set: use amqps://"
                          % (scheme or "no scheme"))
    params = pika.URLParameters(url)
    if scheme == "amqps":
        host = urllib.parse.urlsplit(url).hostname
        params.ssl_options = pika.SSLOptions(tls_context(ca_file), server_hostname=host)
    return params


def insecure_urls(redis_url="", amqp_url="", ca_file=None):
    """Why the given URLs may not be used (an empty list when they may): checked once at start."""
    problems = []
    for name, url, check in (("QUIZ_REDIS_URL", redis_url, redis_tls_args), ("QUIZ_AMQP_URL", amqp_url, None)):
        if not url:
            continue
        try:
            if check:
                check(url, ca_file)
            elif (TLS_CA_FILE if ca_file is None else ca_file) and _scheme(url) != "amqps":
                raise InsecureURL("%s uses %s:// (plaintext) while QUIZ_TLS_CA_FILE is set: use amqps://"
                                  % (name, _scheme(url) or "no scheme"))
        except InsecureURL as exc:
            problems.append(str(exc))
    ca_file = TLS_CA_FILE if ca_file is None else ca_file
    if ca_file and not os.access(ca_file, os.R_OK):
        problems.append("QUIZ_TLS_CA_FILE %s cannot be read (is it mounted into the container?)" % ca_file)
    return problems


class Breaker:
    """After a failure, skip a dependency for a few seconds instead of waiting on it per request."""

    def __init__(self, name, cooldown=3.0):
        self.name, self.cooldown = name, cooldown
        self.down_until = 0.0
        self.last_error = None

    def open(self):
        return time.monotonic() < self.down_until

    def fail(self, exc):
        first = self.down_until == 0.0 or not self.open()
        self.down_until = time.monotonic() + self.cooldown
        if first or str(exc) != self.last_error:
            log("warning", "%s unavailable" % self.name, error=str(exc).strip()[:300])
        self.last_error = str(exc)

    def ok(self):
        if self.down_until:
            log("info", "%s available again" % self.name)
        self.down_until = 0.0
        self.last_error = None

    def state(self):
        return "down" if self.open() else "ok"


# --------------------------------------------------------------------------
# Database


class DatabaseUnavailable(Exception):
    pass


class Pool:
    """A small blocking pool of autocommit psycopg2 connections, safe across threads."""

    def __init__(self, dsn, size=8, app_name="quiz"):
        self.dsn, self.app_name = dsn, app_name
        self.sem = threading.BoundedSemaphore(size)
        self.idle = []
        self.lock = threading.Lock()

    def _connect(self):
        import psycopg2  # pylint: disable=import-outside-toplevel
        conn = psycopg2.connect(self.dsn, connect_timeout=3, application_name=self.app_name, **pg_tls_args())
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SET statement_timeout = 5000")
        return conn

    @contextlib.contextmanager
    def connection(self, wait=5.0):
        if not self.dsn:
            raise DatabaseUnavailable("QUIZ_DATABASE_URL is not set")
        import psycopg2  # pylint: disable=import-outside-toplevel
        if not self.sem.acquire(timeout=wait):
            raise DatabaseUnavailable("all database connections are busy")
        conn = None
        try:
            with self.lock:
                conn = self.idle.pop() if self.idle else None
            if conn is None or conn.closed:
                try:
                    conn = self._connect()
                except psycopg2.Error as exc:
                    conn = None
                    raise DatabaseUnavailable(str(exc).strip()) from exc
            try:
                yield conn
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                conn.close()
                raise
        finally:
            if conn is not None and not conn.closed:
                # An explicit BEGIN left open by an error: roll it back before reuse.
                try:
                    if conn.get_transaction_status() != 0:  # TRANSACTION_STATUS_IDLE
                        with conn.cursor() as cur:
                            cur.execute("ROLLBACK")
                    with self.lock:
                        self.idle.append(conn)
                except psycopg2.Error:
                    conn.close()
            self.sem.release()

    def query(self, sql, args=(), fetch="all", retry=True):
        """Run one statement; on a broken connection retry once on a fresh one."""
        if not self.dsn:
            raise DatabaseUnavailable("QUIZ_DATABASE_URL is not set")
        import psycopg2  # pylint: disable=import-outside-toplevel
        for attempt in (1, 2):
            try:
                with self.connection() as conn, conn.cursor() as cur:
                    cur.execute(sql, args)
                    if fetch == "all":
                        return cur.fetchall()
                    if fetch == "one":
                        return cur.fetchone()
                    return cur.rowcount
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if attempt == 2 or not retry:
                    raise DatabaseUnavailable(str(exc).strip()) from exc
        return None


# Expand/contract: every migration only adds, so the previous release keeps
# working on the new schema. A later "contract" migration (say, category NOT
# NULL) may only land once no release older than 1.1.0 runs.
MIGRATIONS = [
    (1, "001_quizzes", [
        """CREATE TABLE IF NOT EXISTS quizzes (
               id bigserial PRIMARY KEY,
               title text NOT NULL,
               questions jsonb NOT NULL DEFAULT '[]'::jsonb,
               created_at timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE IF NOT EXISTS quiz_outbox (
               id bigserial PRIMARY KEY,
               event_id text NOT NULL UNIQUE,
               routing_key text NOT NULL,
               payload jsonb NOT NULL,
               created_at timestamptz NOT NULL DEFAULT now(),
               published_at timestamptz)""",
        "CREATE INDEX IF NOT EXISTS quiz_outbox_pending ON quiz_outbox (id) WHERE published_at IS NULL",
        """CREATE TABLE IF NOT EXISTS quiz_events (
               event_id text PRIMARY KEY,
               kind text NOT NULL,
               quiz_id bigint,
               received_at timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE IF NOT EXISTS quiz_event_counts (
               kind text PRIMARY KEY,
               count bigint NOT NULL DEFAULT 0)""",
    ]),
    # Expand: a nullable column (1.0.0 never writes it), backfilled, indexed.
    (2, "002_quiz_category", [
        "ALTER TABLE quizzes ADD COLUMN IF NOT EXISTS category text",
        "UPDATE quizzes SET category = 'general' WHERE category IS NULL",
        "CREATE INDEX IF NOT EXISTS quizzes_category_id ON quizzes (category, id)",
    ]),
]
MIGRATION_LOCK = 724_001  # pg advisory lock key shared by every release
SCHEMA_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    release text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


def current_schema(cur):
    """The highest applied migration, 0 on an empty database."""
    cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not cur.fetchone()[0]:
        return 0
    cur.execute("SELECT COALESCE(max(version), 0) FROM schema_migrations")
    return cur.fetchone()[0]


def migrate(dsn, target=None, wait=30.0):
    """Apply the pending migrations up to target under the advisory lock.
    Returns (applied names, schema after)."""
    import psycopg2  # pylint: disable=import-outside-toplevel
    target = required_schema() if target is None else target
    deadline = time.monotonic() + wait
    while True:
        try:
            conn = psycopg2.connect(dsn, connect_timeout=5, application_name="quiz-migrate", **pg_tls_args())
            break
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise DatabaseUnavailable(str(exc).strip()) from exc
            time.sleep(1)
    conn.autocommit = True
    applied = []
    try:
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = '60s'")
            cur.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                cur.execute(SCHEMA_TABLE)
                cur.execute("SELECT version FROM schema_migrations")
                done = {row[0] for row in cur.fetchall()}
                for version, name, statements in MIGRATIONS:
                    if version > target or version in done:
                        continue
                    started = time.monotonic()
                    cur.execute("BEGIN")
                    try:
                        for stmt in statements:
                            cur.execute(stmt)
                        cur.execute("INSERT INTO schema_migrations (version, name, release) VALUES (%s, %s, %s)",
                                    (version, name, RELEASE))
                        cur.execute("COMMIT")
                    except Exception:
                        cur.execute("ROLLBACK")
                        raise
                    applied.append(name)
                    log("info", "migration applied", migration=name,
                        ms=round((time.monotonic() - started) * 1000, 1))
                schema = current_schema(cur)
            finally:
                cur.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    finally:
        conn.close()
    return applied, schema


# --------------------------------------------------------------------------
# HTTP


class Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its connections, so SIGTERM can stop
    accepting, close idle keep-alive connections and let in-flight requests finish."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, handler):
        super().__init__(addr, handler)
        self.draining = False
        self.conns = {}
        self.conns_lock = threading.Lock()

    def track(self, sock, busy):
        with self.conns_lock:
            if busy is None:
                self.conns.pop(sock, None)
            else:
                self.conns[sock] = busy

    def drain(self, grace):
        """Stop accepting, then wait up to grace seconds for in-flight requests."""
        self.draining = True
        self.shutdown()          # the accept loop ends
        self.socket.close()      # new connections are refused from now on
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self.conns_lock:
                idle = [s for s, busy in self.conns.items() if not busy]
                left = len(self.conns)
            for sock in idle:   # idle keep-alive connections: wake their reader
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            if not left:
                return 0
            time.sleep(0.05)
        with self.conns_lock:
            return sum(1 for busy in self.conns.values() if busy)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "quiz"
    sys_version = ""
    # Idle keep-alive connections close after this (longer than nginx's 60 s).
    timeout = 75
    # Headers and body are two writes: without TCP_NODELAY, Nagle and the
    # client's delayed ACK add about 40 ms to every keep-alive response.
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.server.track(self.connection, False)
        self._started = 0.0

    def finish(self):
        with contextlib.suppress(OSError):
            super().finish()
        self.server.track(self.connection, None)

    def parse_request(self):
        self.server.track(self.connection, True)
        self._started = time.monotonic()
        return super().parse_request()

    def handle_one_request(self):
        try:
            super().handle_one_request()
        finally:
            self.server.track(self.connection, False)
            if self.server.draining:
                self.close_connection = True

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass  # access logs are written by respond()

    def log_error(self, format, *args):  # pylint: disable=redefined-builtin
        log("warning", "http error", detail=format % args)

    def respond(self, status, body, ctype="application/json", headers=None):
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body, default=str, separators=(",", ":"))
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype + ("; charset=utf-8" if not ctype.endswith("json") else ""))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Quiz-Release", RELEASE)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.server.draining:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if ACCESS_LOG:
            log("info", "request", method=self.command, path=self.path, status=status,
                ms=round((time.monotonic() - self._started) * 1000, 1), client=self.client_address[0])

    def read_json(self, limit=65536):
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            raise ValueError("body larger than %d bytes" % limit)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")


def serve(handler, on_stop=None):
    """Serve on 0.0.0.0:PORT until SIGTERM or SIGINT, then drain and return the exit code."""
    server = Server(("0.0.0.0", PORT), handler)
    stop = threading.Event()
    signame = {}

    def on_signal(signum, _frame):
        signame["name"] = signal.Signals(signum).name
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              name="accept", daemon=True)
    thread.start()
    log("info", "listening", port=PORT, required_schema=required_schema(), fail_ready=FAIL_READY)
    while not stop.wait(1.0):
        pass
    started = time.monotonic()
    log("info", "draining", signal=signame.get("name"), grace_s=DRAIN_SECONDS)
    if on_stop:
        on_stop()
    left = server.drain(DRAIN_SECONDS)
    log("info" if not left else "warning", "stopped", in_flight_dropped=left,
        ms=round((time.monotonic() - started) * 1000, 1))
    return 0
