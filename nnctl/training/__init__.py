"""Training: the loop (loop.py) over batches (batches.py) with early stopping (early_stopping.py),
checkpoints (checkpoint.py), and the session around them that writes a run directory (session.py)."""
