"""The report: medians, the table with ratios, the CPU table, the targets (met / not met)
and the raw figures as JSON."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

from common import BIG_BYTES, CONCURRENT, LABELS, MIB, PINHOLE_PATHS, RUN, say
from measurements import NOISY_PERCENT, describe_errors
from h2 import baseline_ratios


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(target):
    return {
        "rps": median(r["rps"] for r in target.c50),
        "c50_p50_ms": median(r["p50_ms"] for r in target.c50),
        "c50_p99_ms": median(r["p99_ms"] for r in target.c50),
        "c1_p50_ms": median(r["p50_ms"] for r in target.c1),
        "c1_p99_ms": median(r["p99_ms"] for r in target.c1),
        "download_mbps": median(r["mbps"] for r in target.downloads),
        "upload_mbps": median(r["mbps"] for r in target.uploads),
        "cpu_us_per_request_c50": median(r.get("proxy_cpu_us_per_request") for r in target.c50),
        "cpu_us_per_request_c1": median(r.get("proxy_cpu_us_per_request") for r in target.c1),
        "cpu_ms_per_100mib_down": median(r.get("proxy_cpu_ms_per_100mib") for r in target.downloads),
        "cpu_ms_per_100mib_up": median(r.get("proxy_cpu_ms_per_100mib") for r in target.uploads),
        "cpu_system_share_c50": median(r.get("proxy_cpu_system_share") for r in target.c50),
        "cpu_system_share_c1": median(r.get("proxy_cpu_system_share") for r in target.c1),
        "cpu_system_share_down": median(r.get("proxy_cpu_system_share") for r in target.downloads),
        "cpu_system_share_up": median(r.get("proxy_cpu_system_share") for r in target.uploads),
    }


def ratio(value, reference):
    if value is None or not reference:
        return None
    return value / reference


def fmt_ms(ms):
    if ms is None:
        return "-"
    if ms >= 100:
        return f"{ms:.0f}"
    return f"{ms:.3g}" if ms >= 0.01 else f"{ms:.3f}"


def fmt_num(value):
    return "-" if value is None else f"{value:,.0f}"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}"


def fmt_mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def table(targets):
    shown = [t for t in targets if t.status == "measured"]
    by_name = {t.name: summary(t) for t in shown}
    direct, ssh = by_name.get("direct", {}), by_name.get("ssh-session", {})
    header2 = ["path", "req/s", "×dir", "×ssh", "p50 ms", "p99 ms", "p50 ms", "p99 ms",
               "MB/s", "×dir", "×ssh", "MB/s", "×dir", "×ssh", "peak RSS MiB"]
    rows = []
    for target in shown:
        s = by_name[target.name]
        rss = ", ".join(f"{role} {fmt_mib(kb)}" for role, kb in target.peak_rss_kb.items()) or "-"
        rows.append([
            target.label + (" !" if target.problems else "") + (" ~" if target.noise else ""),
            fmt_num(s["rps"]),
            fmt_ratio(ratio(s["rps"], direct.get("rps"))),
            fmt_ratio(ratio(s["rps"], ssh.get("rps"))),
            fmt_ms(s["c50_p50_ms"]), fmt_ms(s["c50_p99_ms"]), fmt_ms(s["c1_p50_ms"]), fmt_ms(s["c1_p99_ms"]),
            fmt_num(s["download_mbps"]), fmt_ratio(ratio(s["download_mbps"], direct.get("download_mbps"))),
            fmt_ratio(ratio(s["download_mbps"], ssh.get("download_mbps"))),
            fmt_num(s["upload_mbps"]), fmt_ratio(ratio(s["upload_mbps"], direct.get("upload_mbps"))),
            fmt_ratio(ratio(s["upload_mbps"], ssh.get("upload_mbps"))),
            rss,
        ])
    widths = [max(len(r[i]) for r in [header2] + rows) for i in range(len(header2))]
    groups = [(1, 5, "c=50 connections"), (6, 7, "c=1"), (8, 10, "download /big"), (11, 13, "upload")]
    line1 = [" " * widths[0]]
    column = 1
    for first, last, title in groups:
        while column < first:
            line1.append(" " * widths[column])
            column += 1
        span = sum(widths[first : last + 1]) + 2 * (last - first)
        line1.append(f" {title} ".center(span, "-") if span > len(title) + 4 else title.ljust(span))
        column = last + 1
    lines = ["  ".join(line1).rstrip()]
    for row in [header2] + rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(widths[i]) for i, cell in enumerate(row[1:-1], 1)]
        cells.append(row[-1])
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def evaluate_targets(targets, extras):
    """[(what, verdict, detail)] for each Pinhole target."""
    by_name = {t.name: t for t in targets if t.status == "measured"}
    s = {name: summary(t) for name, t in by_name.items()}
    results = []

    def compare(what, path, value_key, reference, ref_key, limit, at_least):
        if path not in s:
            return
        if reference not in s:
            results.append((what, "n/a", f"{LABELS[reference]} not measured"))
            return
        value = ratio(s[path][value_key], s[reference][ref_key])
        if value is None:
            results.append((what, "n/a", "no figure"))
            return
        met = value >= limit if at_least else value <= limit
        results.append((what, "met" if met else "not met", f"{value:.2f}×"))

    # The targets against ssh -R hold with the request log on (what users run) and with --quiet.
    tags = {"pinhole": " [log on]", "pinhole-quiet": " [--quiet]",
            "pinhole-embedded": " [embedded, log on]", "pinhole-embedded-quiet": " [embedded, --quiet]"}
    for path, tag in tags.items():
        if path not in s:
            continue
        compare(f"req/s ≥ 1.0× ssh -R session{tag}", path, "rps", "ssh-session", "rps", 1.0, True)
        compare(f"p99 at c=1 ≤ 2× nginx hop{tag}", path, "c1_p99_ms", "nginx", "c1_p99_ms", 2.0, False)
        compare(f"p99 at c=50 ≤ ssh -R session{tag}", path, "c50_p99_ms", "ssh-session", "c50_p99_ms", 1.0, False)
        compare(f"download ≥ 2× ssh -R session{tag}", path, "download_mbps", "ssh-session", "download_mbps", 2, True)
        compare(f"upload ≥ 2× ssh -R session{tag}", path, "upload_mbps", "ssh-session", "upload_mbps", 2.0, True)
    # What the request log costs: req/s with it, against --quiet.
    for text, json_log, quiet, tag in (("pinhole", "pinhole-json", "pinhole-quiet", ""),
                                       ("pinhole-embedded", "pinhole-embedded-json", "pinhole-embedded-quiet",
                                        " [embedded]")):
        compare(f"text log req/s ≥ 0.95× --quiet{tag}", text, "rps", quiet, "rps", 0.95, True)
        compare(f"JSON log req/s ≥ 0.9× --quiet{tag}", json_log, "rps", quiet, "rps", 0.9, True)
    for path in PINHOLE_PATHS:
        if path in by_name and by_name[path].problems:
            results.append((f"no errors in the table runs [{LABELS[path]}]", "not met",
                            "; ".join(by_name[path].problems)[:120]))
    if "pinhole" in by_name:
        idle = extras.get("idle_tunnels")
        if isinstance(idle, dict):
            kb = idle["kb_per_tunnel"]
            results.append(("relay RSS per idle tunnel ≤ 40 KB", "met" if kb <= 40 else "not met",
                            f"{kb:.1f} KB ({kb / 40:.2f}× the limit)"))
        else:
            results.append(("relay RSS per idle tunnel ≤ 40 KB", "n/a", str(idle or "not measured")))
        growth = extras.get("bulk_rss_growth")
        if isinstance(growth, dict):
            worst = max(growth["growth_kb"].values()) / 1024
            detail = ", ".join(f"{role} +{kb / 1024:.1f} MiB" for role, kb in growth["growth_kb"].items())
            verdict = "met" if worst <= 64 and not growth["problems"] else "not met"
            if growth["problems"]:
                detail += "; transfers failed"
            results.append(("RSS growth during 1 GiB each way ≤ 64 MiB", verdict, f"{detail} ({worst / 64:.2f}×)"))
        else:
            results.append(("RSS growth during 1 GiB each way ≤ 64 MiB", "n/a", str(growth or "not measured")))
        run = by_name["pinhole"].concurrent
        if isinstance(run, dict):
            errors = run["error_total"]
            verdict = "met" if errors == 0 and run["requests"] else "not met"
            detail = f"{errors} errors" + (f" ({describe_errors(run['errors'])})" if errors else "")
            results.append((f"{CONCURRENT} concurrent, zero errors", verdict, f"{detail}, {run['rps']:,.0f} req/s"))
        else:
            results.append((f"{CONCURRENT} concurrent, zero errors", "n/a", str(run or "not measured")))
    results += section_targets(extras)
    return results


def cpu_table(targets):
    """What each proxy's processes spent (user + system CPU, all of them together) per
    request and per 100 MiB, and the kernel's share of it: the cost behind the figures
    above, and how much of it any proxy would pay in syscalls."""
    lines = ["CPU of the proxy's processes (user+system, medians; in brackets the kernel's share;"
             " the processes are those in the last column above)",
             f"  {'path':<18} {'us/req c=50':>11} {'us/req c=1':>14} {'ms/100MiB down':>15} {'ms/100MiB up':>14}"]
    for target in targets:
        if target.status != "measured" or not target.rss_processes:
            continue
        figures = summary(target)
        cells = []
        for kind in ("us_per_request_c50", "us_per_request_c1", "ms_per_100mib_down", "ms_per_100mib_up"):
            value, share = figures["cpu_" + kind], figures["cpu_system_share_" + kind.rsplit("_", 1)[1]]
            text = "-" if value is None else f"{value:,.0f}"
            cells.append(text if share is None or value is None else f"{text} ({share:.0%})")
        lines.append(f"  {target.label:<18} {cells[0]:>11} {cells[1]:>14} {cells[2]:>15} {cells[3]:>14}")
    return "\n".join(lines)


def section_lines(extras, args):
    """The HTTP/2 and gRPC tables (rows this build cannot carry say so)."""
    out = []
    h2 = extras.get("h2")
    if h2:
        direct, hop = h2["h2-direct"].get("rps"), h2["h2-nghttpx"].get("rps")
        out += ["", f"HTTP/2: h2load -t1 -c10 -m10 -D {args.duration} /hello (13 bytes from nghttpd), h2c all the way; "
                    f"median of {args.runs} run(s)",
                f"  {'path':<18} {'req/s':>9} {'×dir':>5} {'×nghttpx':>8} {'mean ms':>8} {'failed':>7} "
                f"{'CPU µs/req':>10}"]
        for row in h2.values():
            if row["status"] == "measured":
                cpu = "-" if row.get("cpu_us") is None else f"{row['cpu_us']:.1f}"
                out.append(f"  {row['label']:<18} {fmt_num(row['rps']):>9} {fmt_ratio(ratio(row['rps'], direct)):>5} "
                           f"{fmt_ratio(ratio(row['rps'], hop)):>8} {fmt_ms(row['mean_ms']):>8} {row['failed']:>7} "
                           f"{cpu:>10}")
            else:
                out.append(f"  {row['label']:<18} {first_line(row, 'status')}")
        out += baseline_lines(h2, [("rps", "req/s", "runs"), ("cpu_us", "CPU µs/req", "runs")])
        out.append("  CPU µs/req: user + system time of the proxy's processes (relay and agent, the agent, "
                   "nghttpx) per request; the direct row has none")
    grpc = extras.get("grpc")
    if grpc:
        out += ["", f"gRPC (Python grpcio): unary calls at c=1 for {args.duration} s, 64 MiB streamed each way; "
                    f"median of {args.runs} run(s)",
                f"  {'path':<18} {'p50 ms':>7} {'p99 ms':>7} {'down MB/s':>9} {'up MB/s':>8}"]
        for row in grpc.values():
            if row["status"] == "measured":
                out.append(f"  {row['label']:<18} {fmt_ms(row['p50_ms']):>7} {fmt_ms(row['p99_ms']):>7} "
                           f"{fmt_num(row['down_mbps']):>9} {fmt_num(row['up_mbps']):>8}")
            else:
                out.append(f"  {row['label']:<18} {first_line(row, 'status')}")
        out += baseline_lines(grpc, [("p50_ms", "p50", "unary"), ("p99_ms", "p99", "unary"),
                                     ("down_mbps", "down", "streams"), ("up_mbps", "up", "streams")])
    return out


def baseline_lines(rows, figures):
    """With --baseline-dir: this build's figures over the baseline's, the median of each
    round's ratio (see baseline_ratios). figures: (figure, its name, the rows' list of runs)."""
    out = []
    for figure, name, runs in figures:
        ratios = baseline_ratios(rows, figure, runs)
        if ratios:
            cells = ", ".join(f"{rows[path]['label']} {value:.2f}×" for path, value in ratios.items())
            out.append(f"  this build ÷ baseline, {name} (median of each round's ratio): {cells}")
    return out


def first_line(row, prefix_key):
    """A row that was not measured: its reason (which says "not supported by this build" when so)."""
    reason = row["reason"].splitlines()[0] if row["reason"] else ""
    return reason if row[prefix_key] == "unsupported" else f"{row[prefix_key]} -- {reason}"


def section_targets(extras):
    """Issue 14's targets: HTTP/2 req/s against one nghttpx hop, gRPC unary p99 against direct."""
    results = []
    h2 = extras.get("h2")
    if h2:
        hop = h2["h2-nghttpx"]
        for path, limit, what in (("h2-pinhole", 0.5, "HTTP/2 req/s ≥ 0.5× one nghttpx hop"),
                                  ("h2-embedded", 1.0, "HTTP/2 req/s ≥ 1.0× one nghttpx hop [embedded]")):
            row = h2[path]
            value = ratio(row.get("rps"), hop.get("rps"))
            if row["status"] == "unsupported":
                results.append((what, "n/a", "not supported by this build"))
            elif value is None:
                results.append((what, "n/a", f"{row['label']}: {row['status']}, nghttpx hop: {hop['status']}"))
            else:
                met = value >= limit and row["failed"] == 0
                failed = f", {row['failed']} failed" if row["failed"] else ""
                results.append((what, "met" if met else "not met", f"{value:.2f}×{failed}"))
    grpc = extras.get("grpc")
    if grpc:
        what = "gRPC unary p99 at c=1 ≤ direct + 1 ms"
        row, direct = grpc["grpc-pinhole"], grpc["grpc-direct"]
        if row["status"] == "unsupported":
            results.append((what, "n/a", "not supported by this build"))
        elif row.get("p99_ms") is None or direct.get("p99_ms") is None:
            results.append((what, "n/a", f"pinhole: {row['status']}, direct: {direct['status']}"))
        else:
            limit = direct["p99_ms"] + 1
            results.append((what, "met" if row["p99_ms"] <= limit else "not met",
                            f"{row['p99_ms']:.3f} ms vs {direct['p99_ms']:.3f} + 1 ms ({row['p99_ms'] / limit:.2f}×)"))
    return results


def report(targets, extras, args, env, fd_limit, seconds):
    out = [f"Pinhole benchmark  {env['date']}  commit {env['commit']}  {env['cpus']} CPUs  Linux {env['kernel']}"]
    if targets:
        out += table_lines(targets, extras, args)
    out += section_lines(extras, args)
    verdicts = evaluate_targets(targets, extras)
    out.append("")
    if verdicts:
        out.append("Targets")
        width = max(len(what) for what, _, _ in verdicts)
        for what, verdict, detail in verdicts:
            out.append(f"  {what:<{width}}  {verdict:<7}  {detail}")
    else:
        out.append("Targets: no pinhole rows measured")
    out.append("")
    out.append(f"({seconds:.0f} s; logs in {RUN})")
    print("\n".join(out), flush=True)


def table_lines(targets, extras, args):
    """The HTTP/1.1 table, its notes, the CPU table, 1,000 connections and the memory figures."""
    out = []
    out.append(f"wrk -t1 -d{args.duration}s, median of {args.runs} run(s); bulk: median of {max(3, args.runs)} "
               f"transfers of {BIG_BYTES // MIB} MiB; MB = 10^6 bytes")
    out.append("")
    out.append(table(targets))
    out.append("")
    out.append("×dir / ×ssh: ratio to direct / to ssh -R (session).  ! = errors (below).  "
               f"~ = other processes took > {NOISY_PERCENT}% of a CPU during some runs (below).")
    for target in targets:
        if target.status == "measured" and target.problems:
            out.append(f"  ! {target.label}: " + "; ".join(target.problems))
        if target.status == "measured" and target.noise:
            out.append(f"  ~ {target.label}: " + ", ".join(f"{what} ({pct:.0f}%)" for what, pct in target.noise))
        elif target.status in ("skipped", "failed"):
            reason = target.reason.splitlines()[0] if target.reason else ""
            out.append(f"  {target.label}: {target.status} -- {reason}")
    out.append("")
    out.append(cpu_table(targets))
    out.append("")
    out.append(f"{CONCURRENT} concurrent connections (wrk -t1 -c{CONCURRENT} -d{args.duration}s --timeout 10s, /hello)")
    for target in targets:
        run = target.concurrent
        if isinstance(run, dict):
            out.append(f"  {target.label:<18} {run['rps']:>9,.0f} req/s  p99 {fmt_ms(run['p99_ms'])} ms  errors: "
                       f"{describe_errors(run['errors']) or 'none'}")
        elif run:
            out.append(f"  {target.label:<18} {run}")
    if "pinhole" in [t.name for t in targets]:
        idle = extras.get("idle_tunnels")
        if isinstance(idle, dict):
            out.append(f"Relay memory per idle tunnel: {idle['kb_per_tunnel']:.1f} KB  (fresh relay: RSS "
                       f"{idle['relay_rss_before_kb'] / 1024:.1f} MiB -> {idle['relay_rss_after_kb'] / 1024:.1f} MiB "
                       f"with {idle['tunnels']} tunnels, ready in {idle['seconds_to_ready']:.1f} s)")
        else:
            out.append(f"Relay memory per idle tunnel: {idle}")
        growth = extras.get("bulk_rss_growth")
        if isinstance(growth, dict):
            parts = ", ".join(
                f"{role} +{fmt_mib(growth['growth_kb'][role])} MiB "
                f"({fmt_mib(growth['rss_before_kb'][role])} -> {fmt_mib(growth['rss_peak_kb'][role])})"
                for role in growth["growth_kb"]
            )
            out.append(
                f"RSS growth, {growth['transfers_each_way']}x{BIG_BYTES // MIB} MiB down and up at once through "
                f"pinhole: {parts}; down {growth['download_mbps']:,.0f} MB/s, up {growth['upload_mbps']:,.0f} MB/s"
            )
            for problem in growth["problems"]:
                out.append(f"  ! {problem}")
        else:
            out.append(f"RSS growth during 1 GiB each way: {growth}")
    return out


def write_json(args, targets, extras, env, fd_limit):
    data = {
        "environment": dict(env, loadavg_end=os.getloadavg(), open_file_limit=fd_limit),
        "options": {"runs": args.runs, "duration_s": args.duration, "paths": args.paths, "quick": args.quick},
        "units": {"latency": "ms", "throughput": "MB/s (10^6 bytes)", "memory": "kB (/proc, 1024 bytes)"},
        "paths": {},
        "extras": extras,
        "targets": [{"target": w, "verdict": v, "detail": d} for w, v, d in evaluate_targets(targets, extras)],
    }
    for target in targets:
        data["paths"][target.name] = {
            "label": target.label,
            "status": target.status,
            "reason": target.reason or None,
            "base_url": target.base,
            "summary": summary(target) if target.status == "measured" else None,
            "c50_runs": target.c50,
            "c1_runs": target.c1,
            "downloads": target.downloads,
            "uploads": target.uploads,
            "peak_rss_kb": target.peak_rss_kb,
            f"c{CONCURRENT}": target.concurrent,
            "problems": target.problems,
            "noisy_runs": [{"run": what, "other_cpu_percent": pct} for what, pct in target.noise],
            "agent_ready": getattr(target, "ready_event", None),
        }
    path = Path(args.json)
    path.write_text(json.dumps(data, indent=2) + "\n")
    say(f"raw figures: {path}")

