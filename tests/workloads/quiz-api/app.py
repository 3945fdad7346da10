"""quiz-api: the lab workload's JSON API (tests/workloads, CONTRACT in docs/admin/lab.md).

Commands: `serve` (default) listens on 8080; `migrate` applies the pending
migrations and prints {"applied": [...], "schema": N}.
"""

import json
import os
import re
import sys
import threading
import time
import uuid

os.environ.setdefault("QUIZ_SERVICE", "quiz-api")

import quizcommon as qc  # noqa: E402  pylint: disable=wrong-import-position

DATABASE_URL = os.environ.get("QUIZ_DATABASE_URL", "")
REDIS_URL = os.environ.get("QUIZ_REDIS_URL", "")
AMQP_URL = os.environ.get("QUIZ_AMQP_URL", "")
QUEUE = os.environ.get("QUIZ_EVENTS_QUEUE", "quiz.events")
# Prefix of the Redis keys: set it apart when several databases share one Redis.
CACHE_PREFIX = os.environ.get("QUIZ_CACHE_PREFIX", "quiz")
# GET /debug/sleep?ms=N answers after N ms (at most 10 s): drain tests only.
DEBUG_ENDPOINTS = os.environ.get("QUIZ_DEBUG_ENDPOINTS", "0") == "1"
REQUIRED = qc.required_schema()
CATEGORIES = REQUIRED >= 2   # 1.1.0 and later read and write quizzes.category
LIST_LIMIT = 50
LIST_TTL = 2                 # seconds a cached quiz list lives in Redis
ITEM_TTL = 300

POOL = qc.Pool(DATABASE_URL, size=int(os.environ.get("QUIZ_DB_POOL", "8")), app_name="quiz-api")
REDIS_BREAKER = qc.Breaker("redis")
AMQP_BREAKER = qc.Breaker("rabbitmq")
DB_BREAKER = qc.Breaker("database", cooldown=1.0)
_REDIS = None
_SCHEMA = {"at": 0.0, "value": None, "error": None}
_SCHEMA_LOCK = threading.Lock()
OUTBOX_WAKE = threading.Event()
STOPPING = threading.Event()


def redis_client():
    global _REDIS  # pylint: disable=global-statement
    if not REDIS_URL or REDIS_BREAKER.open():
        return None
    if _REDIS is None:
        import redis  # pylint: disable=import-outside-toplevel
        _REDIS = redis.Redis.from_url(REDIS_URL, socket_timeout=0.3, socket_connect_timeout=0.3,
                                      health_check_interval=30, **qc.redis_tls_args(REDIS_URL))
    return _REDIS


def cache_get(key):
    client = redis_client()
    if client is None:
        return None
    try:
        value = client.get(key)
        REDIS_BREAKER.ok()
        return value
    except Exception as exc:  # pylint: disable=broad-except
        REDIS_BREAKER.fail(exc)
        return None


def cache_set(key, value, ttl):
    client = redis_client()
    if client is None:
        return
    try:
        client.set(key, value, ex=ttl)
        REDIS_BREAKER.ok()
    except Exception as exc:  # pylint: disable=broad-except
        REDIS_BREAKER.fail(exc)


def cache_delete(*keys):
    client = redis_client()
    if client is None:
        return
    try:
        client.delete(*keys)
        REDIS_BREAKER.ok()
    except Exception as exc:  # pylint: disable=broad-except
        REDIS_BREAKER.fail(exc)


def db_schema(max_age=1.0):
    """The database's schema version (cached for max_age seconds); None when unreachable."""
    with _SCHEMA_LOCK:
        if time.monotonic() - _SCHEMA["at"] < max_age:
            return _SCHEMA["value"], _SCHEMA["error"]
        try:
            with POOL.connection(wait=2) as conn, conn.cursor() as cur:
                value, error = qc.current_schema(cur), None
            DB_BREAKER.ok()
        except Exception as exc:  # pylint: disable=broad-except
            value, error = None, str(exc).strip()[:300]
            DB_BREAKER.fail(exc)
        _SCHEMA.update(at=time.monotonic(), value=value, error=error)
        return value, error


def row_to_quiz(row):
    quiz = {"id": row[0], "title": row[1], "questions": row[2], "created_at": row[3].isoformat()}
    if CATEGORIES:
        quiz["category"] = row[4] or "general"
    return quiz


COLUMNS = "id, title, questions, created_at" + (", category" if CATEGORIES else "")


def list_quizzes(category=None):
    key = "%s:list:s%d:%s" % (CACHE_PREFIX, REQUIRED, category or "")
    cached = cache_get(key)
    if cached is not None:
        return cached, "hit"
    if category and CATEGORIES:
        rows = POOL.query("SELECT %s FROM quizzes WHERE COALESCE(category, 'general') = %%s "
                          "ORDER BY id DESC LIMIT %d" % (COLUMNS, LIST_LIMIT), (category,))
    else:
        rows = POOL.query("SELECT %s FROM quizzes ORDER BY id DESC LIMIT %d" % (COLUMNS, LIST_LIMIT))
    body = json.dumps({"quizzes": [row_to_quiz(r) for r in rows]}, separators=(",", ":")).encode()
    cache_set(key, body, LIST_TTL)
    return body, "miss"


def get_quiz(quiz_id):
    key = "%s:item:s%d:%d" % (CACHE_PREFIX, REQUIRED, quiz_id)
    cached = cache_get(key)
    if cached is not None:
        return cached, "hit"
    row = POOL.query("SELECT %s FROM quizzes WHERE id = %%s" % COLUMNS, (quiz_id,), fetch="one")
    if row is None:
        return None, "miss"
    body = json.dumps(row_to_quiz(row), separators=(",", ":")).encode()
    cache_set(key, body, ITEM_TTL)
    return body, "miss"


def create_quiz(data):
    title = data.get("title")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        raise ValueError("title: a string of 1 to 200 characters is required")
    questions = data.get("questions", [])
    if not isinstance(questions, list):
        raise ValueError("questions: must be a list")
    event_id = str(uuid.uuid4())
    columns, values, args = "title, questions", "%s, %s", [title.strip(), json.dumps(questions)]
    if CATEGORIES:
        category = data.get("category", "general")
        if not isinstance(category, str) or not re.fullmatch(r"[a-z0-9_-]{1,40}", category):
            raise ValueError("category: 1 to 40 of a-z, 0-9, _ and -")
        columns, values = columns + ", category", values + ", %s"
        args.append(category)
    # The quiz and its event land in one statement: the outbox publisher
    # sends the event to RabbitMQ, now or once RabbitMQ is back.
    sql = ("WITH q AS (INSERT INTO quizzes (%s) VALUES (%s) RETURNING %s), "
           "o AS (INSERT INTO quiz_outbox (event_id, routing_key, payload) "
           "SELECT %%s, %%s, json_build_object('event_id', %%s::text, 'kind', 'quiz.created', "
           "'quiz_id', q.id, 'release', %%s::text) FROM q) SELECT * FROM q") % (columns, values, COLUMNS)
    row = POOL.query(sql, args + [event_id, QUEUE, event_id, qc.RELEASE], fetch="one", retry=False)
    cache_delete("%s:list:s1:" % CACHE_PREFIX, "%s:list:s2:" % CACHE_PREFIX)
    OUTBOX_WAKE.set()
    return row_to_quiz(row), event_id


class Publisher:
    """Sends the outbox's pending events to the quiz.events queue (at least once)."""

    def __init__(self):
        self.conn = None
        self.channel = None

    def connect(self):
        import pika  # pylint: disable=import-outside-toplevel
        params = qc.amqp_parameters(AMQP_URL)
        params.socket_timeout = 3
        params.blocked_connection_timeout = 10
        params.connection_attempts = 1
        self.conn = pika.BlockingConnection(params)
        self.channel = self.conn.channel()
        self.channel.queue_declare(queue=QUEUE, durable=True, arguments=qc.events_queue_arguments())
        self.channel.confirm_delivery()

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # pylint: disable=broad-except
                pass
        self.conn = self.channel = None

    def ensure(self):
        if self.conn is None or self.conn.is_closed:
            self.close()
            self.connect()
            AMQP_BREAKER.ok()
        else:
            self.conn.process_data_events(time_limit=0)  # heartbeats

    def flush(self):
        import pika  # pylint: disable=import-outside-toplevel
        import psycopg2  # pylint: disable=import-outside-toplevel
        sent = 0
        with POOL.connection(wait=2) as conn, conn.cursor() as cur:
            cur.execute("BEGIN")
            try:
                cur.execute("SELECT id, routing_key, payload FROM quiz_outbox WHERE published_at IS NULL "
                            "ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED")
                rows = cur.fetchall()
                for _id, routing_key, payload in rows:
                    self.channel.basic_publish(
                        exchange="", routing_key=routing_key, body=json.dumps(payload),
                        properties=pika.BasicProperties(delivery_mode=2, content_type="application/json",
                                                        message_id=payload.get("event_id")),
                        mandatory=False)
                    sent += 1
                if rows:
                    cur.execute("UPDATE quiz_outbox SET published_at = now() WHERE id = ANY(%s)",
                                ([r[0] for r in rows],))
                cur.execute("COMMIT")
            except (psycopg2.errors.UndefinedTable, psycopg2.errors.InFailedSqlTransaction):
                cur.execute("ROLLBACK")
                return 0  # not migrated yet
            except Exception:
                cur.execute("ROLLBACK")
                raise
        return sent

    def run(self):
        while not STOPPING.is_set():
            OUTBOX_WAKE.wait(2.0)
            OUTBOX_WAKE.clear()
            if not AMQP_URL or AMQP_BREAKER.open():
                continue
            try:
                self.ensure()
            except Exception as exc:  # pylint: disable=broad-except
                AMQP_BREAKER.fail(exc)
                self.close()
                continue
            try:
                sent = self.flush()
                if sent:
                    qc.log("info", "events published", count=sent, queue=QUEUE)
                    OUTBOX_WAKE.set()  # maybe more pending
            except qc.DatabaseUnavailable as exc:
                DB_BREAKER.fail(exc)
            except Exception as exc:  # pylint: disable=broad-except
                name = type(exc).__module__
                if name.startswith("pika"):
                    AMQP_BREAKER.fail(exc)
                    self.close()
                else:
                    qc.log("warning", "outbox flush failed", error=str(exc).strip()[:300])
        self.close()


ITEM = re.compile(r"^/api/quizzes/(\d{1,18})$")


class ApiHandler(qc.Handler):

    def do_HEAD(self):  # noqa: N802
        self.do_GET()

    def do_GET(self):  # noqa: N802
        path, _sep, query = self.path.partition("?")
        try:
            if path == "/healthz":
                return self.respond(200, {"status": "ok", "release": qc.RELEASE})
            if path == "/readyz":
                return self.readyz()
            if path == "/version":
                schema, _err = db_schema()
                return self.respond(200, {"release": qc.RELEASE, "schema": schema, "schema_required": REQUIRED})
            if path == "/api/quizzes":
                params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                body, cache = list_quizzes(params.get("category"))
                return self.respond(200, body, headers={"X-Cache": cache})
            match = ITEM.match(path)
            if match:
                body, cache = get_quiz(int(match.group(1)))
                if body is None:
                    return self.respond(404, {"error": "no such quiz"})
                return self.respond(200, body, headers={"X-Cache": cache})
            if path == "/debug/sleep" and DEBUG_ENDPOINTS:
                params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
                delay = min(int(params.get("ms", "1000")), 10000) / 1000.0
                time.sleep(delay)
                return self.respond(200, {"slept_ms": int(delay * 1000)})
            if path == "/api/stats":
                rows = POOL.query("SELECT kind, count FROM quiz_event_counts ORDER BY kind")
                pending = POOL.query("SELECT count(*) FROM quiz_outbox WHERE published_at IS NULL", fetch="one")[0]
                return self.respond(200, {"events_consumed": dict(rows), "events_pending": pending})
            return self.respond(404, {"error": "not found"})
        except qc.DatabaseUnavailable as exc:
            DB_BREAKER.fail(exc)
            return self.respond(503, {"error": "database unavailable"}, headers={"Retry-After": "1"})
        except Exception as exc:  # pylint: disable=broad-except
            qc.log("error", "request failed", path=self.path, error=repr(exc)[:300])
            return self.respond(500, {"error": "internal error"})

    def do_POST(self):  # noqa: N802
        if self.path.partition("?")[0] != "/api/quizzes":
            return self.respond(404, {"error": "not found"})
        try:
            data = self.read_json()
            if not isinstance(data, dict):
                raise ValueError("a JSON object is required")
            quiz, event_id = create_quiz(data)
            return self.respond(201, quiz, headers={"Location": "/api/quizzes/%d" % quiz["id"],
                                                    "X-Event-Id": event_id})
        except (ValueError, UnicodeDecodeError) as exc:
            return self.respond(400, {"error": str(exc)})
        except qc.DatabaseUnavailable as exc:
            DB_BREAKER.fail(exc)
            return self.respond(503, {"error": "database unavailable"}, headers={"Retry-After": "1"})
        except Exception as exc:  # pylint: disable=broad-except
            qc.log("error", "request failed", path=self.path, error=repr(exc)[:300])
            return self.respond(500, {"error": "internal error"})

    def readyz(self):
        schema, error = db_schema()
        checks = {
            "database": "ok" if schema is not None else "down",
            "schema": schema, "schema_required": REQUIRED,
            "redis": "disabled" if not REDIS_URL else REDIS_BREAKER.state(),
            "rabbitmq": "disabled" if not AMQP_URL else AMQP_BREAKER.state(),
        }
        reason = None
        if qc.FAIL_READY:
            reason = "this build fails readiness on purpose (FAIL_READY=1)"
        elif schema is None:
            reason = "database unreachable: %s" % error
        elif schema < REQUIRED:
            reason = "schema %d is older than the %d this release needs (run migrate)" % (schema, REQUIRED)
        body = {"ready": reason is None, "release": qc.RELEASE, "checks": checks}
        if reason:
            body["reason"] = reason
        return self.respond(200 if reason is None else 503, body)


def main(argv):
    command = argv[1] if len(argv) > 1 else "serve"
    refused = qc.insecure_urls(REDIS_URL, AMQP_URL)
    if refused:
        qc.LOG_STREAM = sys.stderr if command == "migrate" else qc.LOG_STREAM
        qc.log("error", "refusing to start", problems=refused)
        return 2
    if command == "migrate":
        qc.LOG_STREAM = sys.stderr
        if not DATABASE_URL:
            qc.log("error", "QUIZ_DATABASE_URL is not set")
            return 2
        try:
            applied, schema = qc.migrate(DATABASE_URL, wait=float(os.environ.get("QUIZ_MIGRATE_WAIT", "30")))
        except Exception as exc:  # pylint: disable=broad-except
            qc.log("error", "migrate failed", error=str(exc).strip()[:500], database=qc.redact(DATABASE_URL))
            return 1
        print(json.dumps({"applied": applied, "schema": schema}), flush=True)
        return 0
    if command == "serve":
        publisher = threading.Thread(target=Publisher().run, name="outbox", daemon=True)
        publisher.start()
        qc.log("info", "starting", database=qc.redact(DATABASE_URL), redis=qc.redact(REDIS_URL),
               amqp=qc.redact(AMQP_URL))
        return qc.serve(ApiHandler, on_stop=STOPPING.set)
    print("usage: app.py [serve|migrate]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
