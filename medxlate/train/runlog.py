"""The run's logs: ``log.jsonl`` (every row), ``train.csv`` and ``val.csv``, optional
TensorBoard, and a tqdm progress bar with the loss and it/s. Only rank 0 logs."""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

from medxlate.errors import UsageError
from medxlate.train.budget import format_duration


class RunLog:
    """Append-only logs of a run folder.

    Args:
        run_dir: the run folder.
        tensorboard: also write TensorBoard events under ``run_dir/tensorboard``.
        resume_step: when resuming, rows logged after this step by the interrupted run are
            dropped so that the logs describe one consistent run.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = False, resume_step: int | None = None):
        self.run_dir = run_dir
        self.jsonl = run_dir / "log.jsonl"
        self.csv_paths = {"train": run_dir / "train.csv", "val": run_dir / "val.csv"}
        self.writer = None
        if tensorboard:
            self.writer = check_tensorboard()(str(run_dir / "tensorboard"))
        if resume_step is not None:
            self._truncate(resume_step)

    def _truncate(self, step: int) -> None:
        if self.jsonl.is_file():
            rows = [json.loads(line) for line in self.jsonl.read_text().splitlines() if line]
            kept = [r for r in rows if r.get("step", 0) <= step]
            self.jsonl.write_text("".join(json.dumps(r) + "\n" for r in kept))
        for path in self.csv_paths.values():
            if path.is_file():
                with open(path, newline="") as fh:
                    rows = list(csv.DictReader(fh))
                fields = list(rows[0]) if rows else []
                kept = [r for r in rows if int(r["step"]) <= step]
                with open(path, "w", newline="") as fh:
                    w = csv.DictWriter(fh, fieldnames=fields)
                    w.writeheader()
                    w.writerows(kept)

    def write(self, kind: str, row: dict[str, Any]) -> None:
        """Log a row of kind "train" or "val" (``row["step"]`` required)."""
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps({"kind": kind, **row}) + "\n")
        path = self.csv_paths[kind]
        new = not path.is_file() or path.stat().st_size == 0
        fields = list(row) if new else _header(path)
        if not new and set(row) - set(fields):
            # A later stage logs other losses: widen the header, keeping earlier rows.
            fields += [k for k in row if k not in fields]
            _rewrite(path, fields)
        with open(path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)
        if self.writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float):
                    self.writer.add_scalar(f"{kind}/{key}", value, row["step"])

    def note(self, kind: str, row: dict[str, Any]) -> None:
        """A row for ``log.jsonl`` only (facts about the run, e.g. the pretrained parts)."""
        with open(self.jsonl, "a") as fh:
            fh.write(json.dumps({"kind": kind, **row}) + "\n")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def check_tensorboard():
    """TensorBoard's SummaryWriter, or a UsageError when the package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise UsageError("tensorboard=true needs the tensorboard package "
                         "(pip install tensorboard), which is not installed") from exc
    return SummaryWriter


def _header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


class Progress:
    """A tqdm bar over optimiser cycles on a terminal; when stderr is a file or a pipe, a plain
    line about every 5 % of the run (no carriage returns); nothing when ``enabled`` is False.

    Both show the step, the loss (then the next losses, three in all), the last validation score (``val``, set by the
    engine after each validation), steps/s and the ETA (the end of the steps or of the time
    budget, whichever comes first).
    """

    def __init__(self, total: int, initial: int, enabled: bool,
                 time_budget: float | None = None, elapsed0: float = 0.0):
        self.bar = None
        self.plain = enabled and not sys.stderr.isatty()
        self.step, self.total, self.initial = initial, total, initial
        self.every = max(1, total // 20)
        self.time_budget, self.elapsed0 = time_budget, elapsed0
        self.val: tuple[str, float | None] | None = None
        self.t0 = self.last_line = time.perf_counter()
        if enabled and not self.plain:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True, mininterval=1.0,
                            file=sys.stderr, desc="train")

    def _rate_eta(self) -> tuple[float, float]:
        spent = time.perf_counter() - self.t0
        rate = (self.step - self.initial) / spent if spent > 0 else 0.0
        eta = (self.total - self.step) / rate if rate > 0 else float("inf")
        if self.time_budget is not None:
            eta = min(eta, max(0.0, self.time_budget - self.elapsed0 - spent))
        return rate, eta

    def _fields(self, losses: dict[str, float]) -> dict[str, str]:
        keys = sorted(losses, key=lambda k: k != "loss")[:3]     # the total loss first
        shown = {k: f"{losses[k]:.4g}" for k in keys}
        if self.val is not None and self.val[1] is not None:
            shown["val " + self.val[0].replace("vol_", "").replace("val_", "")] = \
                f"{self.val[1]:.4g}"
        return shown

    def _due(self) -> bool:
        """A plain line every 5 % of the steps, or of the time budget when it ends first."""
        if self.step % self.every == 0 or self.step == self.total:
            return True
        if self.time_budget is None:
            return False
        now = time.perf_counter()
        if now - self.last_line >= self.time_budget / 20:
            return True
        return False

    def update(self, losses: dict[str, float]) -> None:
        self.step += 1
        if self.plain and self._due():
            self.last_line = time.perf_counter()
            rate, eta = self._rate_eta()
            shown = ", ".join(f"{k} {v}" for k, v in self._fields(losses).items())
            print(f"train: step {self.step}/{self.total}: {shown}, {rate:.3g} steps/s, "
                  f"ETA {format_duration(eta) if eta < float('inf') else '?'}",
                  file=sys.stderr, flush=True)
        if self.bar is not None:
            fields = self._fields(losses)
            if self.time_budget is not None:
                fields["budget left"] = format_duration(self._rate_eta()[1])
            self.bar.set_postfix(fields, refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _rewrite(path: Path, fields: list[str]) -> None:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
