"""Batched image operations in torch for the device photo simulation (any device, float 0-255, NCHW).

Per-sample kernels run as one grouped convolution; light maps are closed-form fields on the frame's
pixel grid; the JPEG approximation is real JPEG arithmetic (YCbCr, 4:2:0 chroma, 8x8 DCT, the IJG
quality-scaled quantisation tables, rounding), without the lossless entropy coding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# ITU-T T.81 Annex K tables (luminance, chrominance), row-major 8x8
_LUMA_Q = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
           14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
           49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)
_CHROMA_Q = (17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
             47, 66, 99, 99, 99, 99, 99, 99, *([99] * 32))


def pixel_grid(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """x, y of every pixel centre in [0, 1], shape (1, S, S)."""
    axis = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    return x[None], y[None]


def column(values: torch.Tensor) -> torch.Tensor:
    """(B,) -> (B, 1, 1) to broadcast over a (B, S, S) field."""
    return values[:, None, None]


def per_sample_conv(images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each image (B, C, H, W) with its own (B, K, K) kernel (odd K), replicate borders."""
    b, c, h, w = images.shape
    k = kernels.shape[-1]
    padded = F.pad(images.reshape(1, b * c, h, w), (k // 2,) * 4, mode="replicate")
    weight = kernels.repeat_interleave(c, dim=0)[:, None]
    return F.conv2d(padded, weight, groups=b * c).reshape(b, c, h, w)


def gaussian_1d(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) sigmas -> (B, K) normalised 1-D gaussian kernels."""
    r = torch.arange(size, device=sigma.device, dtype=torch.float32) - size // 2
    one = torch.exp(-0.5 * (r[None] / sigma.clamp_min(1e-3)[:, None]) ** 2)
    return one / one.sum(1, keepdim=True)


def gaussian_kernels(sigma: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) sigmas -> (B, K, K) normalised gaussian kernels."""
    one = gaussian_1d(sigma, size)
    return one[:, :, None] * one[:, None, :]


def gaussian_blur(images: torch.Tensor, sigma: torch.Tensor, size: int) -> torch.Tensor:
    """Per-sample gaussian blur of (B, C, H, W) as two 1-D passes (replicate borders)."""
    b, c, h, w = images.shape
    k = gaussian_1d(sigma, size).repeat_interleave(c, dim=0)
    x = F.pad(images.reshape(1, b * c, h, w), (size // 2,) * 4, mode="replicate")
    x = F.conv2d(x, k[:, None, :, None], groups=b * c)
    return F.conv2d(x, k[:, None, None, :], groups=b * c).reshape(b, c, h, w)


def disk_kernels(radius: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) radii -> (B, K, K) anti-aliased disks (defocus)."""
    r = torch.arange(size, device=radius.device, dtype=torch.float32) - size // 2
    dist = torch.sqrt(r[None, :, None] ** 2 + r[None, None, :] ** 2)
    disk = (column(radius) + 0.5 - dist).clamp(0.0, 1.0)
    return disk / disk.sum((1, 2), keepdim=True)


def line_kernels(length: torch.Tensor, angle: torch.Tensor, size: int) -> torch.Tensor:
    """(B,) lengths and angles -> (B, K, K) anti-aliased line segments through the centre (motion)."""
    r = torch.arange(size, device=length.device, dtype=torch.float32) - size // 2
    y, x = r[None, :, None], r[None, None, :]
    c, s = column(torch.cos(angle)), column(torch.sin(angle))
    along, across = x * c + y * s, -x * s + y * c
    line = (1.0 - across.abs()).clamp(0, 1) * (column(length) / 2 + 0.5 - along.abs()).clamp(0, 1)
    return line / line.sum((1, 2), keepdim=True).clamp_min(1e-6)


def half_plane_or_blob(x: torch.Tensor, y: torch.Tensor, blob: torch.Tensor, angle: torch.Tensor,
                       px: torch.Tensor, py: torch.Tensor, rx: torch.Tensor, ry: torch.Tensor,
                       softness: torch.Tensor) -> torch.Tensor:
    """How far inside a cast shadow each pixel is (0..1): a soft half-plane, or an ellipse for blobs."""
    plane = (x - column(px)) * column(torch.cos(angle)) + (y - column(py)) * column(torch.sin(angle))
    ellipse = 1.0 - torch.sqrt(((x - column(px)) / column(rx)) ** 2 + ((y - column(py)) / column(ry)) ** 2)
    distance = torch.where(column(blob) > 0.5, ellipse, plane)
    return torch.sigmoid(distance / column(softness))


def elongated_spot(x: torch.Tensor, y: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, sx: torch.Tensor,
                   sy: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """A rotated gaussian spot (glare), peak 1."""
    dx, dy = x - column(cx), y - column(cy)
    c, s = column(torch.cos(angle)), column(torch.sin(angle))
    u, v = dx * c + dy * s, -dx * s + dy * c
    return torch.exp(-0.5 * ((u / column(sx)) ** 2 + (v / column(sy)) ** 2))


def blackbody_gains(kelvin: torch.Tensor) -> torch.Tensor:
    """(B,) colour temperatures -> (B, 3) RGB gains relative to 6000 K, green kept at 1 (the blackbody
    colour by Tanner Helland's fit of Charity's table; the CPU path uses albumentations' table)."""

    def rgb(t: torch.Tensor) -> torch.Tensor:
        t = t / 100.0
        red = torch.where(t <= 66, torch.full_like(t, 255.0), 329.698727446 * (t - 60).clamp_min(1e-3) ** -0.1332047592)
        green = torch.where(t <= 66, 99.4708025861 * torch.log(t) - 161.1195681661,
                            288.1221695283 * (t - 60).clamp_min(1e-3) ** -0.0755148492)
        blue = torch.where(t >= 66, torch.full_like(t, 255.0),
                           138.5177312231 * torch.log((t - 10).clamp_min(1e-3)) - 305.0447927307)
        return torch.stack([red, green, blue], 1).clamp(1.0, 255.0)

    ratio = rgb(kelvin) / rgb(torch.full_like(kelvin, 6000.0))
    return ratio / ratio[:, 1:2]


def _dct_matrix(device: torch.device) -> torch.Tensor:
    n = torch.arange(8, device=device, dtype=torch.float32)
    matrix = torch.cos((2 * n[None] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    matrix[0] /= math.sqrt(2)
    return matrix  # orthonormal DCT-II: coefficients = M @ block @ M.T


def quality_tables(quality: torch.Tensor, base: tuple[int, ...]) -> torch.Tensor:
    """IJG scaling of a base table by quality (B,) -> (B, 8, 8)."""
    q = quality.clamp(1, 100).float()
    scale = torch.where(q < 50, 5000.0 / q, 200.0 - 2.0 * q)
    table = torch.tensor(base, device=quality.device, dtype=torch.float32).reshape(1, 8, 8)
    return torch.floor((table * scale[:, None, None] + 50.0) / 100.0).clamp(1.0, 255.0)


def _blocks_quantised(plane: torch.Tensor, tables: torch.Tensor) -> torch.Tensor:
    """Level-shift, 8x8 DCT, round to the table, inverse DCT of a (B, H, W) plane (H, W multiples of 8)."""
    b, h, w = plane.shape
    m = _dct_matrix(plane.device)
    blocks = (plane - 128.0).reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coeffs = m @ blocks @ m.T
    t = tables[:, None, None]
    coeffs = torch.round(coeffs / t) * t
    return (m.T @ coeffs @ m).permute(0, 1, 3, 2, 4).reshape(b, h, w) + 128.0


def jpeg_approximation(images: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG compression artefacts of (B, 3, H, W) 0-255 images at per-sample qualities (B,)."""
    h, w = images.shape[-2:]
    pad_h, pad_w = (-h) % 16, (-w) % 16
    x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images
    r, g, bl = x[:, 0], x[:, 1], x[:, 2]
    y = 0.299 * r + 0.587 * g + 0.114 * bl
    cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * bl
    cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * bl
    y = _blocks_quantised(y, quality_tables(quality, _LUMA_Q))
    chroma = F.avg_pool2d(torch.stack([cb, cr], 1), 2)  # 4:2:0
    chroma_tables = quality_tables(quality, _CHROMA_Q)
    chroma = torch.stack([_blocks_quantised(chroma[:, i], chroma_tables) for i in range(2)], 1)
    cb, cr = F.interpolate(chroma, scale_factor=2, mode="bilinear", align_corners=False).unbind(1)
    out = torch.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                       y + 1.772 * (cb - 128)], 1)
    return out[:, :, :h, :w].clamp(0.0, 255.0)
