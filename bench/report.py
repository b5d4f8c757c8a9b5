"""The benchmark's report: bench/report.md (every target, its figure, met or not) and
bench/plot.svg (each figure as a fraction of its target; under 1 is met)."""
import os
from xml.sax.saxutils import escape


def rows(res):
    """(measure, figure text, target text, score) with score = figure / limit for a
    "≤" target and limit / figure for a "≥" one, so ≤ 1 means met."""
    # The target's measure starts at the API call (`cove_api`); `cove run` adds the CLI
    # process and is what compares with `podman run`, another CLI process.
    c, f = res.get("cove_api", res["cove_run"]), res["bare_runc"]
    cli = res["cove_run"]
    out = [("create → first byte p50 (API call) / bare runc",
            f"{c['p50_ms'] / f['p50_ms']:.2f}× ({c['p50_ms']} vs {f['p50_ms']} ms)",
            "≤ 1.3×", c["p50_ms"] / f["p50_ms"] / 1.3),
           ("create → first byte p50 (`cove run` CLI) / bare runc",
            f"{cli['p50_ms'] / f['p50_ms']:.2f}× ({cli['p50_ms']} ms)", "(report)", None)]
    if "p50_ms" in res["podman"]:
        p = res["podman"]["p50_ms"]
        out.append(("create → first byte p50 (`cove run`) / `podman run`", f"{cli['p50_ms'] / p:.2f}× ({p} ms)",
                    "≤ 0.33×", cli["p50_ms"] / p * 3))
    out.append(("create → first byte p99 / own p50 (API call)", f"{c['p99_ms'] / c['p50_ms']:.2f}×", "≤ 2×",
                c["p99_ms"] / c["p50_ms"] / 2))
    b = res["burst"]
    out.append((f"{b['pods']}-pod burst until all answer", f"{b['all_answered_ms'] / 1000:.2f} s, {b['failures']} failed",
                "≤ 3 s, 0 failed", (b["all_answered_ms"] / 3000) if not b["failures"] else 9.9))
    w = res["deployment_wake"]["p50_ms"]
    out.append(("wake from zero p50", f"{w} ms ({w - c['p50_ms']:+.1f} ms vs create)", "≤ create + 20 ms",
                w / (c["p50_ms"] + 20)))
    g = res["gateway"]
    if "wrk" in g and "64" in g["wrk"]:
        w64 = g["wrk"]["64"]
        out.append(("gateway req/s at 64 conns / direct", f"{w64['rps_ratio']:.2f}×", "≥ 0.9×",
                    0.9 / w64["rps_ratio"] if w64["rps_ratio"] else 9.9))
        out.append(("gateway p99 added at 64 conns", f"{w64['added_p99_ms']:.2f} ms", "≤ 1 ms",
                    max(w64["added_p99_ms"], 0.01) / 1.0))
        if "nginx" in w64:
            out.append(("nginx (reference proxy) req/s at 64 conns / direct",
                        f"{w64['nginx_rps_ratio']:.2f}× (the gateway: {w64['gateway_vs_nginx_rps']:.2f}× nginx)",
                        "(report)", None))
    if "stream" in g:
        s = g["stream"]
        out.append(("1 GiB stream throughput / direct", f"{s['throughput_ratio']:.2f}× ({s['gateway_mb_s']} MB/s)",
                    "(report)", None))
    if "websocket" in g:
        ws = g["websocket"]
        out.append(("WebSocket echo round trip added, p50", f"{ws['added_p50_ms']:.3f} ms", "(report)", None))
    d = res["density"]
    out.append((f"daemon RSS with {d['pods']} idle pods", f"{d['daemon_rss_with_pods_mb']} MB", "≤ 100 MB",
                d["daemon_rss_with_pods_mb"] / 100))
    out.append(("memory per pod outside the container", f"{d['per_pod_outside_container_mb']} MB", "≤ 2 MB",
                d["per_pod_outside_container_mb"] / 2))
    im = res.get("images", {})
    if "pull" in im:
        out.append((f"pull + unpack ({im['pull']['image']}) / skopeo + tar", f"{im['pull']['ratio_p50']:.2f}×",
                    "≤ 1.1×", im["pull"]["ratio_p50"] / 1.1))
    if "cached_build" in im:
        cb = im["cached_build"]["p50_ms"]
        out.append(("cached build lookup p50 (CLI → API)", f"{cb} ms", "≤ 50 ms", cb / 50))
    return out


def write(res, outdir):
    rs = rows(res)
    lines = ["# Benchmark report", "",
             "Written by `bash bench/run.sh` from `bench/results.json` (one run, one machine; ratios first).",
             "", "| measure | figure | target | met |", "| --- | --- | --- | --- |"]
    for name, fig, target, score in rs:
        met = "—" if score is None else ("yes" if score <= 1 else "**no**")
        lines.append(f"| {name} | {fig} | {target} | {met} |")
    lines += ["", "![figures as a fraction of their targets](plot.svg)", ""]
    with open(os.path.join(outdir, "report.md"), "w") as f:
        f.write("\n".join(lines))
    with open(os.path.join(outdir, "plot.svg"), "w") as f:
        f.write(svg([(n, s) for n, _, _, s in rs if s is not None]))


def svg(items, width=760, bar_h=22, label_w=330):
    """A horizontal bar per target: its score (figure / target), a line at 1 (the target)."""
    top, scale_max = 30, 2.0
    plot_w = width - label_w - 60
    h = top + len(items) * (bar_h + 8) + 30
    x1 = label_w + plot_w / scale_max
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<text x="10" y="18" font-weight="bold">Each figure as a fraction of its target (left of the line: met)</text>']
    for i, (name, score) in enumerate(items):
        y = top + i * (bar_h + 8)
        w = min(score, scale_max) / scale_max * plot_w
        color = "#2e7d32" if score <= 1 else "#c62828"
        parts.append(f'<text x="{label_w - 8}" y="{y + bar_h * 0.7}" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h * 0.7}">{score:.2f}</text>')
    parts.append(f'<line x1="{x1:.1f}" y1="{top - 4}" x2="{x1:.1f}" y2="{h - 24}" stroke="black" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{x1:.1f}" y="{h - 8}" text-anchor="middle">target</text>')
    parts.append("</svg>\n")
    return "\n".join(parts)
