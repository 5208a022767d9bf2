"""Inception-v3 pool3 features (2048-d) for a standard FID, from a weights file the user has.

Two weights files are understood (the kind is read from the checkpoint's ``fc.weight`` shape):
  * pytorch-fid's port of the TF FID network (``pt_inception-2015-12-05-*.pth``, fc 1008 classes) —
    the FID of the literature. Needs ``torchvision`` and ``pytorch-fid`` (its FID Inception blocks).
  * torchvision's ImageNet Inception-v3 (``inception_v3_google-*.pth``, fc 1000) — needs
    ``torchvision``; close to but not identical with TF-FID numbers.

Images (N, C, H, W) in [-1, 1]; grayscale is repeated to 3 channels, then resized to 299×299
(bilinear). Nothing is downloaded. Not exercised by the test suite where torchvision is missing.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

Tensor = torch.Tensor

NEEDS = (
    "--inception needs 'torchvision' (pip install torchvision, the build matching your torch) "
    "and, for pytorch-fid's FID weights file, 'pytorch-fid' (pip install pytorch-fid)"
)


def _fid_inception(torchvision, state: dict) -> nn.Module:  # pytorch-fid's TF-ported network
    try:
        from pytorch_fid import inception as pf
    except ImportError as e:
        raise ImportError(f"{NEEDS}: this weights file is pytorch-fid's FID Inception") from e
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    # the TF graph's blocks differ from torchvision's in pooling details (pytorch-fid mirrors them)
    net.Mixed_5b = pf.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pf.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pf.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pf.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pf.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pf.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pf.FIDInceptionE_1(1280)
    net.Mixed_7c = pf.FIDInceptionE_2(2048)
    net.load_state_dict(state)
    return net


def load_inception_features(path: str, device: str | torch.device = "cpu") -> tuple[Callable[[Tensor], Tensor], str]:
    """→ (feature function (B, C, H, W) in [-1, 1] → (B, 2048), description of the weights)."""
    try:
        import torchvision
    except ImportError as e:
        raise ImportError(NEEDS) from e
    state = torch.load(path, map_location="cpu", weights_only=True)
    if "fc.weight" not in state:
        raise ValueError(f"{path}: not an Inception-v3 state dict (no fc.weight)")
    if state["fc.weight"].shape[0] == 1008:
        net, kind = _fid_inception(torchvision, state), "pytorch-fid FID Inception (TF port)"
        mean = std = None  # the TF network takes [-1, 1] directly
    else:
        net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=False)
        net.load_state_dict(state)
        kind = "torchvision ImageNet Inception-v3"
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    net.fc = nn.Identity()
    net = net.eval().to(device)

    @torch.no_grad()
    def features(x: Tensor) -> Tensor:
        x = x.to(device, torch.float32)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)  # (B, 3, H, W)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        if mean is not None:
            x = ((x + 1) / 2 - mean.to(device)) / std.to(device)
        return net(x)  # (B, 2048) pool3 (fc = identity, dropout off in eval)

    return features, kind
