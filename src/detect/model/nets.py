"""The fusion network: a GPR branch, an EMI branch and a fusion head.

One class gives the fused, GPR-only and EMI-only models (``use_gpr`` / ``use_emi``). Each
branch has its own small score head, so the operator sees which sensor saw what, and the
fusion head sees a presence flag per sensor: with modality dropout in training, a sensor that
is missing or in FAULT degrades the output instead of breaking it.

Inputs are windows on the along-track grid: GPR ``(B, n_pos, n_samples)`` and EMI
``(B, n_pos, n_channels)``, plus ``present`` ``(B, 2)`` (GPR, EMI) in {0, 1}. Each input is
divided by a fixed scale (from the training data, kept in the weights) and compressed with
``asinh``, so the network sees the same dynamic range whatever the sensor gain.

GPR samples that are NaN are not data: a record shorter than the model's time axis, or
ground beyond the end of a short scan. With ``gpr_mask`` the GPR branch gets them as zeros
plus a second input channel that marks where the data is valid (trained with random
truncation in time and along the track, so it learns what "no data" means).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from detect.blocks import CLASSES

N_CLASSES = len(CLASSES)
FEATURES = 64


@dataclass(frozen=True)
class NetConfig:
    n_pos: int = 32
    gpr_samples: int = 128
    emi_channels: int = 8
    use_gpr: bool = True
    use_emi: bool = True
    width: int = 16
    dropout: float = 0.1
    gpr_mask: bool = True

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _conv2d(c_in: int, c_out: int, k: tuple[int, int], s: tuple[int, int]) -> nn.Sequential:
    pad = (k[0] // 2, k[1] // 2)
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, stride=s, padding=pad, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _conv1d(c_in: int, c_out: int, k: int, s: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, k, stride=s, padding=k // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


def _out_len(n: int, k: int, s: int) -> int:
    return (n + 2 * (k // 2) - k) // s + 1


class GprBranch(nn.Module):
    """2-D convolutions over the B-scan patch (along-track x time), then a dense layer.

    No global pooling: where the reflection sits in the window (centre vs edge) and in time
    (depth) is what the labels and the depth head need.
    """

    def __init__(self, n_pos: int, n_samples: int, width: int, c_in: int = 1) -> None:
        super().__init__()
        w = width
        layers = [
            ((c_in, w), (3, 7), (2, 2)),
            ((w, 2 * w), (3, 3), (2, 2)),
            ((2 * w, 3 * w), (3, 3), (2, 2)),
            ((3 * w, 4 * w), (3, 3), (1, 2)),
        ]
        p, t = n_pos, n_samples
        mods = []
        for (c_in, c_out), k, s in layers:
            mods.append(_conv2d(c_in, c_out, k, s))
            p, t = _out_len(p, k[0], s[0]), _out_len(t, k[1], s[1])
        self.convs = nn.Sequential(*mods)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * p * t, FEATURES), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        """``x``: ``(B, n_pos, n_samples)`` or ``(B, channels, n_pos, n_samples)``."""
        return self.fc(self.convs(x.unsqueeze(1) if x.dim() == 3 else x))


class EmiBranch(nn.Module):
    """1-D convolutions along the track over the decay-gate channels."""

    def __init__(self, n_pos: int, n_channels: int, width: int) -> None:
        super().__init__()
        w = 2 * width
        specs = [((n_channels, w), 5, 1), ((w, w), 5, 2), ((w, 2 * w), 3, 2)]
        p = n_pos
        mods = []
        for (c_in, c_out), k, s in specs:
            mods.append(_conv1d(c_in, c_out, k, s))
            p = _out_len(p, k, s)
        self.convs = nn.Sequential(*mods)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(2 * w * p, FEATURES), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x.transpose(1, 2)))


class FusionNet(nn.Module):
    """Returns ``(mine_logit, class_logits, depth_m, gpr_logit, emi_logit)``.

    A branch the model does not have returns a zero logit (the wrapper reports it as absent).
    """

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        if not (cfg.use_gpr or cfg.use_emi):
            raise ValueError("a model needs at least one of use_gpr, use_emi")
        self.cfg = cfg
        self.use_gpr = cfg.use_gpr
        self.use_emi = cfg.use_emi
        self.gpr_scale: Tensor
        self.emi_scale: Tensor
        self.register_buffer("gpr_scale", torch.ones(()))
        self.register_buffer("emi_scale", torch.ones(cfg.emi_channels))
        self.gpr_mask = cfg.gpr_mask
        c_in = 2 if cfg.gpr_mask else 1
        self.gpr = GprBranch(cfg.n_pos, cfg.gpr_samples, cfg.width, c_in) if cfg.use_gpr else None
        self.emi = EmiBranch(cfg.n_pos, cfg.emi_channels, cfg.width) if cfg.use_emi else None
        self.gpr_head = nn.Linear(FEATURES, 1) if cfg.use_gpr else None
        self.emi_head = nn.Linear(FEATURES, 1) if cfg.use_emi else None
        n_in = FEATURES * (int(cfg.use_gpr) + int(cfg.use_emi)) + 2
        self.head = nn.Sequential(
            nn.Linear(n_in, FEATURES),
            nn.ReLU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(FEATURES, 1 + N_CLASSES + 1),
        )

    def forward(
        self, gpr: Tensor, emi: Tensor, present: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        batch = present.shape[0]
        zero = torch.zeros(batch, dtype=present.dtype, device=present.device)
        feats = []
        gpr_logit = zero
        emi_logit = zero
        if self.gpr is not None and self.gpr_head is not None:
            if self.gpr_mask:
                valid = torch.isfinite(gpr)
                x = torch.asinh(torch.where(valid, gpr, torch.zeros_like(gpr)) / self.gpr_scale)
                g = self.gpr(torch.stack([x, valid.to(x.dtype)], dim=1))
            else:
                g = self.gpr(torch.asinh(gpr / self.gpr_scale))
            gpr_logit = self.gpr_head(g).squeeze(1)
            feats.append(g * present[:, 0:1])
        if self.emi is not None and self.emi_head is not None:
            e = self.emi(torch.asinh(emi / self.emi_scale))
            emi_logit = self.emi_head(e).squeeze(1)
            feats.append(e * present[:, 1:2])
        feats.append(present)
        out = self.head(torch.cat(feats, dim=1))
        mine_logit = out[:, 0]
        class_logits = out[:, 1 : 1 + N_CLASSES]
        depth_m = nn.functional.softplus(out[:, 1 + N_CLASSES])
        return mine_logit, class_logits, depth_m, gpr_logit, emi_logit


class CalibratedNet(nn.Module):
    """The network plus its calibration: what ships, what exports, what the classifier runs.

    P(mine) = sigmoid(a * z + b) (Platt scaling of the fused logit, fitted on a held-out split;
    one (a, b) per sensor combination, since a fused model with one sensor missing has a
    different reliability), class probabilities = softmax(logits / T), and each branch score is
    Platt-scaled the same way. Returns ``(p_mine, class_probs, depth_m, p_gpr, p_emi)``.
    """

    def __init__(self, net: FusionNet) -> None:
        super().__init__()
        self.net = net
        # rows: both present, GPR only, EMI only; columns: a, b
        self.platt: Tensor
        self.branch_platt: Tensor
        self.class_temperature: Tensor
        self.register_buffer("platt", torch.tensor([[1.0, 0.0]] * 3))
        self.register_buffer("branch_platt", torch.tensor([[1.0, 0.0]] * 2))
        self.register_buffer("class_temperature", torch.ones(()))

    @property
    def cfg(self) -> NetConfig:
        return self.net.cfg

    def forward(
        self, gpr: Tensor, emi: Tensor, present: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        z, class_logits, depth_m, zg, ze = self.net(gpr, emi, present)
        g = present[:, 0]
        e = present[:, 1]
        row = (g * e).unsqueeze(1) * self.platt[0] + (g * (1 - e)).unsqueeze(1) * self.platt[1]
        row = row + ((1 - g) * e).unsqueeze(1) * self.platt[2]
        p_mine = torch.sigmoid(row[:, 0] * z + row[:, 1])
        class_probs = torch.softmax(class_logits / self.class_temperature, dim=1)
        p_gpr = torch.sigmoid(self.branch_platt[0, 0] * zg + self.branch_platt[0, 1])
        p_emi = torch.sigmoid(self.branch_platt[1, 0] * ze + self.branch_platt[1, 1])
        return p_mine, class_probs, depth_m, p_gpr, p_emi


class EnsembleNet(nn.Module):
    """Calibrated networks of one architecture, trained apart (other seeds, other simulated
    lanes), scored together: each output is the mean of the members' calibrated outputs.

    One network learns the full-wave training scenes by heart after its first epoch (its
    held-out full-wave loss is lowest there), so which scenes it then gets right varies from
    one training run to the next; the mean of several runs varies less. Same inputs and
    outputs as :class:`CalibratedNet`, so it exports, loads and scores the same way.
    """

    def __init__(self, members: Sequence[CalibratedNet]) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0].cfg
        for i, m in enumerate(members[1:], start=1):
            if m.cfg != first:
                raise ValueError(f"ensemble member {i} has another network ({m.cfg} vs {first})")
        self.members = nn.ModuleList(members)
        self._cfg = first

    @property
    def cfg(self) -> NetConfig:
        return self._cfg

    def forward(
        self, gpr: Tensor, emi: Tensor, present: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        outs = [m(gpr, emi, present) for m in self.members]
        p_mine, class_probs, depth_m, p_gpr, p_emi = (
            torch.stack(parts).mean(dim=0) for parts in zip(*outs, strict=True)
        )
        return p_mine, class_probs, depth_m, p_gpr, p_emi


#: what ships: one calibrated network or an ensemble of them
ShippedNet = CalibratedNet | EnsembleNet


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
