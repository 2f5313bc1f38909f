"""Accord's adaptive synthesiser under parameter variants, on the same data and seeds (issue 19).

Tuning aid, Accord only (no peer): each variant runs the same seeded releases (``test_seed``
1..N) on the 100k simulated records of ``synthetic.py`` and prints the mean TVD2 / TVD3 of the
sampled rows and of the model's own marginals. A variant patches one module constant
(``aim.ONE_WAY_SHARE=0.3``, ``aim.ROUNDS_PER_COLUMN=8``, ``model.MERGE_SDS=5.0``: the rare-level
merge threshold, in noise standard deviations; ``joint.ITERATIONS=0``: the raked model without
the joint fit, as before it; ``model.STRATIFY_MIN_BLOCK=0``: the shuffled, unstratified sampler
of before the eighth pass, same model). Variants run in separate processes (they patch modules). The
fourth argument is the number of simulated rows (100,000) or ``adult`` (ARX's adult file):

    .venv/bin/python benchmarks/synthetic_variants.py 0.5 'aim.ONE_WAY_SHARE=0.3' 1,2,3,4,5
    .venv/bin/python benchmarks/synthetic_variants.py 1 'joint.ITERATIONS=0' 1,2,3 adult
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic as bench
from accord.release.synthesize import aim, api, data, joint
from accord.release.synthesize import model as model_mod


def apply(variant: str) -> None:
    for part in filter(None, variant.split(";")):
        if part == "base":
            continue
        target, value = part.split("=")
        module, name = target.split(".", 1)
        owner = {"aim": aim, "model": model_mod, "joint": joint}[module]
        if not hasattr(owner, name):
            raise SystemExit(f"no constant {target}")
        setattr(owner, name, float(value) if "." in value else int(value))


def main() -> None:
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    eps, variant = float(sys.argv[1]), sys.argv[2]
    seeds = [int(s) for s in sys.argv[3].split(",")]
    which = sys.argv[4] if len(sys.argv) > 4 else "100000"
    if which == "adult":
        enc = data.encode(data.read_csv(bench.shared_data() / "arx" / "adult.csv", ";"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "simulated.csv"
            pacsv.write_csv(bench.sim_categorical(int(which)), path)
            enc = data.encode(data.read_csv(path, ","))
    apply(variant)
    got = []
    for seed in seeds:
        t0 = time.process_time()
        res = api.synthesize(enc, eps, bench.DELTA, rows=enc.codes.shape[0], test_seed=seed)
        cpu = time.process_time() - t0
        tv2, tv3, _ = bench.score_table(enc, res.table())
        m = bench.model_tvd(enc, res)
        got.append((tv2, tv3, m["model_tvd2"], m["model_tvd3"], cpu))
        print(json.dumps({"seed": seed, "tvd2": tv2, "tvd3": tv3, **m, "cpu_s": cpu}), flush=True)
    a = np.asarray(got)
    sd = a.std(axis=0, ddof=1) if len(seeds) > 1 else np.zeros(a.shape[1])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{variant} {which} epsilon {eps}, {len(seeds)} seeds: sampled {a[:, 0].mean():.4f} / "
          f"{a[:, 1].mean():.4f} (sd {sd[0]:.4f} / {sd[1]:.4f}), model {a[:, 2].mean():.4f} / "
          f"{a[:, 3].mean():.4f} (sd {sd[2]:.4f} / {sd[3]:.4f}), {a[:, 4].mean():.1f} s CPU a "
          f"release, peak {peak:.0f} MB (process)")


if __name__ == "__main__":
    main()
