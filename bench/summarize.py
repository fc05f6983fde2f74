#!/usr/bin/env python3
"""summarize.py RESULTS.tsv: per-run ratios of bench/push.sh, as Markdown
(median and min–max over the runs)."""
import csv
import statistics
import sys
from collections import defaultdict

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
t = defaultdict(dict)  # (kind, tool) -> run -> seconds
b = defaultdict(dict)
for r in rows:
    t[(r["kind"], r["tool"])][r["run"]] = float(r["seconds"])
    if r["uploaded_bytes"]:
        b[(r["kind"], r["tool"])][r["run"]] = int(r["uploaded_bytes"])


def ratios(num, den):
    n, d = t[num], t[den]
    return [n[k] / d[k] for k in n if k in d]


def fmt(xs, unit="×"):
    if not xs:
        return "n/a"
    return f"{statistics.median(xs):.2f}{unit} ({min(xs):.2f}–{max(xs):.2f})"


def secs(key):
    return fmt(list(t[key].values()), " s")


runs = len(t[("cold", "ctjdeploy")])
print(f"runs: {runs}\n")
print("| measure | median (min–max) | target |")
print("|---|---|---|")
print(f"| cold push, ctjdeploy ÷ docker push | {fmt(ratios(('cold', 'ctjdeploy'), ('cold', 'docker')))} | ≤ 0.8× |")
print(f"| cold push, ctjdeploy ÷ crane push (incl. docker save) | {fmt(ratios(('cold', 'ctjdeploy'), ('cold', 'crane')))} | |")
print(f"| re-push (same machine) ÷ cold ctjdeploy | {fmt(ratios(('repush', 'ctjdeploy-cache'), ('cold', 'ctjdeploy')))} | ≤ 0.1× |")
print(f"| re-push (fresh runner, no digest cache) ÷ cold ctjdeploy | {fmt(ratios(('repush', 'ctjdeploy-nocache'), ('cold', 'ctjdeploy')))} | |")
print(f"| rebuild with registry cache ÷ without | {fmt(ratios(('rebuild', 'registry-cache'), ('rebuild', 'no-cache')))} | ≤ 0.3× |")
print()
print("| absolute | median (min–max) |")
print("|---|---|")
for key in [("cold", "ctjdeploy"), ("cold", "docker"), ("cold", "crane"),
            ("repush", "ctjdeploy-cache"), ("repush", "ctjdeploy-nocache"),
            ("rebuild", "registry-cache"), ("rebuild", "no-cache")]:
    if t[key]:
        print(f"| {key[0]} {key[1]} | {secs(key)} |")
for key in [("cold", "ctjdeploy"), ("repush", "ctjdeploy-cache"), ("repush", "ctjdeploy-nocache")]:
    if b[key]:
        vals = sorted(b[key].values())
        print(f"| {key[0]} {key[1]}: layer bytes uploaded | {vals[0]:,}–{vals[-1]:,} |")
