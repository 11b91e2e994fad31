"""The phone-photo simulation in torch, batched, on the training device (a GPU when there is one).

Same camera as pocketvec.data.augment (the CPU/albumentations path), split in two: the CPU prepares
each sample's `Scene` (augment_scene_params: background crop, the item in a canvas, the homography,
every random number), then this module finishes a whole batch on the device: perspective warp by
grid_sample, compositing with an anti-aliased edge and a contact shadow, a fingertip occluder, cast
shadow / vignette / glare, colour temperature, exposure, defocus / motion / gaussian blur, low
resolution, sensor noise and a JPEG approximation (DCT-block quantisation).

    sim = TorchPhotoSim(output_size=224)
    pixels = sim(stack_scenes(scenes), device)   # (B, 3, S, S) float32 0-255, like Batch.pixels
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pocketvec.data import augment_torch_ops as ops
from pocketvec.runtime.phone_sim.scene_params import INDEX, Scene

KERNEL = 15  # largest blur kernel (odd): defocus radius, motion length and 3 sigma fit at strength <= 2
LOW_RES_LEVELS = 8  # low-resolution factors are rounded to this many sizes (one resize per size)


@dataclass
class SceneBatch:
    """Stacked scenes as tensors (CPU, pinned by the data loader if asked); cheap to send to a device."""

    frames: torch.Tensor  # (B, S, S, 3) uint8
    items: torch.Tensor  # (B, S, S, 3) uint8
    item_hw: torch.Tensor  # (B, 2) float32
    inverse_homography: torch.Tensor  # (B, 3, 3) float32
    params: torch.Tensor  # (B, P) float32
    noise_seed: int

    def __len__(self) -> int:
        return self.frames.shape[0]


def stack_scenes(scenes: Sequence[Scene]) -> SceneBatch:
    return SceneBatch(
        frames=torch.from_numpy(np.stack([s.frame for s in scenes])),
        items=torch.from_numpy(np.stack([s.item for s in scenes])),
        item_hw=torch.tensor([s.item_hw for s in scenes], dtype=torch.float32),
        inverse_homography=torch.from_numpy(np.stack([s.inverse_homography for s in scenes])),
        params=torch.from_numpy(np.stack([s.params for s in scenes])),
        noise_seed=int(sum(s.noise_seed for s in scenes) % (2**62)),
    )


class TorchPhotoSim:
    """Callable `(SceneBatch, device) -> (B, 3, S, S) float32 0-255 photos`, deterministic per batch."""

    def __init__(self, output_size: int = 224) -> None:
        self.size = output_size

    def __call__(self, batch: SceneBatch, device: torch.device | str = "cpu") -> torch.Tensor:
        device = torch.device(device)
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            p = batch.params.to(device, non_blocking=True)
            get = {name: p[:, i] for name, i in INDEX.items()}
            frames = batch.frames.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
            items = batch.items.to(device, non_blocking=True).permute(0, 3, 1, 2).float()
            x, y = ops.pixel_grid(self.size, device)
            out = self._composite(frames, items, batch.item_hw.to(device), batch.inverse_homography.to(device), get)
            out = self._finger(out, x, y, get)
            out = self._light(out, x, y, get)
            out = self._colour(out, get)
            out = self._blur(out, get)
            out = self._low_resolution(out, get)
            out = self._noise(out, get, batch.noise_seed)
            out = torch.where(ops.column(get["jpeg"])[:, None] > 0.5,
                              ops.jpeg_approximation(out, get["jpeg_quality"]), out)
            return out.clamp(0.0, 255.0).round()

    def _composite(self, frames: torch.Tensor, items: torch.Tensor, item_hw: torch.Tensor, inverse: torch.Tensor,
                   get: dict[str, torch.Tensor]) -> torch.Tensor:
        """Warp each item onto its frame (bilinear, edges replicated inside an anti-aliased mask) over a
        soft contact shadow."""
        s = self.size
        r = torch.arange(s, device=frames.device, dtype=torch.float32)
        py, px = torch.meshgrid(r, r, indexing="ij")  # frame pixel centres (OpenCV's convention)
        h = [ops.column(inverse[:, i, j]) for i in range(3) for j in range(3)]

        def source(shift_x: torch.Tensor, shift_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = px[None] - ops.column(shift_x), py[None] - ops.column(shift_y)
            w = (h[6] * x + h[7] * y + h[8]).clamp_min(1e-6)  # the item never crosses the camera plane
            return (h[0] * x + h[1] * y + h[2]) / w, (h[3] * x + h[4] * y + h[5]) / w

        def mask(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
            h, w = ops.column(item_hw[:, 0]), ops.column(item_hw[:, 1])
            return ((u + 1).clamp(0, 1) * (w - u).clamp(0, 1) * (v + 1).clamp(0, 1) * (h - v).clamp(0, 1))

        zero = torch.zeros(len(frames), device=frames.device)
        u, v = source(zero, zero)
        alpha = mask(u, v)[:, None]
        uc = torch.minimum(u.clamp_min(0), ops.column(item_hw[:, 1]) - 1)
        vc = torch.minimum(v.clamp_min(0), ops.column(item_hw[:, 0]) - 1)
        grid = torch.stack([uc * (2 / (s - 1)) - 1, vc * (2 / (s - 1)) - 1], -1)
        warped = F.grid_sample(items, grid, mode="bilinear", padding_mode="border", align_corners=True)
        contact = get["contact"] > 0.5
        if contact.any():
            su, sv = source(get["contact_dx"] * s, get["contact_dy"] * s)
            soft = ops.gaussian_blur(mask(su, sv)[:, None], (get["contact_sigma"] * s).clamp_min(0.8), KERNEL)
            frames = frames * (1 - soft * ops.column(get["contact_dark"] * contact)[:, None])
        return warped * alpha + frames * (1 - alpha)

    def _finger(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                get: dict[str, torch.Tensor]) -> torch.Tensor:
        """A skin-coloured, softly shaded capsule entering from one edge (the CPU path's main occluder)."""
        on = get["finger"] > 0.5
        if not on.any():
            return out
        get = {name: values[on] for name, values in get.items()}
        turn = ops.column(get["finger_turn"])
        # coordinates in which the finger enters from the bottom edge (y' = 1)
        xr = torch.where(turn == 0, x, torch.where(turn == 1, y, torch.where(turn == 2, 1 - x, 1 - y)))
        yr = torch.where(turn == 0, y, torch.where(turn == 1, 1 - x, torch.where(turn == 2, 1 - y, x)))
        half = ops.column(get["finger_width"]) / 2
        tip = 1.0 - ops.column(get["finger_length"])
        along = ops.column(get["finger_along"])
        body = ((half - (xr - along).abs()) / half).clamp(0, 1) * (yr > tip)
        cap = torch.sqrt((1 - ((xr - along) / half) ** 2 - ((yr - tip) / half) ** 2).clamp_min(0)) * (yr <= tip)
        shape = torch.maximum(body, cap)
        alpha = (shape * 4).clamp(0, 1)[:, None]
        alpha = ops.gaussian_blur(alpha, get["finger_sigma"] * self.size, KERNEL)
        skin = torch.stack([get["skin_r"], get["skin_g"], get["skin_b"]], 1)[:, :, None, None]
        colour = skin * (0.7 + 0.3 * torch.sqrt(shape))[:, None]
        result = out.clone()
        result[on] = out[on] * (1 - alpha) + colour * alpha
        return result

    def _light(self, out: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
               get: dict[str, torch.Tensor]) -> torch.Tensor:
        inside = ops.half_plane_or_blob(x, y, get["shadow_blob"], get["shadow_angle"], get["shadow_px"],
                                        get["shadow_py"], get["shadow_rx"].clamp_min(1e-3),
                                        get["shadow_ry"].clamp_min(1e-3), get["shadow_soft"].clamp_min(1e-3))
        gain = 1 - ops.column(get["shadow_dark"] * get["shadow"]) * inside
        radius2 = ((x - ops.column(get["vignette_cx"])) ** 2 + (y - ops.column(get["vignette_cy"])) ** 2) * 2
        gain = gain * (1 - ops.column(get["vignette_amount"] * get["vignette"]) * radius2)
        spot = ops.elongated_spot(x, y, get["glare_cx"], get["glare_cy"], get["glare_sx"].clamp_min(1e-3),
                                  get["glare_sy"].clamp_min(1e-3), get["glare_angle"])
        glare = ops.column(get["glare_amount"] * get["glare"]) * spot
        out = out * gain[:, None]
        return (out + (255 - out) * glare[:, None]).clamp(0, 255)

    @staticmethod
    def _colour(out: torch.Tensor, get: dict[str, torch.Tensor]) -> torch.Tensor:
        """White balance (blackbody gains), then brightness, contrast and gamma."""
        gains = torch.where(get["temperature"][:, None] > 0.5, ops.blackbody_gains(get["kelvin"].clamp_min(1000)),
                            torch.ones(len(out), 3, device=out.device))
        out = (out * gains[:, :, None, None]).clamp(0, 255) / 255
        on = ops.column(get["exposure"])[:, None] > 0.5
        levels = out ** ops.column(get["gamma"])[:, None]
        levels = (levels - 0.5) * ops.column(get["contrast"])[:, None] + 0.5 + ops.column(get["brightness"])[:, None]
        return torch.where(on, levels, out).clamp(0, 1) * 255

    @staticmethod
    def _blur(out: torch.Tensor, get: dict[str, torch.Tensor]) -> torch.Tensor:
        """Defocus (disk), motion (line) or gaussian blur of the chosen samples, one grouped convolution."""
        on = get["blur"] > 0.5
        if not on.any():
            return out
        kind, size = get["blur_kind"][on], get["blur_size"][on]
        kernels = torch.where(ops.column(kind) < 0.5, ops.disk_kernels(size, KERNEL),
                              torch.where(ops.column(kind) < 1.5, ops.line_kernels(size, get["blur_angle"][on], KERNEL),
                                          ops.gaussian_kernels(size, KERNEL)))
        result = out.clone()
        result[on] = ops.per_sample_conv(out[on], kernels)
        return result

    def _low_resolution(self, out: torch.Tensor, get: dict[str, torch.Tensor]) -> torch.Tensor:
        """Downscale (area) and upscale (bilinear) the chosen samples, factors rounded to a few levels."""
        on = get["low_res"] > 0.5
        if not on.any():
            return out
        small = (get["low_res_factor"] * self.size).round().clamp_min(8)
        levels = torch.linspace(float(small[on].min()), float(small[on].max()), LOW_RES_LEVELS, device=out.device)
        small = levels[(small[:, None] - levels[None]).abs().argmin(1)]
        result = out.clone()
        for level in torch.unique(small[on]).tolist():
            chosen = on & (small == level)
            down = F.interpolate(out[chosen], size=(int(level), int(level)), mode="area")
            result[chosen] = F.interpolate(down, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return result

    @staticmethod
    def _noise(out: torch.Tensor, get: dict[str, torch.Tensor], seed: int) -> torch.Tensor:
        """Shot noise (grows with brightness) plus read noise, mostly luminance, a little colour."""
        generator = torch.Generator(device=out.device).manual_seed(seed)
        b, _, h, w = out.shape
        luma = torch.randn(b, 1, h, w, generator=generator, device=out.device)
        chroma = torch.randn(b, 3, h, w, generator=generator, device=out.device)
        grey = (0.299 * out[:, 0] + 0.587 * out[:, 1] + 0.114 * out[:, 2])[:, None]
        shot, read = ops.column(get["noise_shot"])[:, None], ops.column(get["noise_read"])[:, None]
        sigma = torch.sqrt(grey * shot**2 + read**2) * ops.column(get["noise"])[:, None]
        return (out + sigma * (luma + chroma * ops.column(get["noise_chroma"])[:, None])).clamp(0, 255)
