#!/usr/bin/env python3
"""bench/report.py — turn one bench/run's results.tsv into medians, StayKV/Redis ratios, the
verdicts against StayKV's performance targets, a Markdown section and a PNG chart.

Called by bench/run; can be rerun by hand on a run directory:
    python3 bench/report.py --run-dir target/bench/<stamp> [--write-benchmarks BENCHMARKS.md]
"""

import argparse
import collections
import math
import os
import re
import shutil
import statistics
import sys

BEGIN = "<!-- BEGIN bench/run generated section: rerunning ./bench/run replaces everything up to the END marker -->"
END = "<!-- END bench/run generated section -->"

CONFIGS = ["staykv-always", "staykv-everysec", "redis-everysec", "redis-always"]
LABEL = {
    "staykv-always": "StayKV always",
    "staykv-everysec": "StayKV everysec",
    "redis-everysec": "Redis everysec",
    "redis-always": "Redis always",
}
PAIRS = [
    ("staykv-always", "redis-everysec"),
    ("staykv-always", "redis-always"),
    ("staykv-everysec", "redis-everysec"),
]


def load(run_dir):
    data = collections.defaultdict(list)  # (workload, config, metric) -> [values]
    with open(os.path.join(run_dir, "results.tsv")) as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            w, c, r, m, v = parts
            try:
                x = float(v)
            except ValueError:
                continue
            if math.isnan(x):
                continue
            data[(w, c, m)].append(x)
    commands = []
    path = os.path.join(run_dir, "commands.tsv")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                parts = line.rstrip("\n").split("\t", 2)
                if len(parts) == 3:
                    commands.append(parts)
    machine = ""
    path = os.path.join(run_dir, "machine.txt")
    if os.path.exists(path):
        with open(path) as f:
            machine = f.read().strip()
    return data, commands, machine


class Results:
    def __init__(self, data):
        self.data = data

    def values(self, w, c, m):
        return self.data.get((w, c, m), [])

    def med(self, w, c, m):
        v = self.values(w, c, m)
        return statistics.median(v) if v else None

    def ratio(self, w, a, b, m, w_b=None):
        x, y = self.med(w, a, m), self.med(w_b or w, b, m)
        if x is None or y is None or y == 0:
            return None
        return x / y

    def has(self, w):
        return any(k[0] == w for k in self.data)


def fmt(x, digits=None):
    if x is None:
        return "–"
    if digits is not None:
        return f"{x:,.{digits}f}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def cell(res, w, c, m, digits=None):
    v = res.values(w, c, m)
    if not v:
        return "–"
    med = statistics.median(v)
    if len(v) == 1:
        return fmt(med, digits)
    return f"{fmt(med, digits)} <sub>[{fmt(min(v), digits)}–{fmt(max(v), digits)}]</sub>"


def rfmt(r):
    return "–" if r is None else f"{r:.2f}x"


def table(res, rows, configs, pairs):
    """rows: (label, workload, metric, digits)."""
    configs = [c for c in configs if any(res.values(w, c, m) for _, w, m, _ in rows)]
    pairs = [(a, b) for a, b in pairs if a in configs and b in configs]
    head = ["", *[LABEL[c] for c in configs], *[f"{LABEL[a].split()[0]} {a.split('-')[1]} / {LABEL[b].split()[0]} {b.split('-')[1]}" for a, b in pairs]]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, w, m, digits in rows:
        if not any(res.values(w, c, m) for c in configs):
            continue
        cells = [cell(res, w, c, m, digits) for c in configs]
        ratios = [rfmt(res.ratio(w, a, b, m)) for a, b in pairs]
        out.append("| " + " | ".join([label, *cells, *ratios]) + " |")
    return "\n".join(out)


def present(res, configs):
    return [c for c in configs if any(k[1] == c for k in res.data)]


def session_sizes(res):
    sizes = set()
    for (w, _, _) in res.data:
        m = re.match(r"sess-(\d+)-", w)
        if m:
            sizes.add(int(m.group(1)))
    return sorted(sizes)


def rates(res):
    found = set()
    for (w, _, _) in res.data:
        m = re.match(r"sess-\d+-rate(\d+)$", w)
        if m:
            found.add(int(m.group(1)))
    return sorted(found)


def small_size(res):
    for (w, _, _) in res.data:
        m = re.match(r"mem-small-(\d+)$", w)
        if m:
            return int(m.group(1))
    return None


def targets(res):
    """The performance targets: (text, ratio, bound, higher_is_better, note)."""
    S, RE, RA = "staykv-always", "redis-everysec", "redis-always"
    out = []
    for p in (1, 16):
        out.append((f"SET -P {p}: StayKV always ≥ 1.0x Redis everysec", res.ratio(f"rb-set-p{p}", S, RE, "rps"), 1.0, True, "req/s", f"SET -P {p} vs everysec"))
        out.append((f"SET -P {p}: StayKV always ≥ 1.5x Redis always", res.ratio(f"rb-set-p{p}", S, RA, "rps"), 1.5, True, "req/s", f"SET -P {p} vs Redis always"))
    for p in (1, 16):
        out.append((f"GET -P {p}: StayKV ≥ 1.2x Redis (everysec)", res.ratio(f"rb-get-p{p}", S, RE, "rps"), 1.2, True, "req/s", f"GET -P {p}"))
    sizes = session_sizes(res)
    if sizes:
        n = sizes[-1]
        s = f"sess-{n}"
        out.append((f"Session workload, {n:,} sessions: StayKV always ≥ 1.3x Redis everysec throughput", res.ratio(f"{s}-resp", S, RE, "rps"), 1.3, True, "50 conns, saturation", f"session {n:,}: req/s"))
        for rate in rates(res):
            out.append((f"Session workload, {n:,} sessions: p99 ≤ Redis everysec's, at a fixed {rate:,} req/s", res.ratio(f"{s}-rate{rate}", S, RE, "p99_us"), 1.0, False, "open loop", f"session {n:,}: p99 at {rate:,}/s"))
        out.append((f"Session workload, {n:,} sessions: p99 ≤ Redis everysec's, at saturation", res.ratio(f"{s}-resp", S, RE, "p99_us"), 1.0, False, "closed loop", f"session {n:,}: p99 at saturation"))
        out.append((f"Session workload, {n:,} sessions, connect-per-request: ≥ 1.0x Redis everysec", res.ratio(f"{s}-connect", S, RE, "rps"), 1.0, True, "req/s", f"session {n:,}: connect-per-request"))
    for p in (1, 16):
        for t in ("set", "get"):
            out.append((f"Server CPU per million ops, {t.upper()} -P {p}: ≤ 0.8x Redis everysec", res.ratio(f"rb-{t}-p{p}", S, RE, "cpu_s_per_mops"), 0.8, False, "W1", f"CPU/op {t.upper()} -P {p}"))
    if sizes:
        s = f"sess-{sizes[-1]}"
        out.append((f"Server CPU per million ops, session workload {sizes[-1]:,}: ≤ 0.8x Redis everysec", res.ratio(f"{s}-resp", S, RE, "cpu_s_per_mops"), 0.8, False, "W2", f"CPU/op session {sizes[-1]:,}"))
        out.append((f"Memory per 1 KB session ({sizes[-1]:,} sessions): ≤ 0.95x Redis", res.ratio(f"mem-{s}", S, RE, "bytes_per_key"), 0.95, False, "RSS growth per key", "memory per 1 KB session"))
    small = small_size(res)
    if small:
        out.append((f"Memory per small key with TTL ({small:,} keys): ≤ 0.7x Redis", res.ratio(f"mem-small-{small}", S, RE, "bytes_per_key"), 0.7, False, "RSS growth per key", "memory per small key + TTL"))
    if sizes:
        n = sizes[-1]
        out.append((f"Restart with {n:,} sessions: ≤ 0.5x Redis's load time", res.ratio(f"restart-{n}", S, RE, "ready_ms"), 0.5, False, "first GET served", f"restart, {n:,} sessions"))
        http = res.ratio(f"sess-{n}-http", S, S, "rps", w_b=f"sess-{n}-resp")
        na = res.has(f"sess-{n}-http") and res.med(f"sess-{n}-http", S, "not_available") == 1
        out.append((f"HTTP session flow ≥ 0.5x the same flow over RESP ({n:,} sessions)", None if na else http, 0.5, True, "not available" if na else "StayKV HTTP / StayKV RESP", f"HTTP / RESP, session {n:,}"))
    return out


def verdict(ratio, bound, higher):
    if ratio is None:
        return None
    return ratio >= bound if higher else ratio <= bound


def verdict_text(ratio, bound, higher, note):
    v = verdict(ratio, bound, higher)
    if v is None:
        return "not measured" + (f" ({note})" if note == "not available" else "")
    if v:
        return "**met**"
    if higher:
        return f"**missed**: {ratio:.2f}x against ≥ {bound}x; StayKV's figure must grow {bound / ratio:.2f}x"
    return f"**missed**: {ratio:.2f}x against ≤ {bound}x; StayKV's figure must shrink by {(1 - bound / ratio) * 100:.0f}%"


def chart(res, tlist, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("report: matplotlib is not installed; no chart", file=sys.stderr)
        return False
    hi = [(t, r, b) for (_, r, b, h, _, t) in tlist if h and r is not None]
    lo = [(t, r, b) for (_, r, b, h, _, t) in tlist if not h and r is not None]
    fig, axes = plt.subplots(1, 2, figsize=(15, 7.5))
    for ax, items, title in (
        (axes[0], hi, "StayKV / Redis — higher is better"),
        (axes[1], lo, "StayKV / Redis — lower is better"),
    ):
        if not items:
            ax.set_visible(False)
            continue
        labels = [f"{t} (target {'≥' if ax is axes[0] else '≤'} {b}x)" for t, _, b in items]
        ratios = [r for _, r, _ in items]
        colors = ["#2e8b57" if verdict(r, b, ax is axes[0]) else "#c0392b" for _, r, b in items]
        y = list(range(len(items)))[::-1]
        ax.barh(y, ratios, color=colors)
        for yi, (_, r, b) in zip(y, items):
            ax.plot([b, b], [yi - 0.4, yi + 0.4], color="black", linewidth=2)
            ax.text(r, yi, f" {r:.2f}x", va="center", fontsize=8)
        ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_title(title, fontsize=11)
        top = max(max(ratios), max(b for _, _, b in items))
        if ax is axes[1] and top > 4:
            # A far-off ratio (a tail latency, say) would flatten every other bar: log scale.
            ax.set_xscale("log")
            ax.set_xlim(min(min(ratios), 0.3) * 0.8, top * 2)
            ax.axvline(1.0, color="grey", linestyle=":", linewidth=1)
        else:
            ax.set_xlim(0, top * 1.25)
    fig.suptitle("StayKV vs redis-server 7.0: medians of one bench/run (green: target met, red: missed; black tick: target)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    return True


def render(res, commands, machine, run_dir, chart_rel):
    cfgs = present(res, CONFIGS)
    pairs = [(a, b) for a, b in PAIRS if a in cfgs and b in cfgs]
    sizes = session_sizes(res)
    small = small_size(res)
    rounds = max((len(v) for v in res.data.values()), default=0)
    L = [BEGIN, "", "## StayKV vs redis-server 7.0 (generated by `./bench/run`)", ""]
    L.append(
        f"Every figure is the **median of {rounds} round{'s' if rounds != 1 else ''}**; in each round every workload ran against StayKV and "
        "Redis alternately (A B A B), each time on a freshly started server with a fresh data directory, on "
        "loopback, with the load generator on the same 2-core machine. Small figures under a median are the "
        "range over the rounds. Ratios are StayKV / Redis: for throughput higher is better; for latency, CPU "
        "time, memory and restart time lower is better. `always` / `everysec` are the fsync policies "
        "(StayKV `--fsync`, Redis `appendfsync`, with `appendonly yes`)."
    )
    L += ["", "```", machine, "```", ""]
    if chart_rel:
        L += [f"![StayKV / Redis ratios against the targets]({chart_rel})", ""]

    L += ["### Performance targets", ""]
    L += ["| target | StayKV / Redis | verdict |", "|---|---|---|"]
    tl = targets(res)
    for text, r, b, h, note, _ in tl:
        L.append(f"| {text} | {rfmt(r)} | {verdict_text(r, b, h, note)} |")
    met = sum(1 for _, r, b, h, _, _ in tl if verdict(r, b, h))
    missed = sum(1 for _, r, b, h, _, _ in tl if verdict(r, b, h) is False)
    L += ["", f"{met} met, {missed} missed, {len(tl) - met - missed} not measured.", ""]

    if any(res.has(f"rb-{t}-p{p}") for t in ("set", "get") for p in (1, 16)):
        L += ["### W1 — redis-benchmark, 50 clients, 1 KB values, 100,000 random keys", ""]
        L += ["`redis-benchmark -c 50 -n 200000 -r 100000 -d 1024 -t set,get` is run as two invocations on the same "
              "server (`-t set`, then `-t get`, which then reads the keys the SETs wrote) so that the server's CPU "
              "time can be charged to each command; pipeline 1 and 16 (`-P`). Server CPU is counted from the start "
              "of a run until the AOF rewrite or compaction it set off, if any, has finished.", ""]
        rows = []
        for p in (1, 16):
            for t in ("set", "get"):
                rows.append((f"{t.upper()} -P {p}, req/s", f"rb-{t}-p{p}", "rps", 0))
        for p in (1, 16):
            for t in ("set", "get"):
                rows.append((f"{t.upper()} -P {p}, p99 ms", f"rb-{t}-p{p}", "p99_ms", 3))
        for p in (1, 16):
            for t in ("set", "get"):
                rows.append((f"{t.upper()} -P {p}, server CPU s / 1M ops", f"rb-{t}-p{p}", "cpu_s_per_mops", 1))
        L += [table(res, rows, cfgs, pairs), ""]

    scfgs = [c for c in cfgs if any(res.has(f"sess-{n}-resp") and res.values(f"sess-{n}-resp", c, "rps") for n in sizes)]
    spairs = [(a, b) for a, b in pairs if a in scfgs and b in scfgs]
    if sizes:
        L += ["### W2, W3, W4, W7 — session workload", ""]
        L.append(
            "Keys `sess:` + 43 base64url characters (a 256-bit token; 48 bytes — the targets' \"45-byte key\" "
            "does not match its own `sess:` + 43 format, the format was kept), 1 KB values, preloaded with "
            "`SET key value EX 604800`; then zipfian popularity (YCSB's scrambled zipfian, θ = 0.99) over the "
            "preloaded keys, 70% `GET`, 18% `EXPIRE key 604800`, 11% `SET key value EX 604800`, 1% `DEL`. "
            f"{'50'} connections. *Saturation*: closed loop, each connection sends its next request when the "
            f"reply arrives (single-threaded client). *Fixed rate*: open loop at the rate in the row, latency counted "
            "from each request's scheduled send time (no coordinated omission). *Connect-per-request*: 50 workers, "
            "each request on a new TCP connection (the serverless pattern), each from its own loopback address "
            "(127.x.y.z), as a fleet of functions connects from many hosts: from one address the client's closed "
            "connections in TIME_WAIT used up its ephemeral ports and every run measured its port search instead "
            "of the server. *HTTP*: the same mix as `POST /` with a "
            "JSON command over 50 keep-alive connections to StayKV's HTTP API (Redis has no HTTP API)."
        )
        L.append("")
        rows = []
        for n in sizes:
            s = f"sess-{n}"
            rows += [
                (f"{n:,} sessions, saturation, req/s", f"{s}-resp", "rps", 0),
                (f"{n:,} sessions, saturation, p50 µs", f"{s}-resp", "p50_us", 0),
                (f"{n:,} sessions, saturation, p99 µs", f"{s}-resp", "p99_us", 0),
                (f"{n:,} sessions, saturation, p99.9 µs", f"{s}-resp", "p999_us", 0),
            ]
            for rate in rates(res):
                rows += [
                    (f"{n:,} sessions, fixed {rate:,} req/s, req/s achieved", f"{s}-rate{rate}", "rps", 0),
                    (f"{n:,} sessions, fixed {rate:,} req/s, p50 µs", f"{s}-rate{rate}", "p50_us", 0),
                    (f"{n:,} sessions, fixed {rate:,} req/s, p99 µs", f"{s}-rate{rate}", "p99_us", 0),
                    (f"{n:,} sessions, fixed {rate:,} req/s, p99.9 µs", f"{s}-rate{rate}", "p999_us", 0),
                ]
            rows += [
                (f"{n:,} sessions, connect-per-request, req/s", f"{s}-connect", "rps", 0),
                (f"{n:,} sessions, connect-per-request, p99 µs", f"{s}-connect", "p99_us", 0),
                (f"{n:,} sessions, HTTP, req/s", f"{s}-http", "rps", 0),
                (f"{n:,} sessions, HTTP, p99 µs", f"{s}-http", "p99_us", 0),
                (f"{n:,} sessions, preload SET/s (pipelined)", f"preload-{s}", "rps", 0),
            ]
        L += [table(res, rows, scfgs, spairs), ""]
        for n in sizes:
            s = f"sess-{n}"
            if res.med(f"{s}-http", "staykv-always", "not_available") == 1:
                L += [f"HTTP at {n:,} sessions: **not available** (the HTTP API did not answer `POST /` `[\"PING\"]`).", ""]
            else:
                r = res.ratio(f"{s}-http", "staykv-always", "staykv-always", "rps", w_b=f"{s}-resp")
                if r is not None:
                    L += [f"HTTP / RESP throughput at {n:,} sessions (StayKV always): **{r:.2f}x**.", ""]
        L += ["**W4 — server CPU seconds per million operations** (utime+stime of the server process and its reaped children, from `/proc/<pid>/stat`, over the whole run including warm-up, divided by the replies received):", ""]
        rows = []
        for n in sizes:
            s = f"sess-{n}"
            kinds = [("resp", "saturation")] + [(f"rate{r}", f"fixed {r:,} req/s") for r in rates(res)] + [("connect", "connect-per-request"), ("http", "HTTP")]
            for kind, label in kinds:
                rows.append((f"{n:,} sessions, {label}", f"{s}-{kind}", "cpu_s_per_mops", 1))
        L += [table(res, rows, scfgs, spairs), ""]

    mem_rows = []
    for n in sizes:
        mem_rows += [(f"{n:,} sessions (48 B key, 1 KB value, TTL): bytes/key", f"mem-sess-{n}", "bytes_per_key", 0),
                     (f"{n:,} sessions: memory MB", f"mem-sess-{n}", "rss_mb", 0)]
    if small:
        mem_rows += [(f"{small:,} small keys (12 B key, 8 B value, TTL): bytes/key", f"mem-small-{small}", "bytes_per_key", 0),
                     (f"{small:,} small keys: memory MB", f"mem-small-{small}", "rss_mb", 0)]
    if mem_rows:
        L += ["### W5 — memory", ""]
        L.append("Bytes per key = (memory after loading − memory of the empty server) / `DBSIZE`, taken after any "
                 "AOF rewrite or compaction the load set off had finished. Memory is StayKV's `VmRSS` and Redis's "
                 "`used_memory_rss` (its RSS as Redis reports it). Redis uses jemalloc.")
        L += ["", table(res, mem_rows, cfgs, pairs), ""]

    if sizes and res.has(f"restart-{sizes[-1]}"):
        n = sizes[-1]
        L += ["### W6 — restart", ""]
        L.append(f"After the session runs at {n:,} sessions: `BGREWRITEAOF` (both servers then hold an RDB-format "
                 "image plus an empty log), wait until it is done, stop with SIGTERM, start the same command on the "
                 "same directory and poll `GET <a stored session>` every millisecond. *Ready* is the time from just "
                 "before the start until that GET returned the value; *listening* until the first TCP connect "
                 "succeeded (both answer `-LOADING` while loading).")
        rows = [("first GET served, ms", f"restart-{n}", "ready_ms", 0),
                ("accepting connections, ms", f"restart-{n}", "listen_ms", 0),
                ("data directory, MB", f"restart-{n}", "disk_mb", 0)]
        L += ["", table(res, rows, scfgs, spairs), ""]

    if commands:
        L += ["### Exact commands", "", "Server command lines and load commands of this run (ports and temporary directories as they were):", "", "```"]
        for w, c, cmd in commands:
            L.append(f"# {w} · {c}")
            L.append(cmd)
        L += ["```", ""]
    L += [f"Raw per-round results: `bench/results.tsv`. Run directory: `{os.path.relpath(run_dir)}` (not committed).", "", END]
    return "\n".join(L) + "\n", tl


def print_summary(res, tl):
    cfgs = present(res, CONFIGS)
    keys = sorted({(w, m) for (w, c, m) in res.data})
    print()
    print(f"{'workload':28} {'metric':16} " + " ".join(f"{LABEL[c]:>16}" for c in cfgs) + "   S-always/R-everysec")
    for w, m in keys:
        if m in ("errors", "not_available"):
            continue
        vals = [res.med(w, c, m) for c in cfgs]
        r = res.ratio(w, "staykv-always", "redis-everysec", m)
        print(f"{w:28} {m:16} " + " ".join(f"{fmt(v):>16}" for v in vals) + f"   {rfmt(r):>8}")
    print()
    print("Performance targets:")
    for text, r, b, h, note, _ in tl:
        print(f"  {rfmt(r):>7}  {verdict_text(r, b, h, note).replace('**', ''):45}  {text}")


def splice(path, section):
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = "# Benchmarks\n\nHow fast StayKV is next to `redis-server` on the same machine. Reproduce with `./bench/run` (see the README).\n\n"
    if BEGIN in text and END in text:
        before = text[: text.index(BEGIN)]
        after = text[text.index(END) + len(END):]
        text = before + section.rstrip("\n") + after
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--write-benchmarks", help="BENCHMARKS.md to update (only the generated section)")
    ap.add_argument("--chart-copy", help="copy the chart here (committed)")
    ap.add_argument("--results-copy", help="copy results.tsv here (committed)")
    a = ap.parse_args()
    data, commands, machine = load(a.run_dir)
    res = Results(data)
    tl = targets(res)
    png = os.path.join(a.run_dir, "benchmarks.png")
    have_chart = chart(res, tl, png)
    chart_rel = None
    if have_chart:
        chart_rel = "benchmarks.png"
        if a.write_benchmarks and a.chart_copy:
            shutil.copyfile(png, a.chart_copy)
            chart_rel = os.path.relpath(a.chart_copy, os.path.dirname(os.path.abspath(a.write_benchmarks)))
    section, tl = render(res, commands, machine, a.run_dir, chart_rel)
    with open(os.path.join(a.run_dir, "BENCHMARKS-section.md"), "w") as f:
        f.write(section)
    print_summary(res, tl)
    if a.write_benchmarks:
        splice(a.write_benchmarks, section)
        if a.results_copy:
            shutil.copyfile(os.path.join(a.run_dir, "results.tsv"), a.results_copy)
        print(f"\nwrote {a.write_benchmarks}" + (f" and {a.chart_copy}" if have_chart and a.chart_copy else ""))
    else:
        print(f"\nreport: {os.path.join(a.run_dir, 'BENCHMARKS-section.md')}" + (f", chart: {png}" if have_chart else ""))


if __name__ == "__main__":
    main()
