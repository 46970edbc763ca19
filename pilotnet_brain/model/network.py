"""PilotNet (Bojarski et al. 2016), as in DeepLearningStudio's PyTorch version.

Input 3x66x200 in [0, 1], BatchNorm on the input, five convolutions (24/36/48 5x5 stride 2, 64/64
3x3), flatten to 1152, fully connected 1164-100-50-10-2. Every ReLU is its own module so that
conv+ReLU and linear+ReLU pairs can be fused for quantisation. Outputs: normalised (v, w).
"""

from __future__ import annotations

import torch
from torch import nn

from pilotnet_brain.model.architecture import FLATTENED_FEATURES
from pilotnet_brain.model.preprocessing import INPUT_SHAPE


class PilotNet(nn.Module):
    def __init__(self, num_outputs: int = 2):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(INPUT_SHAPE[0])
        self.features = nn.Sequential(
            nn.Conv2d(3, 24, 5, stride=2),
            nn.ReLU(),
            nn.Conv2d(24, 36, 5, stride=2),
            nn.ReLU(),
            nn.Conv2d(36, 48, 5, stride=2),
            nn.ReLU(),
            nn.Conv2d(48, 64, 3),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
        )
        self.flatten = nn.Flatten()
        self.regressor = nn.Sequential(
            nn.Linear(FLATTENED_FEATURES, 1164),
            nn.ReLU(),
            nn.Linear(1164, 100),
            nn.ReLU(),
            nn.Linear(100, 50),
            nn.ReLU(),
            nn.Linear(50, 10),
            nn.ReLU(),
            nn.Linear(10, num_outputs),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.regressor(self.flatten(self.features(self.input_norm(x))))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
