"""nnctl's benchmarks: `python -m benchmarks.run` (speed against scikit-learn and PyTorch),
`python -m benchmarks.diagnostics_overhead` (cost of the per-epoch health probe), and the example-config
checks `benchmarks.float32_accuracy` and `benchmarks.weight_hashes`."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def example_configs(names: str | None = None) -> list[Path]:
    """configs/*.yaml, sorted; `names` (comma-separated stems, e.g. "moons,iris") picks some of them."""
    paths = sorted((REPO / "configs").glob("*.yaml"))
    if names:
        wanted = set(names.split(","))
        paths = [p for p in paths if p.stem in wanted]
    return paths
