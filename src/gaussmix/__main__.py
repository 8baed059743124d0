"""The ``gaussmix`` command (``python -m gaussmix``)."""

from __future__ import annotations

import argparse
import sys


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    from gaussmix import GaussianMixture
    from gaussmix.datasets import load_faithful, make_mixture

    X, _ = make_mixture(
        600,
        weights=[0.5, 0.3, 0.2],
        means=[[0.0, 0.0], [5.0, 5.0], [0.0, 7.0]],
        covariances=[[[1.0, 0.4], [0.4, 1.0]], [[1.5, -0.6], [-0.6, 0.8]], [[0.6, 0.0], [0.0, 2.0]]],
        random_state=args.seed,
    )
    print("Synthetic data: 600 rows from a 3-component mixture in 2-D")
    gm = GaussianMixture(3, covariance_type="full", init_params="kmeans", random_state=args.seed).fit(X)
    print(f"  full-covariance fit, k-means init: {gm.n_iter_} iterations, converged={gm.converged_}")
    order = np.argsort(gm.means_[:, 0] + gm.means_[:, 1])
    for k in order:
        print(f"  component {k}: weight {gm.weights_[k]:.3f}  mean {np.array2string(gm.means_[k], precision=2)}")
    resp = gm.predict_proba(X)
    uncertain = np.argsort(resp.max(axis=1))[:3]
    print("  responsibilities of the 3 least certain rows (columns: components):")
    for i in uncertain:
        print(f"    row {i:3d} {np.array2string(X[i], precision=2):>16}  ->  "
              f"{np.array2string(resp[i], precision=3, suppress_small=True)}")
    print("  BIC by number of components:")
    bics = {k: GaussianMixture(k, random_state=args.seed).fit(X).bic(X) for k in range(1, 7)}
    best = min(bics, key=bics.get)
    for k, value in bics.items():
        print(f"    {k}: {value:10.2f}{'   <- lowest' if k == best else ''}")

    faithful = load_faithful().data
    tied = GaussianMixture(3, covariance_type="tied", n_init=10, tol=1e-6, max_iter=500, random_state=args.seed)
    tied.fit(faithful)
    loglik = tied.score(faithful) * faithful.shape[0]
    print("Old Faithful (272 eruptions), tied covariance, 3 components, best of 10 starts:")
    print(f"  log-likelihood {loglik:.3f}, BIC {tied.bic(faithful):.3f} (mclust EEE,3: -1126.326, 2314.316)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gaussmix", description="Gaussian mixture models.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser("demo", help="fit mixtures to built-in data and print what they found")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        print(f"gaussmix: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
