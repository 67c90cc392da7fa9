#!/usr/bin/env python3
"""GETs of random paths from a file, one after another on one keep-alive
connection, at a fixed rate; prints p50, p99 and the maximum latency (from
sending the request to the end of the response's body) and how many
answers were not 200.

    scripts/read-probe.py http://127.0.0.1:8080 paths.txt [RATE] [COUNT]

A fixed rate, not as fast as possible: the latency a reader sees while the
node also ingests, not what a saturated machine's scheduler adds.
"""
import http.client
import random
import sys
import time
import urllib.parse

url, paths_file = sys.argv[1], sys.argv[2]
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 200.0
count = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
paths = open(paths_file).read().split()
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
latencies, not_ok, start = [], 0, time.perf_counter()
for i in range(count):
    delay = start + i / rate - time.perf_counter()
    if delay > 0:
        time.sleep(delay)
    t = time.perf_counter()
    conn.request("GET", random.choice(paths))
    response = conn.getresponse()
    response.read()
    latencies.append(time.perf_counter() - t)
    not_ok += response.status != 200
latencies.sort()


def ms(q):
    return 1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]


print(f"p50 {ms(0.5):.2f} ms, p99 {ms(0.99):.2f} ms, max {1000 * latencies[-1]:.1f} ms, "
      f"{count} requests, {not_ok} not 200")
