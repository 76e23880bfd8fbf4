"""The order of the work: interleaved rounds for the table, then 1,000 concurrent
connections on each path, then Pinhole's memory figures."""

from __future__ import annotations

from common import BIG_BYTES, BULK_EACH_WAY, CONCURRENT, GIB, IDLE_TUNNELS, BenchError, rotated, say
from measurements import (NOISY_PERCENT, CpuMeter, describe_errors, download, measure_bulk_growth,
                          measure_idle_tunnels, proxy_cpu_seconds, tree_kb, upload, wrk)
from pinhole import IDLE_PRODUCT
from processes import url_join
from report import fmt_ms


def measure(supervisor, meter, targets, args, big):
    """The table figures, interleaving paths within each round to spread noise."""
    live = [t for t in targets if t.status == "measured"]

    def attempt(target, what, action):
        """Runs one measurement; notes failures on the row and the CPU others took meanwhile."""
        if target.status != "measured":
            return None
        before = meter.snapshot()
        cpu_before = proxy_cpu_seconds(target)
        try:
            result = action()
        except BenchError as error:
            target.problems.append(f"{what}: {error}")
            say(f"  {target.label}: {what} failed: {error}")
            return None
        other = CpuMeter.other_percent(before, meter.snapshot())
        result["other_cpu_percent"] = other
        # The proxy's own CPU per unit of work: unlike req/s and MB/s, it barely moves
        # when the machine is shared, so it compares paths across runs too.
        if cpu_before is not None:
            cpu_after = proxy_cpu_seconds(target)
            cpu = cpu_after[0] - cpu_before[0]
            if cpu > 0:
                # The kernel's part (syscalls, and the loopback TCP work done in them).
                result["proxy_cpu_system_share"] = (cpu_after[1] - cpu_before[1]) / cpu
            if result.get("requests"):
                result["proxy_cpu_us_per_request"] = cpu / result["requests"] * 1e6
            elif result.get("bytes"):
                result["proxy_cpu_ms_per_100mib"] = cpu / result["bytes"] * BIG_BYTES * 1e3
        if other is not None and other > NOISY_PERCENT:
            target.noise.append((what, other))
        return result

    say("warm-up: 1 s at c=50 on each path")
    for target in live:
        attempt(target, "warm-up", lambda: wrk(supervisor, f"wrk-warmup-{target.name}",
                                               url_join(target.base, "/hello"), 50, 1))
    for target in live:
        target.noise.clear()  # the warm-up does not count
    for round_index in range(args.runs):
        order = rotated(live, round_index)
        for target in order:
            for connections, results in ((50, target.c50), (1, target.c1)):
                run = f"c={connections} run {round_index + 1}"
                name = f"wrk-{target.name}-c{connections}-{round_index + 1}"
                hello = url_join(target.base, "/hello")
                result = attempt(target, run, lambda: wrk(supervisor, name, hello, connections, args.duration))
                if result is None:
                    continue
                results.append(result)
                if result["error_total"]:
                    target.problems.append(f"{run}: {describe_errors(result['errors'])}")
                noisy = result["other_cpu_percent"] or 0
                say(f"round {round_index + 1}/{args.runs}  {target.label:<17} c={connections:<3} "
                    f"{result['rps']:>9,.0f} req/s  "
                    f"p50 {fmt_ms(result['p50_ms'])} ms  p99 {fmt_ms(result['p99_ms'])} ms"
                    + (f"  ERRORS: {describe_errors(result['errors'])}" if result["error_total"] else "")
                    + (f"  (other processes: {noisy:.0f}% CPU)" if noisy > NOISY_PERCENT else ""))
    transfers = max(3, args.runs)
    for index in range(transfers):
        for target in live:
            down = attempt(target, f"download {index + 1}",
                           lambda: download(supervisor, f"down-{target.name}-{index + 1}", target.base))
            if down:
                target.downloads.append(down)
            up = attempt(target, f"upload {index + 1}",
                         lambda: upload(supervisor, f"up-{target.name}-{index + 1}", target.base, big))
            if up:
                target.uploads.append(up)
            say(f"bulk {index + 1}/{transfers}  {target.label:<17} down "
                f"{(down or {}).get('mbps', 0):>6,.0f} MB/s  up {(up or {}).get('mbps', 0):>6,.0f} MB/s")
    for target in live:
        for role, process, comm in target.rss_processes:
            target.peak_rss_kb[role] = tree_kb(process.pid, "VmHWM", comm)


def measure_concurrent(supervisor, meter, ordered, args):
    """wrk -c1000 on every measured path; the figures (or the failure) go to target.concurrent."""
    say(f"{CONCURRENT} concurrent connections (wrk -t1 -c{CONCURRENT} -d{args.duration}s) on each path")
    for target in ordered:
        if target.status != "measured":
            continue
        try:
            before = meter.snapshot()
            target.concurrent = wrk(supervisor, f"wrk-{target.name}-c{CONCURRENT}", url_join(target.base, "/hello"),
                                    CONCURRENT, args.duration, timeout=10)
            target.concurrent["other_cpu_percent"] = CpuMeter.other_percent(before, meter.snapshot())
            say(f"  {target.label:<17} {target.concurrent['rps']:>9,.0f} req/s  errors: "
                f"{describe_errors(target.concurrent['errors']) or 'none'}")
        except BenchError as error:
            target.concurrent = f"failed: {error}"
            say(f"  {target.label}: {error}")


def measure_pinhole_extras(supervisor, targets, big, bin_dir, tls, idle_ports, idle_range, idle_available):
    """RSS growth during bulk transfers, and relay memory per idle tunnel: {name: figures or why not}."""
    extras = {}
    pinhole = targets.get("pinhole")
    if pinhole and pinhole.status == "measured":
        say(f"RSS growth while {BULK_EACH_WAY // GIB} GiB moves each way through pinhole")
        try:
            extras["bulk_rss_growth"] = measure_bulk_growth(supervisor, pinhole, big)
        except BenchError as error:
            extras["bulk_rss_growth"] = f"failed: {error}"
        if not idle_available:
            extras["idle_tunnels"] = (f"skipped: {bin_dir / IDLE_PRODUCT} not found "
                                      f"(swift build -c release --product {IDLE_PRODUCT})")
            say(f"idle tunnels: {extras['idle_tunnels']}")
        elif not idle_range:
            extras["idle_tunnels"] = f"skipped: no {IDLE_TUNNELS + 16} contiguous free ports in 20000-32000"
        else:
            say(f"relay memory per idle tunnel ({IDLE_TUNNELS} tunnels, fresh relay)")
            try:
                extras["idle_tunnels"] = measure_idle_tunnels(
                    supervisor, bin_dir, tls, idle_ports, idle_range)
            except BenchError as error:
                extras["idle_tunnels"] = f"failed: {error}"
                say(f"  {error}")
    elif "pinhole" in targets:
        extras["bulk_rss_growth"] = extras["idle_tunnels"] = f"skipped: pinhole {targets['pinhole'].status}"
    return extras
