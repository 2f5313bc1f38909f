"""Run one OpenDP (private-pgm) synthesiser on a CSV; for benchmarks/synthetic.py, in its own venv.

    python3 -m venv /tmp/dp-peers && /tmp/dp-peers/bin/pip install 'opendp[mbi]' pyarrow pandas
    /tmp/dp-peers/bin/python benchmarks/synthetic_peers.py IN.csv OUT.csv aim|mst RHO

Every column is categorical with its observed levels as public keys (so OpenDP needs no delta);
the privacy unit is one row; the budget is the same zCDP rho Accord spends. Prints a JSON line
with the wall time and the peak resident memory of this process.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import opendp.prelude as dp
import polars as pl


def main() -> None:
    src, out, algo, rho = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    # mbi's sampler imports pandas only at the end: without it a run failed after 22 minutes of
    # AIM, so its absence is found before anything runs.
    import pandas  # noqa: F401
    df = pl.read_csv(src, infer_schema_length=0)  # every column a string
    dp.enable_features("contrib")
    keys = {c: sorted(df[c].unique().to_list()) for c in df.columns}
    if algo == "mst":
        # OpenDP 0.16's MST fails its own budget split ("insufficient budget for query:
        # 0.000589...728 > 0.000589...726"): each of its d-1 selections gets prior(budget / (d-1))
        # (one float step below its share) and the composed cost, rounded up, lands a step above
        # the selection budget, whatever rho (retrying with rho up to 1e-5 lower failed every time).
        # Workaround: its per-selection share is taken 1e-9 (relative) lower, so MST spends
        # slightly LESS than the rho it is given (a negligible handicap: 1e-9 of a tenth of rho).
        from opendp.extras.mbi import _mst

        exact_prior = _mst.prior
        _mst.prior = lambda x: exact_prior(x * (1 - 1e-9))
    t0 = time.perf_counter()
    context = dp.Context.compositor(data=df.lazy(), privacy_unit=dp.unit_of(contributions=1),
                                    privacy_loss=dp.loss_of(rho=rho))
    algorithm = dp.mbi.AIM() if algo == "aim" else dp.mbi.MST()
    table = context.query(rho=rho).contingency_table(keys=keys, algorithm=algorithm).release()
    synth = table.synthesize(rows=df.height)
    elapsed = time.perf_counter() - t0
    synth.write_csv(out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu = time.process_time()
    print(json.dumps({"seconds": elapsed, "peak_mb": peak, "cpu_self_s": cpu}), flush=True)
    if os.environ.get("ACCORD_PEER_MODEL_TVD", "1") == "0":
        # mbi's projections of every 2- and 3-way marginal took over 15 min at load 24 on adult
        # (untimed, but it holds the single peer slot): skippable on large data.
        return
    limit = int(os.environ.get("ACCORD_PEER_MODEL_TVD_LIMIT_S", "0"))
    if limit > 0:
        # AIM's model on 100k simulated records has cliques over the large country columns: a
        # cap (in seconds) on the untimed model-error step, so it cannot hold the peer slot.
        import signal

        def _stop(signum: int, frame: object) -> None:
            raise TimeoutError(f"model-error step stopped after {limit} s")

        signal.signal(signal.SIGALRM, _stop)
        signal.alarm(limit)
    try:
        extra: dict[str, object] = dict(model_tvd(df, keys, table))
    except Exception as exc:  # the sampled rows and the timing still count
        extra = {"model_tvd_error": f"{type(exc).__name__}: {exc}"[:300]}
    print(json.dumps({"seconds": elapsed, "peak_mb": peak, "cpu_self_s": cpu, **extra}))


def model_tvd(df: pl.DataFrame, keys: dict[str, list[str]], table: object) -> dict[str, float]:
    """Mean TVD of the fitted model's own 2- and 3-way marginals (before sampling), untimed.

    mbi 1.1.0 (the version OpenDP 0.16 pins) has two bugs in ``synthetic_data`` (wrong cliques to
    condition on, spurious correlations from its rounding: fixed in mbi PR #145, mbi 2.0) that
    make the sampled rows much worse than the model; this is what a fixed sampler could reach.
    """
    import itertools

    import numpy as np

    codes = np.stack([df[c].replace_strict(keys[c], list(range(len(keys[c])))).to_numpy()
                      for c in df.columns], axis=1)
    sizes = [len(keys[c]) for c in df.columns]
    out = {}
    for order in (2, 3):
        tvds = []
        for attrs in itertools.combinations(range(len(df.columns)), order):
            shape = tuple(sizes[a] for a in attrs)
            flat = np.ravel_multi_index(tuple(codes[:, a] for a in attrs), shape)
            real = np.bincount(flat, minlength=int(np.prod(shape))).astype(float)
            est = np.asarray(table.project([df.columns[a] for a in attrs]),  # type: ignore[attr-defined]
                             dtype=float)
            # OpenDP's table keeps a null level last on every axis: cut it off (the real data
            # has no nulls, so the model's mass there is error, counted via the total below).
            full = np.clip(est, 0, None)
            total = max(float(full.sum()), 1e-12)
            inside = full[tuple(slice(0, n) for n in shape)].ravel()
            tvds.append(0.5 * (np.abs(real / real.sum() - inside / total).sum()
                               + (total - inside.sum()) / total))
        out[f"model_tvd{order}"] = float(np.mean(tvds))
    return out


if __name__ == "__main__":
    main()
