"""Each replica's scaling in the Monte-Carlo engine: its features and its regression target standardized with the
statistics of its own training split, stacked along a leading replica axis.

The arithmetic is the one `fit` does on a single run (data.Standardizer, data.TargetScale), in
the same float32 operations, so a replica trains on bitwise the numbers its run alone would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from ..data import Data, Standardizer, TargetScale, rows_at
from ..metrics import REGRESSION


@dataclass
class Scaling:
    """Replicas x 1 x columns statistics: features (mean, std, what a missing value becomes) and, when a regression
    target is standardized, its mean and scale (`scales`, one float per replica, converts metrics back)."""

    mean: torch.Tensor
    std: torch.Tensor
    hole: Optional[torch.Tensor]  # per replica, what a missing value becomes once scaled; None: no missing values
    target_mean: Optional[torch.Tensor] = None
    target_scale: Optional[torch.Tensor] = None
    scales: Optional[np.ndarray] = None

    @classmethod
    def of(cls, data: Data, config, splits: list, device: torch.device) -> "Scaling":
        """The scaling of each training split in `splits`, as `fit` would fit it."""
        scalers = [Standardizer.fit(rows_at(data.x, s.train), data.onehot(), scale=config.standardize) for s in splits]
        mean = torch.stack([s.mean for s in scalers])[:, None].to(device)
        std = torch.stack([s.std for s in scalers])[:, None].to(device)
        hole = (torch.stack([(s.fill - s.mean) / s.std for s in scalers])[:, None].to(device)
                if scalers[0].fill is not None else None)
        if not (config.standardize_target and config.loss in REGRESSION):
            return cls(mean, std, hole)
        targets = [TargetScale.fit(rows_at(data.y, s.train)) for s in splits]
        scales = np.array([t.scale for t in targets])
        return cls(mean, std, hole, torch.stack([t.mean for t in targets])[:, None].to(device),
                   torch.tensor(scales, dtype=torch.float32, device=device).view(-1, 1, 1), scales)

    def at(self, index: torch.Tensor) -> "Scaling":
        """The scaling of the replicas at `index`."""
        def kept(value):
            return None if value is None else value[index]
        return Scaling(self.mean[index], self.std[index], kept(self.hole), kept(self.target_mean),
                       kept(self.target_scale),
                       None if self.scales is None else self.scales[index.cpu().numpy()])

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Rows standardized with their replica's training statistics, missing values filled with its training means."""
        z = (x - self.mean) / self.std
        return z if self.hole is None else torch.where(torch.isnan(x), self.hole, z)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Targets as each replica trains on them."""
        return y if self.target_mean is None else (y - self.target_mean) / self.target_scale
