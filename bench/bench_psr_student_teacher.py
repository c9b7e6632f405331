"""Student-teacher table (thesis table 11): PSR flow student vs GP and MC dropout.

    nice -n 10 python -m bench.bench_psr_student_teacher [--seeds 0,1,2] [--steps 500] [--n-test 600]

Torch pinned to 1 thread.  Writes bench/psr/student_teacher.json and .md (mean ± std over
seeds; RMSE and exact EMD on --n-test test pairs) and prints CPU seconds.
"""
import argparse
import json
import os
import time

import torch

from fastprob.models.student_teacher import format_table, run_all
from fastprob.models.toy_teachers import TEACHERS

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "psr")


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--n-test", type=int, default=600)
    ap.add_argument("--cases", default=",".join(TEACHERS))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.process_time()
    seeds = tuple(int(s) for s in a.seeds.split(","))
    results, summary = run_all(tuple(a.cases.split(",")), seeds, steps=a.steps, n_test=a.n_test)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    os.makedirs(OUT, exist_ok=True)
    meta = {"seeds": list(seeds), "steps": a.steps, "n_test": a.n_test, "wall_s": wall, "cpu_s": cpu, "torch_threads": 1}
    with open(os.path.join(OUT, "student_teacher.json"), "w") as f:
        json.dump({"meta": meta, "summary": summary, "results": results}, f, indent=1)
    table = format_table(summary)
    corr = "\n".join(f"| {c} | {s['loglik_corr']['teacher_samples']:.3f} | {s['loglik_corr']['student_samples']:.3f} "
                     f"| {s['loglik_corr']['student_nll']:.3f} | {s['loglik_corr']['teacher_nll']:.3f} |"
                     for c, s in summary.items())
    md = (f"{table}\n\nlog-likelihood correlation (Pearson, student vs exact teacher log p(y | x)):\n\n"
          "| case | on teacher samples | on student samples | student NLL | teacher NLL (entropy) |\n"
          f"|---|---|---|---|---|\n{corr}\n\nseeds {list(seeds)}, {a.steps} steps, wall {wall:.0f} s, "
          f"CPU {cpu:.0f} s\n")
    with open(os.path.join(OUT, "student_teacher.md"), "w") as f:
        f.write(md)
    print(md)


if __name__ == "__main__":
    main()
