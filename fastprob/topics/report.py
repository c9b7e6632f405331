"""Reports on a fitted DAPPER model: topics, personas, authors (thesis section 3.8.2.4)."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import warnings

import numpy as np


def top_words(model, n: int = 10):
    """The ``n`` most probable words of every topic: list of K lists."""
    model._check_fitted()
    order = np.argsort(-model.lambda_, axis=1)[:, :n]
    return [[model.vocab_[j] for j in row] for row in order]


def persona_topic_shares(model):
    """Expected topic proportions of each persona over time: softmax of alpha, (T, P, K)."""
    a = model.alpha_
    z = np.exp(a - a.max(axis=2, keepdims=True))
    return z / z.sum(axis=2, keepdims=True)


def strongest_topics(model, n: int = 3):
    """For each persona, its ``n`` topics with the largest mean share over time, (P, n)."""
    return np.argsort(-persona_topic_shares(model).mean(axis=0), axis=1)[:, :n]


def persona_summary(model, threshold: float = 0.9) -> dict:
    """The thesis' persona quality numbers.

    ``share_single_persona``: fraction of authors with more than ``threshold`` of their
    expected persona mass on one persona; ``share_two_personas``: fraction whose two top
    personas hold more than ``threshold`` together but neither alone; ``distinct_top3_topics``:
    number of distinct topics among the personas' top-3 topics.
    """
    ap = model.author_persona_
    srt = np.sort(ap, axis=1)[:, ::-1]
    single = srt[:, 0] > threshold
    two = ~single & (srt[:, :2].sum(axis=1) > threshold) if ap.shape[1] > 1 else np.zeros_like(single)
    top3 = strongest_topics(model, 3)
    return {"authors": int(ap.shape[0]), "share_single_persona": float(single.mean()),
            "share_two_personas": float(two.mean()),
            "distinct_top3_topics": int(np.unique(top3).shape[0]),
            "personas": int(ap.shape[1]), "topics": int(model.n_topics)}


def persona_diagnostics(model, min_docs: int = 20) -> dict:
    """Numbers that say whether the personas mean anything (the issue's real-corpus audit).

    - ``persona_doc_share`` (P,): expected share of documents per persona, and
      ``personas_used``: how many carry at least 1% of them;
    - ``author_top_persona_mean``: mean over authors with >= ``min_docs`` expected documents
      of their largest persona probability (1: each author is one persona; 1/P: spread
      evenly), and ``author_persona_entropy``: their mean normalized entropy;
    - ``trajectory_movement`` (P,): mean distance between consecutive persona states,
      sqrt(mean_k (alpha_t - alpha_{t-1})^2), averaged over time steps;
    - ``persona_similarity``: mean cosine similarity between the time-averaged, centred
      trajectories of the used personas (near 1: the personas are copies of each other);
    - ``top2_topic_mass``: share of all expected word assignments held by the two largest
      topics (the rest spread over K - 2).
    """
    model._check_fitted()
    P = model.n_personas
    n = np.asarray(model.n_stat_, dtype=np.float64)
    share = n.sum(axis=0) / max(n.sum(), 1e-300)
    docs = np.maximum(model.delta_ - model.omega_, 0.0)          # expected documents per (author, persona)
    per_author = docs.sum(axis=1)
    big = per_author >= min_docs
    ap = model.author_persona_[big]
    if ap.shape[0]:
        top = float(ap.max(axis=1).mean())
        ent = float((-(ap * np.log(np.maximum(ap, 1e-300))).sum(axis=1) / np.log(P)).mean()) if P > 1 else 0.0
    else:
        top, ent = float("nan"), float("nan")
    a = model.alpha_
    move = (np.sqrt(((a[1:] - a[:-1]) ** 2).mean(axis=2)).mean(axis=0) if a.shape[0] > 1
            else np.zeros(P))
    used = np.flatnonzero(share >= 0.01)
    c = a.mean(axis=0)[used]
    c = c - c.mean(axis=1, keepdims=True)
    nrm = np.linalg.norm(c, axis=1)
    sim = float("nan")
    if used.size > 1 and np.all(nrm > 0):
        cs = (c / nrm[:, None]) @ (c / nrm[:, None]).T
        sim = float(cs[np.triu_indices(used.size, 1)].mean())
    mass = np.sort(model.lambda_.sum(axis=1) - model.eta_ * model.lambda_.shape[1])[::-1]
    return {"persona_doc_share": share.tolist(), "personas_used": int(used.size),
            "authors_with_min_docs": int(big.sum()), "min_docs": int(min_docs),
            "author_top_persona_mean": top, "author_persona_entropy": ent,
            "trajectory_movement": move.tolist(), "persona_similarity": sim,
            "top2_topic_mass": float(mass[:2].sum() / max(mass.sum(), 1e-300))}


def author_table(model):
    """Rows (author, best persona, its probability, second persona, its probability)."""
    ap = model.author_persona_
    order = np.argsort(-ap, axis=1)
    rows = []
    for i, name in enumerate(model.author_names_):
        p1 = order[i, 0]
        p2 = order[i, 1] if ap.shape[1] > 1 else p1
        rows.append((name, int(p1), float(ap[i, p1]), int(p2), float(ap[i, p2])))
    return rows


def _time_axis(model, time_labels):
    if time_labels is not None:
        return np.asarray(time_labels), "time"
    return model.time_values_, "time step value"


def persona_plot(model, path, personas=None, n_topics: int = 3, n_words: int = 3, time_labels=None,
                 time_label: str | None = None, ncols: int = 3, dpi: int = 120):
    """Thesis figure 7: for each persona, the trajectories of its strongest topics over time.

    Each panel is a persona; its lines are the expected shares (softmax of the persona
    state) of its ``n_topics`` strongest topics, labelled by their top words, with a band
    of +-1 posterior std of the state mapped through the same softmax.  Written as PNG.
    """
    from .._optional import require

    matplotlib = require("matplotlib", "plots", "the persona plot (personas.png)")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shares = persona_topic_shares(model)
    tops = strongest_topics(model, n_topics)
    words = top_words(model, n_words)
    usage = model.author_persona_.sum(axis=0)
    if personas is None:  # the personas that authors use, most used first (at most 12 panels)
        order = np.argsort(-usage)
        personas = [int(p) for p in order if usage[p] >= 0.5][:12] or [int(order[0])]
    personas = list(personas)
    x, xl = _time_axis(model, time_labels)
    ncols = min(ncols, len(personas))
    nrows = -(-len(personas) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 2.8 * nrows), squeeze=False, sharex=True)
    cmap = plt.get_cmap("tab10")
    std = np.sqrt(model.alpha_var_)
    for ax, p in zip(axes.ravel(), personas):
        for i, k in enumerate(tops[p]):
            y = shares[:, p, k]
            # the share moves by about y(1-y)*std for a std-sized move of alpha_k
            band = y * (1 - y) * std[:, p]
            ax.plot(x, y, color=cmap(i % 10), lw=1.8, label=f"T{k}: " + ", ".join(words[k]))
            ax.fill_between(x, np.clip(y - band, 0, 1), np.clip(y + band, 0, 1), color=cmap(i % 10), alpha=0.12,
                            lw=0)
        ax.set_title(f"persona {p}  ({usage[p]:.1f} authors)", fontsize=10)
        ax.set_ylim(0, None)
        ax.legend(fontsize=7, loc="upper left", frameon=False)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(personas):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel(time_label or xl)
    for ax in axes[:, 0]:
        ax.set_ylabel("topic share")
    fig.suptitle("DAPPER personas: strongest topics over time", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def days_to_years(time_values, origin_days: float | None, width):
    """Calendar years of time steps built from dates (days since 1970) in absolute mode;
    ``width`` is a number of days or a calendar unit such as ``"month"``."""
    from ..corpus.timebins import bin_starts

    if origin_days is None:
        return None
    days = bin_starts(time_values, origin_days, width, "absolute")
    return np.array([1970 + d / 365.2425 for d in days])


def write_reports(model, out_dir, corpus=None, metrics: dict | None = None) -> dict:
    """Write topics.txt, personas.png, authors.csv, persona_summary.json (and metrics.json)."""
    os.makedirs(out_dir, exist_ok=True)
    words = top_words(model, 10)
    shares = persona_topic_shares(model).mean(axis=(0, 1))
    with open(os.path.join(out_dir, "topics.txt"), "w", encoding="utf-8") as f:
        for k, ws in enumerate(words):
            f.write(f"topic {k:3d} ({shares[k]:.3f}): {' '.join(ws)}\n")
    labels, label = None, None
    info = getattr(model, "time_info_", None) or {}
    if corpus is not None:
        info = {"mode": corpus.time_mode, "width": corpus.time_width, "origin": corpus.time_origin}
    if info.get("mode") == "absolute" and info.get("origin") is not None:
        labels = days_to_years(model.time_values_, info["origin"], info["width"])
        label = "year"
    elif info.get("mode") == "relative":
        w = info["width"]
        label = f"time since the author's first document (units of {w:g})" if isinstance(w, (int, float)) \
            else f"time since the author's first document (units of {w})"
    try:
        persona_plot(model, os.path.join(out_dir, "personas.png"), time_labels=labels, time_label=label)
    except ImportError as exc:  # matplotlib is an extra: the text reports are still useful
        warnings.warn(f"personas.png not written: {exc}", stacklevel=2)
    with open(os.path.join(out_dir, "authors.csv"), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["author", "persona", "probability", "second_persona", "second_probability"])
        w.writerows(author_table(model))
    summ = persona_summary(model)
    summ["persona_top3_topics"] = strongest_topics(model, 3).tolist()
    summ["diagnostics"] = persona_diagnostics(model)
    with open(os.path.join(out_dir, "persona_summary.json"), "w") as f:
        json.dump(summ, f, indent=1)
    if metrics is not None:
        with open(os.path.join(out_dir, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=1, default=float)
    return summ
