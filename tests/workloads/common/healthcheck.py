"""Docker HEALTHCHECK of the workload images: liveness only (/healthz, or the
worker's heartbeat file), never readiness."""

import os
import sys
import time
import urllib.request

if os.environ.get("QUIZ_SERVICE") == "quiz-worker" or (len(sys.argv) > 1 and sys.argv[1] == "worker"):
    path = os.environ.get("QUIZ_WORKER_ALIVE_FILE", "/tmp/quiz-worker.alive")
    try:
        sys.exit(0 if time.time() - os.stat(path).st_mtime < 30 else 1)
    except OSError:
        sys.exit(1)
try:
    with urllib.request.urlopen("http://127.0.0.1:%s/healthz" % os.environ.get("QUIZ_PORT", "8080"),
                                timeout=2) as resp:  # noqa: S310
        sys.exit(0 if resp.status == 200 else 1)
except OSError:
    sys.exit(1)
