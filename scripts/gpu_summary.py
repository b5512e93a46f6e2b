#!/usr/bin/env python3
"""The last table of scripts/gpu_session.sh: issue 36's goals against what the session measured.

  gpu_summary.py WORK     WORK = the session's folder (tables/*.md, logs/*.log, phases.md)

Reads the markdown tables the benchmark programs printed (bench_decode, bench_update,
bench_grpo_step, hf_reference.py, trl_side.py speed-table) and the logs (ctest, the device tests,
e2e), and prints one markdown table: each goal, its measurement, and met / missed / not measured.
Standard library only (runs under any python3 with the session's files).
"""
import os
import re
import sys


def sections(path):
    """{title: [rows]}: each "## title" section's table rows, split into cells"""
    out, title = {}, None
    if not os.path.exists(path):
        return out
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = []
        elif title and line.startswith("|") and not line.startswith("|---"):
            out[title].append([c.strip() for c in line.strip("|").split("|")])
    return out


def num(cell):
    m = re.search(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", cell.replace(",", ""))
    return float(m.group()) if m else None


def read(path):
    return open(path, encoding="utf-8", errors="replace").read() if os.path.exists(path) else ""


def main():
    work = sys.argv[1]
    t = lambda name: sections(os.path.join(work, "tables", f"{name}.md"))
    log = lambda name: read(os.path.join(work, "logs", f"{name}.log"))
    lines = []  # (what, measured, goal, verdict)

    def add(what, measured, goal="", verdict=""):
        lines.append((what, measured, goal, verdict))

    def judge(ok):
        return "not measured" if ok is None else ("**met**" if ok else "**missed**")

    # ---- device and phases
    setup = log("setup").strip().splitlines()
    add("device", "; ".join(setup[:2]) if setup else "no setup log")
    phases = [l for l in read(os.path.join(work, "phases.md")).splitlines()[2:] if l.startswith("|")]
    bad = [l.strip("| ").split(" | ")[0] + ": " + l.strip("| ").split(" | ")[1] for l in phases if " ok " not in l]
    add("phases", f"{len(phases) - len(bad)} of {len(phases)} ok" + (f" ({'; '.join(bad)})" if bad else ""))

    # ---- correctness
    ct = log("ctest")
    m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", ct)
    add("unit suite on the device (ctest -LE 'slow|interop')",
        f"{int(m.group(3)) - int(m.group(2))} of {m.group(3)} passed" if m else "no ctest summary",
        "all pass", judge(None if not m else m.group(2) == "0"))
    dt = log("device_tests")
    passed = re.search(r"\[  PASSED  \] (\d+) test", dt)
    failed = re.search(r"(\d+) FAILED TEST", dt)
    add("device tests on the device only (Devices/*)",
        (f"{passed.group(1)} passed" if passed else "no result") + (f", {failed.group(1)} failed" if failed else ""),
        "all pass", judge(None if not dt else bool(passed) and not failed))  # output without a PASSED line: it crashed
    par = t("parity")
    for title, rows in par.items():
        if title.startswith("transformers parity"):
            for r in rows[1:]:
                if len(r) >= 7 and r[1] == "float32":
                    add(f"parity {r[0]} fp32 (max abs logit diff, greedy 32)", f"{r[3]}, greedy equal: {r[6]}",
                        "<= 1e-4, equal", judge("FAIL" not in r[3] and r[6].startswith("yes")))
                elif len(r) >= 7:
                    add(f"parity {r[0]} bf16 (reported)", f"{r[3]} (transformers bf16 vs fp64: {r[5]}), greedy equal: {r[6][:3]}")
        elif title.startswith("Qwen2, Qwen3"):
            models = [r for r in rows[1:] if len(r) >= 7]
            ok = [r for r in models if num(r[3]) is not None and num(r[3]) <= 1e-4 and r[4] == "yes"]
            ended = "all comparisons agree" in log("interop_models")  # the test's last line (not there when cut)
            add("transformers-made Qwen2 / Qwen3 / Llama 3 models, every decode mode",
                f"{len(ok)} of {len(models)} within 1e-4 with equal greedy ids" + ("" if ended else ", the test did not finish"),
                "all", judge(len(models) > 0 and len(ok) == len(models) and ended))

    # ---- decode
    dec = t("decode")
    ours = {}  # N -> (tokens/s, mode, of roofline)
    for title, rows in dec.items():
        if not title.startswith("decode, ours"):
            continue
        for r in rows:
            if len(r) >= 6 and r[0].isdigit():
                n, tps, roof = int(r[0]), num(r[2]), num(r[5])
                label = r[1] + (" + sdpa" if "sdpa" in title else "")
                if n not in ours or tps > ours[n][0]:
                    ours[n] = (tps, label, roof)
    hf = {}
    for title, rows in dec.items():
        if title.startswith("decode, transformers"):
            for r in rows:
                if len(r) >= 2 and r[0].isdigit():
                    hf[int(r[0])] = num(r[1])
    for n in sorted(ours):
        tps, label, roof = ours[n]
        ratio = tps / hf[n] if n in hf and hf[n] else None
        add(f"decode tokens/s at N = {n}: ours ({label}) / transformers generate",
            f"{tps:.0f} / {hf[n]:.0f} = {ratio:.1f}x" if ratio else f"{tps:.0f} / not measured", ">= 5x",
            judge(None if ratio is None else ratio >= 5))
        add(f"decode at N = {n}: share of the HBM roofline", f"{roof:.0f}%", ">= 70%", judge(roof >= 70))
    if not ours:
        add("decode", "not measured", ">= 5x generate, >= 70% roofline", judge(None))

    # ---- update
    best = None
    for title, rows in t("update").items():
        for r in rows:
            if len(r) >= 8 and r[0] in ("eager", "sdpa"):
                mfu = num(r[5])
                if best is None or mfu > best[0]:
                    best = (mfu, r)
    if best:
        r = best[1]
        add("update MFU, best of eager / sdpa x checkpointing", f"{r[5]} of the measured matmul peak ({r[6]} of the datasheet), "
            f"{r[0]} attention, checkpointing {r[1]}, {r[3]} tokens/s", ">= 40%", judge(best[0] >= 40))
    else:
        add("update MFU", "not measured", ">= 40%", judge(None))

    # ---- one GRPO step vs TRL
    trl = t("trl")
    ratio = None
    for rows in trl.values():
        for r in rows:
            if len(r) >= 4 and "**" in r[1]:
                ratio = (num(r[1]), num(r[1].split("(")[1]) if "(" in r[1] else None, r[2])
    steps_tbl = next(iter(trl.values()), [])
    per = {r[1]: r for r in steps_tbl if len(r) >= 10 and r[1] in ("grpo_train", "TRL GRPOTrainer")}
    if ratio:
        o, g = per.get("grpo_train"), per.get("TRL GRPOTrainer")
        f = lambda c: f"{num(c):.2f}"
        detail = (f" (ours {f(o[2])} s: rollout {f(o[3])}, update {f(o[4])}; TRL {f(g[2])} s: generation {f(g[3])}, "
                  f"update {f(g[4])})") if o and g else ""
        add("GRPO step (bench/vs_trl/gpu.yaml: 16 x 8 x 256 on a GPU): TRL's time / ours", f"{ratio[0]:.1f}x{detail}", ">= 5x (ours <= 1/5 of TRL's)",
            judge(ratio[0] >= 5))
        mem = f" (ours {num(o[9]):,.0f} MiB, TRL {num(g[9]):,.0f} MiB)" if o and g and num(o[9]) and num(g[9]) else " (process RSS)"
        add("GRPO step: peak memory, TRL / ours (the GPU allocator's)", f"{num(ratio[2]):.2f}x{mem}")
    else:
        add("GRPO step vs TRL", "not measured", ">= 5x", judge(None))

    # ---- steps and memory
    for title, rows in t("steps").items():
        data = [r for r in rows if len(r) >= 9 and r[0][:1].isdigit()]
        if not data:
            add(title, "no result")
            continue
        timed = [r for r in data if "warm" not in r[0]] or data
        r = timed[-1]
        peak = max(num(x[8]) for x in data)
        add(title, f"{num(r[3]):.2f} s a step (rollout {r[1]} s, update {r[2]} s), peak {peak:,.0f} MiB")

    # ---- end to end
    e2e = log("e2e")
    m = re.search(r"tensorboard read (\d+) scalar tags", e2e)
    add("e2e: grpo_train on the device, TensorBoard file read by tensorboard", f"{m.group(1)} scalar tags" if m else "no tags read",
        "read", judge(None if not e2e else bool(m) and "grpo_train exit 0" in e2e))
    add("torchrun, world size 1", "exit 0" if "torchrun exit 0" in e2e else "failed or not run", "exit 0",
        judge(None if not e2e else "torchrun exit 0" in e2e))
    soak = log("soak")
    g = re.search(r"(?m)^\| peak RSS \(peak_mem_mb\) \| (.*?) \| (.*?) \| (.*?) \|", soak)
    add("soak: the allocator's step peak, step 50 -> the end", f"{g.group(1)} -> {g.group(2)} ({g.group(3)})" if g else "not measured",
        "< 2% growth, fds and threads flat", judge(None if not g else "soak: PASS" in soak))

    print("## issue 36: the goals against this session's measurements")
    print()
    print("| check | measured | goal | verdict |")
    print("|---|---|---|---|")
    for what, measured, goal, verdict in lines:
        print(f"| {what} | {measured} | {goal} | {verdict} |")


if __name__ == "__main__":
    main()
