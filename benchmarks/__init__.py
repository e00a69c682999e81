"""nnctl's benchmarks: `python -m benchmarks.run` (speed against scikit-learn and PyTorch) and
`python -m benchmarks.diagnostics_overhead` (cost of the per-epoch health probe)."""
