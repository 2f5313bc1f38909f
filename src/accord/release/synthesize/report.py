"""Utility and privacy reports for a synthetic table: a public one and a steward-only one.

What is published beside the synthetic data is computed from the synthetic data and the DP
measurements only (post-processing, nothing more to pay): :func:`fidelity` scores the synthetic
data against every noisy marginal the synthesiser measured (total-variation distance, TVD, half the
L1 distance between normalised tables), with the noise level of each measurement so a reader can
tell noise from misfit. Statistics of the real data (the TVD of every 1-, 2- and 3-way marginal
against the real data, each synthetic record's distance to the closest real record, and the same
distance among real records) are unprotected: :func:`utility` and
:func:`distance_to_closest_record` feed the steward-only report, which never goes into a release
folder (issue 10).
"""

from __future__ import annotations

from html import escape
from itertools import combinations
from typing import Any

import numpy as np

from accord.release.synthesize.model import Measured, marginal

MAX_MARGINALS_PER_ORDER = 2000
DCR_SAMPLE = 1000


def tvd(real: np.ndarray, synth: np.ndarray, sizes: tuple[int, ...],
        attrs: tuple[int, ...]) -> float:
    a = marginal(real, sizes, attrs).astype(float).ravel()
    b = marginal(synth, sizes, attrs).astype(float).ravel()
    return 0.5 * float(np.abs(a / max(a.sum(), 1.0) - b / max(b.sum(), 1.0)).sum())


def utility(real: np.ndarray, synth: np.ndarray, sizes: tuple[int, ...],
            columns: tuple[str, ...], seed: int = 0) -> dict[str, Any]:
    """Mean and worst TVD per marginal order (3-way sets are sampled when there are very many)."""
    rng = np.random.default_rng(seed)  # chooses which marginals to score; no privacy role
    out: dict[str, Any] = {"orders": []}
    for k in (1, 2, 3):
        sets = list(combinations(range(len(columns)), k))
        if not sets:
            continue
        if len(sets) > MAX_MARGINALS_PER_ORDER:
            pick = rng.choice(len(sets), MAX_MARGINALS_PER_ORDER, replace=False)
            sets = [sets[i] for i in sorted(pick)]
        scores = [tvd(real, synth, sizes, s) for s in sets]
        worst = int(np.argmax(scores))
        out["orders"].append({
            "order": k, "marginals": len(sets), "mean_tvd": float(np.mean(scores)),
            "max_tvd": float(scores[worst]),
            "worst": [columns[i] for i in sets[worst]],
        })
    return out


def _tvd_to_noisy(noisy: np.ndarray, synth: np.ndarray) -> float:
    a = np.clip(noisy.astype(float), 0, None).ravel()
    b = synth.astype(float).ravel()
    a = a / a.sum() if a.sum() > 0 else np.full(a.size, 1.0 / a.size)
    return 0.5 * float(np.abs(a - b / max(b.sum(), 1.0)).sum())


def fidelity(measured: Measured, synth: np.ndarray) -> dict[str, Any]:
    """Mean and worst TVD of the synthetic data against the noisy measured marginals, per order.

    Reads only DP outputs and the synthetic records, so it can be published. The one-way
    marginals are measured on the original levels, the cliques on the compressed ones.
    """
    sizes = tuple(len(lv) for lv in measured.levels)
    csizes = measured.compressed_sizes()
    comp = np.stack([measured.groups[j][synth[:, j]] for j in range(synth.shape[1])], axis=1) \
        if synth.size else synth
    by_order: dict[int, list[tuple[float, tuple[int, ...], float]]] = {}
    for m in measured.one_way:
        score = _tvd_to_noisy(m.noisy, marginal(synth, sizes, m.attrs))
        by_order.setdefault(1, []).append((score, m.attrs, m.noise.variance() ** 0.5))
    for m in measured.cliques:
        if len(m.attrs) < 2:
            continue
        score = _tvd_to_noisy(m.noisy, marginal(comp, csizes, m.attrs))
        by_order.setdefault(len(m.attrs), []).append((score, m.attrs, m.noise.variance() ** 0.5))
    orders = []
    for k in sorted(by_order):
        rows = by_order[k]
        worst = max(rows, key=lambda r: r[0])
        orders.append({"order": k, "marginals": len(rows),
                       "mean_tvd": float(np.mean([r[0] for r in rows])), "max_tvd": worst[0],
                       "worst": [measured.columns[a] for a in worst[1]],
                       "noise_sd_per_cell": worst[2]})
    return {"against": "the noisy marginals the synthesiser measured (DP outputs), not the real "
                       "data: the distances include the measurement noise",
            "orders": orders}


def _closest(query: np.ndarray, reference: np.ndarray, skip_self: bool) -> np.ndarray:
    best = np.full(len(query), query.shape[1], dtype=np.int64)
    for start in range(0, len(reference), 5000):
        chunk = reference[start:start + 5000]
        dist = (query[:, None, :] != chunk[None, :, :]).sum(axis=2)
        if skip_self:
            dist[dist == 0] = query.shape[1] + 1  # a record is not its own neighbour
        best = np.minimum(best, dist.min(axis=1))
    return best


def distance_to_closest_record(real: np.ndarray, synth: np.ndarray,
                               seed: int = 0) -> dict[str, Any]:
    """Histogram of Hamming distances to the closest real record, synthetic vs real-vs-real."""
    rng = np.random.default_rng(seed)
    q_syn = synth[rng.choice(len(synth), min(DCR_SAMPLE, len(synth)), replace=False)]
    q_real = real[rng.choice(len(real), min(DCR_SAMPLE, len(real)), replace=False)]
    d = real.shape[1]
    syn = np.bincount(_closest(q_syn, real, False), minlength=d + 1)
    ref = np.bincount(np.minimum(_closest(q_real, real, True), d), minlength=d + 1)
    return {
        "sample": len(q_syn),
        "synthetic_to_real": syn.tolist(),
        "real_to_other_real": ref.tolist(),
        "share_exact_copies": float(syn[0] / max(syn.sum(), 1)),
        "note": "distance = number of columns that differ; real_to_other_real excludes identical "
                "duplicates and is the reference for what is ordinary in these data",
    }


def utility_svg(util: dict[str, Any]) -> str:
    """A bar chart of mean and worst TVD per order (SVG, no plotting library needed)."""
    orders = util["orders"]
    w, h, pad, bar = 420, 240, 40, 28
    scale = (h - 2 * pad) / max(1e-9, max([o["max_tvd"] for o in orders] + [0.05]))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{pad}" y="16">Total-variation distance, synthetic vs '
             f'{"measured marginals" if "against" in util else "real"}</text>',
             f'<line x1="{pad}" y1="{h - pad}" x2="{w - 10}" y2="{h - pad}" stroke="#333"/>']
    for i, o in enumerate(orders):
        x0 = pad + 20 + i * 120
        for j, (key, colour) in enumerate((("mean_tvd", "#1f77b4"), ("max_tvd", "#d62728"))):
            v = o[key]
            bh = v * scale
            x = x0 + j * (bar + 4)
            parts.append(f'<rect x="{x}" y="{h - pad - bh:.1f}" width="{bar}" height="{bh:.1f}" '
                         f'fill="{colour}"><title>{escape(key)} {v:.3f}</title></rect>')
            parts.append(f'<text x="{x}" y="{h - pad - bh - 3:.1f}">{v:.2f}</text>')
        parts.append(f'<text x="{x0}" y="{h - pad + 14}">{o["order"]}-way</text>')
    parts.append(f'<rect x="{w - 120}" y="26" width="10" height="10" fill="#1f77b4"/>'
                 f'<text x="{w - 105}" y="35">mean</text>'
                 f'<rect x="{w - 120}" y="42" width="10" height="10" fill="#d62728"/>'
                 f'<text x="{w - 105}" y="51">worst</text></svg>')
    return "\n".join(parts) + "\n"


def utility_markdown(util: dict[str, Any]) -> str:
    lines = [f"Total-variation distance against {util['against']}.", ""] if "against" in util \
        else []
    lines += ["| marginals | count | mean TVD | worst TVD | worst marginal |",
             "| --- | ---: | ---: | ---: | --- |"]
    for o in util["orders"]:
        lines.append(f"| {o['order']}-way | {o['marginals']} | {o['mean_tvd']:.4f} | "
                     f"{o['max_tvd']:.4f} | {' x '.join(o['worst'])} |")
    return "\n".join(lines) + "\n"
