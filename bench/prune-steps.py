#!/usr/bin/env python3
"""prune-steps.py WORD: remove from the engine's BuildKit cache the records
whose description contains WORD (a nonce written into a RUN step) and every
record built on them, without touching any other build cache on the shared
engine. Children go first: BuildKit keeps a record while another uses it."""
import json
import subprocess
import sys
import time

DOCKER = "/usr/bin/docker"
word = sys.argv[1]
# A build's records stay in use for a moment after it ends: retry.
for attempt in range(40):
    if attempt:
        time.sleep(0.5)
    recs = json.loads(subprocess.check_output(
        [DOCKER, "system", "df", "-v", "--format", "{{json .BuildCache}}"]) or b"[]")
    ids = {r["ID"] for r in recs if word in r["Description"]}
    if not ids:
        break
    grew = True
    while grew:
        grew = False
        for r in recs:
            if r["Parent"] in ids and r["ID"] not in ids:
                ids.add(r["ID"])
                grew = True
    # leaves first
    parents = {r["Parent"] for r in recs if r["ID"] in ids}
    for i in sorted(ids, key=lambda i: i in parents):
        subprocess.run([DOCKER, "builder", "prune", "-af", "--filter", "id=" + i],
                       stdout=subprocess.DEVNULL, check=True)
else:
    sys.exit(f"prune-steps: records matching {word!r} are still there")
