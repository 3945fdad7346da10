"""quiz-worker: consumes the quiz.events queue and records each event once
(quiz_events, keyed by event id) and a counter per kind (quiz_event_counts)."""

import json
import os
import signal
import sys
import threading
import time

os.environ.setdefault("QUIZ_SERVICE", "quiz-worker")

import quizcommon as qc  # noqa: E402  pylint: disable=wrong-import-position

DATABASE_URL = os.environ.get("QUIZ_DATABASE_URL", "")
AMQP_URL = os.environ.get("QUIZ_AMQP_URL", "")
QUEUE = os.environ.get("QUIZ_EVENTS_QUEUE", "quiz.events")
ALIVE = os.environ.get("QUIZ_WORKER_ALIVE_FILE", "/tmp/quiz-worker.alive")
STOP = threading.Event()
POOL = qc.Pool(DATABASE_URL, size=2, app_name="quiz-worker")

RECORD = ("WITH ins AS (INSERT INTO quiz_events (event_id, kind, quiz_id) VALUES (%s, %s, %s) "
          "ON CONFLICT (event_id) DO NOTHING RETURNING kind) "
          "INSERT INTO quiz_event_counts (kind, count) SELECT kind, 1 FROM ins "
          "ON CONFLICT (kind) DO UPDATE SET count = quiz_event_counts.count + 1")


def touch():
    try:
        with open(ALIVE, "w", encoding="utf-8") as fh:
            fh.write(str(time.time()))
    except OSError:
        pass


def record(body):
    event = json.loads(body)
    POOL.query(RECORD, (str(event["event_id"]), str(event.get("kind", "unknown")), event.get("quiz_id")),
               fetch=None)
    return event


def consume_once():
    """One AMQP session: returns when STOP is set; raises on connection trouble."""
    import pika  # pylint: disable=import-outside-toplevel
    import psycopg2  # pylint: disable=import-outside-toplevel
    params = qc.amqp_parameters(AMQP_URL)
    params.socket_timeout = 3
    params.connection_attempts = 1
    conn = pika.BlockingConnection(params)
    try:
        channel = conn.channel()
        channel.queue_declare(queue=QUEUE, durable=True, arguments=qc.events_queue_arguments())
        channel.basic_qos(prefetch_count=20)
        qc.log("info", "consuming", queue=QUEUE)
        for method, _props, body in channel.consume(QUEUE, inactivity_timeout=1.0):
            touch()
            if STOP.is_set():
                break
            if method is None:
                continue
            try:
                event = record(body)
                channel.basic_ack(method.delivery_tag)
                qc.log("info", "event recorded", event_id=event.get("event_id"), kind=event.get("kind"),
                       quiz_id=event.get("quiz_id"))
            except (ValueError, KeyError, TypeError) as exc:
                qc.log("error", "malformed event dropped", error=str(exc)[:200])
                channel.basic_reject(method.delivery_tag, requeue=False)
            except (qc.DatabaseUnavailable, psycopg2.Error) as exc:
                qc.log("warning", "database unavailable, event requeued", error=str(exc).strip()[:200])
                channel.basic_nack(method.delivery_tag, requeue=True)
                STOP.wait(1.0)
        channel.cancel()
    finally:
        try:
            conn.close()
        except Exception:  # pylint: disable=broad-except
            pass


def main(argv):
    command = argv[1] if len(argv) > 1 else "serve"
    if command != "serve":
        print("usage: app.py [serve]", file=sys.stderr)
        return 2
    if not AMQP_URL or not DATABASE_URL:
        qc.log("error", "QUIZ_AMQP_URL and QUIZ_DATABASE_URL are required")
        return 2
    refused = qc.insecure_urls(amqp_url=AMQP_URL)
    if refused:
        qc.log("error", "refusing to start", problems=refused)
        return 2

    def on_signal(signum, _frame):
        qc.log("info", "stopping", signal=signal.Signals(signum).name)
        STOP.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    qc.log("info", "starting", database=qc.redact(DATABASE_URL), amqp=qc.redact(AMQP_URL))
    touch()
    while not STOP.is_set():
        try:
            consume_once()
        except Exception as exc:  # pylint: disable=broad-except
            qc.log("warning", "rabbitmq unavailable, retrying", error=(str(exc) or type(exc).__name__)[:200])
            touch()
            STOP.wait(2.0)
    qc.log("info", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
