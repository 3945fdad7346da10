"""Watch the edge's JSON access log while a canary takes traffic.

Counts the upstream attempts that went to the canary's addresses (--match
addr:port, repeatable) and those of them that failed (5xx or no answer),
for --seconds from now. Prints one JSON object; exits 1 when the error rate
is over --budget or fewer than --min-requests reached the canary.
"""
import argparse
import json
import os
import socket
import sys
import time


def attempts(entry, targets):
    """(attempts, failures) of one log entry against the canary's addresses."""
    addrs = [a.strip() for a in str(entry.get("upstream_addr", "")).replace(" : ", ",").split(",")]
    codes = [c.strip() for c in str(entry.get("upstream_status", "")).replace(" : ", ",").split(",")]
    seen = failed = 0
    for i, addr in enumerate(addrs):
        if addr not in targets:
            continue
        seen += 1
        code = codes[i] if i < len(codes) else "-"
        if not code.isdigit() or int(code) >= 500:
            failed += 1
    return seen, failed


def resolve(matches):
    """addr:port strings, names resolved too: nginx logs the address it used."""
    out = set()
    for match in matches:
        host, sep, port = match.rpartition(":")
        if not sep:
            continue
        out.add(match)
        try:
            for info in socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP):
                addr = info[4][0]
                out.add(("[%s]:%s" if ":" in addr else "%s:%s") % (addr, port))
        except (OSError, ValueError):
            pass
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--match", action="append", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--min-requests", type=int, default=1)
    args = parser.parse_args()
    targets = resolve(args.match)
    total = failed = lines = bad = 0
    start = time.monotonic()
    with open(args.log, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        buf = b""
        while time.monotonic() - start < args.seconds:
            chunk = fh.read()
            if not chunk:
                time.sleep(0.2)
                continue
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                lines += 1
                try:
                    entry = json.loads(raw)
                except ValueError:
                    bad += 1
                    continue
                seen, fails = attempts(entry, targets)
                total += seen
                failed += fails
    rate = failed / total if total else 0.0
    result = {"requests": total, "failed": failed, "error_rate": round(rate, 4), "budget": args.budget,
              "log_lines": lines, "unparsed_lines": bad, "seconds": round(time.monotonic() - start, 1),
              "targets": sorted(targets)}
    ok = total >= args.min_requests and rate <= args.budget
    result["passed"] = ok
    if not ok:
        result["reason"] = ("only %d requests reached the canary (minimum %d)" % (total, args.min_requests)
                            if total < args.min_requests else
                            "error rate %.4f is over the budget %.4f" % (rate, args.budget))
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
