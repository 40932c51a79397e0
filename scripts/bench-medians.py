"""Runs latchkey-bench several times and prints each scenario's median
calls/s, p99 and ratios: single runs on shared machines move by tens of
percent, medians of ratios much less.

    python3 scripts/bench-medians.py RUNS [latchkey-bench arguments...]
"""
import json
import statistics
import subprocess
import sys

runs = int(sys.argv[1])
args = sys.argv[2:]
results = {}
order = []
for i in range(runs):
    out = subprocess.run(
        ["target/release/latchkey-bench", "--json", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    for row in json.loads(out.strip().splitlines()[-1]):
        name = row["scenario"]
        if name not in results:
            results[name] = []
            order.append(name)
        results[name].append(row)
    print(f"run {i + 1}/{runs} done", file=sys.stderr)


def median(name, key):
    values = [r[key] for r in results[name] if r[key] is not None]
    return statistics.median(values) if values else None


def fmt(v, spec):
    return "" if v is None else format(v, spec)


print(f"| scenario (median of {runs} runs) | calls/s | p99 | vs 1-hop | vs 2-hop | ratio range vs 2-hop |")
print("|---|---|---|---|---|---|")
for name in order:
    two = [r["vs_two_hop"] for r in results[name] if r["vs_two_hop"] is not None]
    spread = f"{min(two):.2f}–{max(two):.2f}" if two else ""
    one = median(name, "vs_one_hop")
    two_m = median(name, "vs_two_hop")
    print(
        f"| {name} | {median(name, 'calls_per_second'):,.0f} | "
        f"{median(name, 'p99_us') / 1000:.1f} ms | "
        f"{fmt(one, '.2f') + ('×' if one is not None else '')} | "
        f"{fmt(two_m, '.2f') + ('×' if two_m is not None else '')} | {spread} |"
    )
