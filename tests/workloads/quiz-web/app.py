"""quiz-web: the lab workload's HTML front end; it renders the API's quizzes."""

import html
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

os.environ.setdefault("QUIZ_SERVICE", "quiz-web")

import quizcommon as qc  # noqa: E402  pylint: disable=wrong-import-position

API_URL = os.environ.get("QUIZ_API_URL", "http://api:8080").rstrip("/")
_API_STATE = {"at": 0.0, "ok": False, "error": None, "version": None}
_API_LOCK = threading.Lock()


def api_get(path, timeout=2.0):
    with urllib.request.urlopen(API_URL + path, timeout=timeout) as resp:  # noqa: S310 (lab URL)
        return resp.status, json.loads(resp.read() or b"null")


def api_state(max_age=1.0):
    """Is the API answering /healthz? Cached for max_age seconds."""
    with _API_LOCK:
        if time.monotonic() - _API_STATE["at"] >= max_age:
            try:
                status, _body = api_get("/healthz", timeout=1.0)
                ok, error = status == 200, None if status == 200 else "status %d" % status
            except (OSError, ValueError) as exc:
                ok, error = False, str(exc)[:200]
            _API_STATE.update(at=time.monotonic(), ok=ok, error=error)
        return _API_STATE["ok"], _API_STATE["error"]


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>AI Quiz</title></head>
<body><h1>AI Quiz</h1>
<p class="release">web {release}</p>
<ul>
{items}
</ul></body></html>
"""


class WebHandler(qc.Handler):

    def do_HEAD(self):  # noqa: N802
        self.do_GET()

    def do_GET(self):  # noqa: N802
        path = self.path.partition("?")[0]
        if path == "/healthz":
            return self.respond(200, {"status": "ok", "release": qc.RELEASE})
        if path == "/readyz":
            ok, error = api_state()
            if qc.FAIL_READY:
                ok, error = False, "this build fails readiness on purpose (FAIL_READY=1)"
            body = {"ready": ok, "release": qc.RELEASE, "checks": {"api": "ok" if api_state()[0] else "down"}}
            if not ok:
                body["reason"] = error
            return self.respond(200 if ok else 503, body)
        if path == "/version":
            try:
                _status, api = api_get("/version", timeout=1.0)
            except (OSError, ValueError):
                api = None
            return self.respond(200, {"release": qc.RELEASE, "schema": (api or {}).get("schema"), "api": api})
        if path in ("/", "/index.html"):
            try:
                _status, data = api_get("/api/quizzes")
            except (OSError, ValueError) as exc:
                qc.log("warning", "api unavailable", error=str(exc)[:200])
                return self.respond(502, "<!doctype html><title>AI Quiz</title><p>The quiz API is unavailable.</p>\n",
                                    ctype="text/html", headers={"Retry-After": "1"})
            items = "\n".join(
                '<li data-id="%d">%s%s</li>' % (
                    q["id"], html.escape(q["title"]),
                    " <small>%s</small>" % html.escape(q["category"]) if "category" in q else "")
                for q in data.get("quizzes", []))
            return self.respond(200, PAGE.format(release=html.escape(qc.RELEASE), items=items), ctype="text/html")
        return self.respond(404, {"error": "not found"})


def main(argv):
    command = argv[1] if len(argv) > 1 else "serve"
    if command != "serve":
        print("usage: app.py [serve]", file=sys.stderr)
        return 2
    qc.log("info", "starting", api=API_URL)
    return qc.serve(WebHandler)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
