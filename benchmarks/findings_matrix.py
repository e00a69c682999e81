"""The lecture pitfalls against nnctl's findings: does each pitfall yield its finding, and only it,
and do healthy networks stay quiet?

    python -m benchmarks.findings_matrix              # untuned variants, set 2 (43 runs, about 10 s)
    python -m benchmarks.findings_matrix --set 1      # set 1 (52 runs): looked at while the detectors were built
    python -m benchmarks.findings_matrix --tuned      # the scenarios the detectors were written against

A scenario is a config that shows one pitfall of the course notes (or none), the finding it must
produce, and the config warnings it may also produce. `SCENARIOS` are the ones the detectors were
developed on (tests/test_findings.py runs them); `variants()` are the same pitfalls on other data
sets, widths, depths, activations, optimizers and seeds, which the detectors never saw. The report
is a confusion table: for each expected finding (rows), how many runs produced each code (columns),
and how many runs were exactly right (the expected finding present, nothing unexpected).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

WARNINGS = {"ZEROS_INIT", "HE_INIT_SATURATING", "BATCHNORM_SMALL_BATCH", "ADAM_HIGH_LR"}  # from the config alone
# a negative bias_init also shifts the output layer: on unbalanced classes the network starts confidently
# wrong, which BAD_INIT_LOSS rightly reports (naming the bias)
SHIFTED = {"BAD_INIT_LOSS"}


@dataclass
class Scenario:
    name: str
    expect: str | None  # the finding it must produce (None: a healthy run, no finding at all)
    config: dict
    allowed: set[str] = field(default_factory=set)  # config warnings it may also produce


def _cfg(source: str, hidden: list[int], activation: str, optimizer: str, lr: float, epochs: int, seed: int = 0,
         batch: int = 32, options: dict | None = None, preprocess: str = "standardize", **model) -> dict:
    data = {"source": source, "preprocess": preprocess}
    if options:
        data["options"] = options
    return {"seed": seed, "data": data, "model": {"hidden": hidden, "activation": activation, **model},
            "optimizer": {"name": optimizer, "lr": lr}, "train": {"epochs": epochs, "batch_size": batch}}


MOONS = {"n_samples": 400}
SCENARIOS = [
    Scenario("5x64 sigmoid, sgd (digits)", "VANISHING_GRAD",
             _cfg("sklearn:digits", [64] * 5, "sigmoid", "sgd", 0.1, 15)),
    Scenario("6x64 tanh, N(0, 0.01) init", "ACTIVATION_COLLAPSE",
             _cfg("sklearn:moons", [64] * 6, "tanh", "sgd", 0.1, 15, options=MOONS, init="normal", init_std=0.01)),
    Scenario("zeros init", "SYMMETRY", _cfg("sklearn:moons", [16, 16], "tanh", "sgd", 0.1, 15, options=MOONS,
                                            init="zeros"), {"ZEROS_INIT"}),
    Scenario("leaky_relu, bias_init -3 (recovers)", None,
             _cfg("sklearn:moons", [32, 32], "leaky_relu", "adam", 0.01, 40, options=MOONS, bias_init=-3)),
    Scenario("relu, bias_init -3", "DEAD_RELU",
             _cfg("sklearn:moons", [32, 32], "relu", "adam", 0.01, 40, options=MOONS, bias_init=-3)),
    Scenario("sigmoid on unscaled inputs", "SATURATED",
             _cfg("sklearn:breast_cancer", [32, 32], "sigmoid", "sgd", 0.1, 15, preprocess="none")),
    Scenario("sgd lr 20", "LR_TOO_LARGE", _cfg("sklearn:moons", [32, 32], "relu", "sgd", 20, 15, options=MOONS)),
    Scenario("sgd lr 1e-5", "LR_TOO_SMALL", _cfg("sklearn:moons", [32, 32], "relu", "sgd", 1e-5, 15, options=MOONS)),
    Scenario("confident tanh classifier", None,
             _cfg("sklearn:moons", [32, 32], "tanh", "adam", 0.01, 200, options={"n_samples": 400, "noise": 0.05})),
]


def variants() -> list[Scenario]:
    """The same pitfalls on settings the detectors were not developed on."""
    out = []
    for i, (src, width, depth, act, seed) in enumerate([
            ("sklearn:wine", 32, 5, "sigmoid", 1), ("sklearn:breast_cancer", 64, 6, "sigmoid", 2),
            ("sklearn:digits", 32, 6, "sigmoid", 3), ("sklearn:circles", 48, 5, "sigmoid", 4),
            ("sklearn:iris", 40, 7, "sigmoid", 5), ("sklearn:blobs", 64, 5, "sigmoid", 6)]):
        out.append(Scenario(f"vanishing {src[8:]} {depth}x{width} {act} s{seed}", "VANISHING_GRAD",
                            _cfg(src, [width] * depth, act, ["sgd", "momentum"][i % 2], 0.05, 12, seed)))
    for i, (src, width, depth, act, std) in enumerate([
            ("sklearn:wine", 32, 5, "tanh", 0.01), ("sklearn:digits", 64, 5, "relu", 0.01),
            ("sklearn:circles", 48, 6, "sigmoid", 0.005), ("sklearn:breast_cancer", 32, 6, "tanh", 0.02),
            ("sklearn:blobs", 100, 5, "relu", 0.01), ("sklearn:iris", 16, 8, "tanh", 0.05)]):
        out.append(Scenario(f"collapse {src[8:]} {depth}x{width} {act} std {std}", "ACTIVATION_COLLAPSE",
                            _cfg(src, [width] * depth, act, ["sgd", "adam"][i % 2], 0.01, 10, i, init="normal",
                                 init_std=std)))
    for i, (src, act, hidden) in enumerate([("sklearn:wine", "relu", [16]), ("sklearn:circles", "sigmoid", [8, 8]),
                                            ("sklearn:iris", "tanh", [32, 16, 8]), ("sklearn:digits", "relu", [64, 32]),
                                            ("sklearn:blobs", "leaky_relu", [12, 12])]):
        out.append(Scenario(f"zeros {src[8:]} {act} {hidden}", "SYMMETRY",
                            _cfg(src, hidden, act, ["sgd", "adam"][i % 2], 0.05, 8, i, init="zeros"), {"ZEROS_INIT"}))
    for i, (src, act, bias, opt) in enumerate([
            ("sklearn:wine", "relu", -4, "adam"), ("sklearn:circles", "relu", -3, "sgd"),
            ("sklearn:digits", "relu6", -5, "adam"), ("sklearn:breast_cancer", "relu", -6, "momentum"),
            ("sklearn:blobs", "relu", -3, "rmsprop")]):
        out.append(Scenario(f"dead {src[8:]} {act} bias {bias} {opt}", "DEAD_RELU",
                            _cfg(src, [32, 32], act, opt, 0.01, 20, i, bias_init=bias), SHIFTED))
    for i, (src, act, bias) in enumerate([("sklearn:wine", "leaky_relu", -3), ("sklearn:circles", "elu", -2),
                                          ("sklearn:breast_cancer", "leaky_relu", -4)]):
        out.append(Scenario(f"recovers {src[8:]} {act} bias {bias}", None,
                            _cfg(src, [32, 32], act, "adam", 0.01, 60, i, bias_init=bias), SHIFTED))
    for i, (src, act, init) in enumerate([("sklearn:wine", "sigmoid", "auto"), ("sklearn:wine", "tanh", "auto"),
                                          ("sklearn:breast_cancer", "tanh", "auto"),
                                          ("sklearn:digits", "sigmoid", "auto"),
                                          ("sklearn:circles", "sigmoid", "he_normal")]):
        pre = "none" if init == "auto" else "standardize"
        extra = {"init": init} if init != "auto" else {}
        options = {"factor": 0.5, "noise": 0.1, "n_samples": 400} if "circles" in src else None
        cfg = _cfg(src, [32] if init == "auto" else [64, 64, 64], act, "sgd", 0.05, 10, i, options=options,
                   preprocess=pre, **extra)
        if init != "auto":  # saturation from He init's scale on standardized inputs: scale the inputs up
            cfg["data"]["options"] = {**(options or {}), "noise": 0.1}
            cfg["model"]["init"] = "normal"
            cfg["model"]["init_std"] = 3.0
        # weights far too large also make the untrained network confidently wrong (BAD_INIT_LOSS)
        out.append(Scenario(f"saturated {src[8:]} {act} {pre}", "SATURATED", cfg,
                            {"HE_INIT_SATURATING"} if init == "auto" else {"BAD_INIT_LOSS"}))
    for i, (src, opt, lr) in enumerate([("sklearn:wine", "sgd", 30), ("sklearn:digits", "momentum", 5),
                                        ("sklearn:circles", "sgd", 50), ("sklearn:breast_cancer", "adam", 3),
                                        ("sklearn:blobs", "nesterov", 10)]):
        out.append(Scenario(f"lr too large {src[8:]} {opt} {lr}", "LR_TOO_LARGE",
                            _cfg(src, [32, 32], "relu", opt, lr, 15, i), {"ADAM_HIGH_LR"}))
    for i, (src, opt, lr) in enumerate([("sklearn:wine", "sgd", 1e-5), ("sklearn:digits", "sgd", 3e-6),
                                        ("sklearn:circles", "momentum", 1e-6), ("sklearn:breast_cancer", "adam", 1e-6),
                                        ("sklearn:blobs", "sgd", 1e-5)]):
        out.append(Scenario(f"lr too small {src[8:]} {opt} {lr}", "LR_TOO_SMALL",
                            _cfg(src, [32, 32], "relu", opt, lr, 12, i)))
    for i, (src, act, hidden, opt, lr, epochs) in enumerate([
            ("sklearn:wine", "relu", [32, 32], "adam", 0.01, 60), ("sklearn:digits", "tanh", [64], "adam", 0.003, 40),
            ("sklearn:circles", "relu", [32, 32, 32], "sgd", 0.1, 80),
            ("sklearn:breast_cancer", "sigmoid", [16], "adam", 0.01, 60),
            ("sklearn:blobs", "elu", [32, 16], "rmsprop", 0.003, 40),
            ("sklearn:iris", "tanh", [16, 16], "momentum", 0.05, 100),
            ("sklearn:spiral", "relu", [64, 64], "adam", 0.01, 150),
            ("sklearn:diabetes", "relu", [32], "adam", 0.01, 80),
            ("sklearn:sine", "tanh", [32, 32], "adam", 0.01, 200),
            ("sklearn:moons", "tanh", [64, 64, 64], "adam", 0.003, 150),
            ("sklearn:xor", "sigmoid", [16, 16], "adam", 0.03, 150),
            ("sklearn:digits", "relu", [128, 64, 32], "adamw", 0.001, 40)]):
        out.append(Scenario(f"healthy {src[8:]} {act} {hidden} {opt}", None,
                            _cfg(src, hidden, act, opt, lr, epochs, i)))
    return out


def variants_2() -> list[Scenario]:
    """A second set of variants, written after the first had been looked at: the measurement of the
    detectors as they stand (the first set helped shape them)."""
    out = []
    for i, (src, width, depth) in enumerate([("sklearn:xor", 24, 6), ("sklearn:spiral", 50, 5),
                                             ("sklearn:classification", 80, 7), ("sklearn:moons", 30, 8)]):
        out.append(Scenario(f"vanishing {src[8:]} {depth}x{width} sigmoid", "VANISHING_GRAD",
                            _cfg(src, [width] * depth, "sigmoid", ["sgd", "nesterov"][i % 2], 0.05, 10, 10 + i)))
    for i, (src, width, depth, act, std) in enumerate([
            ("sklearn:xor", 128, 5, "relu", 0.005), ("sklearn:spiral", 20, 7, "tanh", 0.03),
            ("sklearn:classification", 64, 6, "elu", 0.01), ("sklearn:regression", 48, 5, "tanh", 0.01)]):
        out.append(Scenario(f"collapse {src[8:]} {depth}x{width} {act} std {std}", "ACTIVATION_COLLAPSE",
                            _cfg(src, [width] * depth, act, ["sgd", "rmsprop"][i % 2], 0.01, 10, 20 + i,
                                 init="normal", init_std=std)))
    for i, (src, act, hidden) in enumerate([("sklearn:xor", "sigmoid", [8]), ("sklearn:spiral", "elu", [16, 16]),
                                            ("sklearn:regression", "tanh", [24, 24]),
                                            ("sklearn:classification", "relu6", [32])]):
        out.append(Scenario(f"zeros {src[8:]} {act} {hidden}", "SYMMETRY",
                            _cfg(src, hidden, act, ["adam", "sgd"][i % 2], 0.02, 8, 30 + i, init="zeros"),
                            {"ZEROS_INIT"}))
    for i, (src, bias, opt) in enumerate([("sklearn:xor", -3, "sgd"), ("sklearn:spiral", -5, "adam"),
                                          ("sklearn:classification", -8, "adamw"),
                                          ("sklearn:regression", -4, "momentum")]):
        out.append(Scenario(f"dead {src[8:]} relu bias {bias} {opt}", "DEAD_RELU",
                            _cfg(src, [24, 24, 24], "relu", opt, 0.01, 20, 40 + i, bias_init=bias), SHIFTED))
    for i, (src, act, std) in enumerate([("sklearn:xor", "tanh", 3.0), ("sklearn:spiral", "sigmoid", 4.0),
                                         ("sklearn:classification", "tanh", 2.0)]):
        # weights far too large saturate the units, and make the untrained network confidently wrong
        out.append(Scenario(f"saturated {src[8:]} {act} init std {std}", "SATURATED",
                            _cfg(src, [32, 32], act, "sgd", 0.05, 10, 50 + i, init="normal", init_std=std),
                            {"BAD_INIT_LOSS"}))
    out.append(Scenario("saturated digits tanh unscaled", "SATURATED",
                        _cfg("sklearn:digits", [32], "tanh", "sgd", 0.05, 10, 54, preprocess="none")))
    for i, (src, opt, lr) in enumerate([("sklearn:xor", "sgd", 40), ("sklearn:spiral", "adam", 5),
                                        ("sklearn:classification", "rmsprop", 2),
                                        ("sklearn:regression", "sgd", 5)]):
        out.append(Scenario(f"lr too large {src[8:]} {opt} {lr}", "LR_TOO_LARGE",
                            _cfg(src, [32, 32], "relu", opt, lr, 15, 60 + i), {"ADAM_HIGH_LR"}))
    for i, (src, opt, lr) in enumerate([("sklearn:xor", "sgd", 3e-6), ("sklearn:spiral", "adam", 1e-7),
                                        ("sklearn:classification", "momentum", 1e-6),
                                        ("sklearn:regression", "sgd", 1e-6)]):
        out.append(Scenario(f"lr too small {src[8:]} {opt} {lr}", "LR_TOO_SMALL",
                            _cfg(src, [32, 32], "tanh", opt, lr, 12, 70 + i)))
    for i, (src, act, hidden, opt, lr, epochs) in enumerate([
            ("sklearn:xor", "relu", [32, 32], "adam", 0.01, 100),
            ("sklearn:spiral", "tanh", [64, 64], "adam", 0.01, 200),
            ("sklearn:classification", "elu", [64, 32], "sgd", 0.05, 60),
            ("sklearn:regression", "relu", [64, 64], "adam", 0.003, 100),
            ("sklearn:wine", "sigmoid", [32, 32], "adam", 0.01, 80),
            ("sklearn:circles", "tanh", [32, 32, 32], "nesterov", 0.05, 100),
            ("sklearn:moons", "swish", [48, 48], "adamw", 0.005, 100),
            ("sklearn:sine", "relu", [64, 64], "adam", 0.003, 300),
            ("sklearn:breast_cancer", "relu", [64, 64, 64], "sgd", 0.05, 60),
            ("sklearn:digits", "elu", [128, 64], "rmsprop", 0.001, 30)]):
        out.append(Scenario(f"healthy {src[8:]} {act} {hidden} {opt}", None, _cfg(src, hidden, act, opt, lr, epochs,
                                                                                 80 + i)))
    return out


def run_scenario(sc: Scenario, runs_dir: Path) -> set[str]:
    """The finding codes a scenario's run produced."""
    from nnctl.config.load import load_spec
    from nnctl.errors import TrainingFailed
    from nnctl.training.session import train_run

    spec = load_spec(data={"name": "fm", **sc.config}, base_dir=runs_dir)
    try:
        summary = train_run(spec, runs_dir).summary
    except TrainingFailed as exc:  # diverged: its summary.json holds the findings
        summary = json.loads((Path(exc.run_dir) / "summary.json").read_text())
    return {f["code"] for f in summary["findings"]}


def judge(sc: Scenario, codes: set[str]) -> bool:
    """Right: the expected finding present and nothing else but allowed config warnings."""
    expected = {sc.expect} if sc.expect else set()
    return expected <= codes and not (codes - expected - sc.allowed)


def report(results: list[tuple[Scenario, set[str]]]) -> str:
    rows = sorted({sc.expect or "(healthy)" for sc, _ in results})
    seen = sorted({c for _, codes in results for c in codes if c not in WARNINGS})
    head = f"{'expected':<22}{'runs':>5}{'right':>6}  " + " ".join(f"{c[:10]:>10}" for c in seen)
    lines = [head]
    for row in rows:
        mine = [(sc, codes) for sc, codes in results if (sc.expect or "(healthy)") == row]
        counts = Counter(c for _, codes in mine for c in codes)
        right = sum(judge(sc, codes) for sc, codes in mine)
        lines.append(f"{row:<22}{len(mine):>5}{right:>6}  " + " ".join(f"{counts.get(c, 0):>10}" for c in seen))
    total_right = sum(judge(sc, codes) for sc, codes in results)
    lines.append(f"{'total':<22}{len(results):>5}{total_right:>6}")
    for sc, codes in results:
        if not judge(sc, codes):
            lines.append(f"WRONG {sc.name}: expected {sc.expect or 'nothing'}, got {sorted(codes) or 'nothing'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tuned", action="store_true", help="the scenarios the detectors were developed on")
    ap.add_argument("--set", type=int, choices=(1, 2), default=2,
                    help="which set of untuned variants (1 helped shape the detectors; 2 was written after)")
    args = ap.parse_args(argv)
    scenarios = SCENARIOS if args.tuned else variants() if args.set == 1 else variants_2()
    results = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k, sc in enumerate(scenarios, 1):
            results.append((sc, run_scenario(sc, Path(tmp))))
            print(f"  {k}/{len(scenarios)} {sc.name}: {sorted(results[-1][1]) or '-'}", file=sys.stderr)
    print(report(results))
    print(f"{len(results)} runs in {time.perf_counter() - t0:.0f} s")
    return 0 if all(judge(sc, codes) for sc, codes in results) else 1


if __name__ == "__main__":
    sys.exit(main())
