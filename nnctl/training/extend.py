"""resume --epochs N: a run continued to a new total number of epochs (DESIGN §3).

A finished run keeps the checkpoint of its last epoch (the loop writes one when it finishes);
`extended_spec` gives the config with the new total, and `extend_trainer` turns a trainer restored
from that checkpoint into one that trains on to it, saying what (if anything) differs from having
trained that long from the start.
"""

from __future__ import annotations

from nnctl.config.load import resolved_yaml
from nnctl.errors import RunDirError
from nnctl.runs import RunDir
from nnctl.training.checkpoint import CheckpointWriter, config_digest


def extended_spec(run: RunDir, spec, summary: dict | None, epochs: int):
    """The spec with train.epochs = `epochs`; RunDirError if that is no more than already trained."""
    done = int((summary or {}).get("epochs_run") or 0)
    if epochs <= done:
        raise RunDirError(f"{run.path}: --epochs {epochs} is not more than the {done} epoch{'s' * (done != 1)} already "
                          f"trained; give the total number of epochs wanted (e.g. --epochs {max(2 * done, 1)})")
    return spec.replace(train=spec.train.replace(epochs=epochs))


def extend_trainer(run: RunDir, trainer, old, summary: dict, epochs: int) -> str:
    """Make the restored trainer continue to `epochs` epochs: the checkpoint and config.yaml are
    rewritten for the new total (checkpoint first: its config digest then names the new total, and a
    later resume --epochs N finds them agreeing). Returns what differs from training N from the start."""
    was = old.train.epochs
    differs = []
    if old.optimizer.schedule.name == "cosine":
        differs.append(f"the cosine schedule is re-planned over {epochs} epochs from epoch {trainer.epoch + 1} "
                       f"(the first {trainer.epoch} followed the plan over {was})")
    if trainer.stopper.patience is not None:
        if trainer.stopper.should_stop:
            trainer.stopper.waited = 0
        differs.append("early stopping's patience restarts now")
    t = old.train
    if t.stop_at_loss is not None and trainer.rows and trainer.rows[-1]["train_loss"] <= t.stop_at_loss:
        differs.append(f"the training loss is already below stop_at_loss ({t.stop_at_loss:g}): it stops after one "
                       f"more epoch")
    CheckpointWriter(run, config_digest(trainer.spec)).write(trainer)
    run.write_text(RunDir.CONFIG, resolved_yaml(trainer.spec))
    stale = drop_stale_results(run)
    if stale:
        differs.append(f"removed {', '.join(stale)} (results of the model before the extension)")
    same = "; ".join(differs) if differs else (f"bit-identical to training {epochs} epochs from the start")
    message = f"extended from epoch {trainer.epoch} to {epochs} epochs: {same}"
    summary["epochs_planned"] = epochs
    summary.setdefault("extended", []).append({"from_epoch": trainer.epoch, "planned": was, "to": epochs,
                                               "note": message})
    return message


def drop_stale_results(run: RunDir) -> list[str]:
    """Remove what described the model before an extension: eval.json and eval-*.json (compare and
    report would show them as this run's test metrics) and the default export, model.onnx."""
    import os

    gone = []
    for name in sorted(os.listdir(run.path)):
        if name == RunDir.EVAL or (name.startswith("eval-") and name.endswith(".json")) or name == "model.onnx":
            try:
                os.unlink(run.file(name))  # (a link is removed, never followed)
                gone.append(name)
            except OSError:
                pass
    return gone
