"""Each replica's scaling in the Monte-Carlo engine: its features and its regression target standardized with the
statistics of its own training split (a log target's logarithm), stacked along a leading replica axis.

The arithmetic is the one `fit` does on a single run (data.Standardizer, data.TargetScale), in
the same float32 operations, so a replica trains on bitwise the numbers its run alone would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, cast

import numpy as np
import torch

from ..data import Data, Standardizer, TargetScale, rows_at


@dataclass
class Scaling:
    """Replicas x 1 x columns statistics: features (mean, std, what a missing value becomes) and, when a regression
    target is standardized or transformed, its mean and scale (`scales`, one float per replica, converts metrics back)
    and whether it is trained on its logarithm (`log`)."""

    mean: torch.Tensor
    std: torch.Tensor
    hole: Optional[torch.Tensor]  # per replica, what a missing value becomes once scaled; None: no missing values
    target_mean: Optional[torch.Tensor] = None
    target_scale: Optional[torch.Tensor] = None
    scales: Optional[np.ndarray] = None
    log: bool = False

    @classmethod
    def of(cls, data: Data, config, splits: list, device: torch.device) -> "Scaling":
        """The scaling of each training split in `splits`, as `fit` would fit it."""
        x = cast(torch.Tensor, data.x)  # one tensor: the stacked engine takes no other inputs (_vectorized.refusal)
        fills = data.missing == "mean"
        scalers = [Standardizer.fit(rows_at(x, s.train), data.onehot(), config.standardize, fills) for s in splits]
        mean = torch.stack([s.mean for s in scalers])[:, None].to(device)
        std = torch.stack([s.std for s in scalers])[:, None].to(device)
        # missing="mean" fills every replica's holes (fit's Standardizer does); without it NaN are refused on reading
        holes = [
            (s.fill - s.mean) / s.std if s.fill is not None else torch.full_like(s.mean, float("nan")) for s in scalers
        ]
        hole = torch.stack(holes)[:, None].to(device) if any(s.fill is not None for s in scalers) else None
        if not TargetScale.asked(config):
            return cls(mean, std, hole)
        targets = [TargetScale.of_training(rows_at(data.y, s.train), config) for s in splits]
        scales = np.array([t.scale for t in targets])
        return cls(
            mean,
            std,
            hole,
            torch.stack([t.mean for t in targets])[:, None].to(device),
            torch.tensor(scales, dtype=torch.float32, device=device).view(-1, 1, 1),
            scales,
            targets[0].log,
        )

    def at(self, index: torch.Tensor) -> "Scaling":
        """The scaling of the replicas at `index`."""

        def kept(value):
            return None if value is None else value[index]

        return Scaling(
            self.mean[index],
            self.std[index],
            kept(self.hole),
            kept(self.target_mean),
            kept(self.target_scale),
            None if self.scales is None else self.scales[index.cpu().numpy()],
            self.log,
        )

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Rows standardized with their replica's training statistics, missing values filled with its training means."""
        z = (x - self.mean) / self.std
        return z if self.hole is None else torch.where(torch.isnan(x), self.hole, z)

    def targets(self, y: torch.Tensor) -> torch.Tensor:
        """Targets as each replica trains on them, from `y` on the scale it trains on (log y for a log target, which
        the stacked engine takes once for all its rows)."""
        if self.target_mean is None or self.target_scale is None:  # Scaling.of gives both or neither
            return y
        return (y - self.target_mean) / self.target_scale

    def restore(self, z: torch.Tensor) -> torch.Tensor:
        """A log target's outputs or targets, as each replica trains on them, back in the target's own units, in float64
        as `fit` measures them (data.TargetScale.restore)."""
        if self.target_mean is None or self.scales is None:
            raise ValueError("restore takes the scaling of a log target")  # Scaling.of gives a log target both
        scales = torch.from_numpy(self.scales).to(z.device).view(-1, 1, 1)
        return torch.exp(z.double() * scales + self.target_mean.double())
