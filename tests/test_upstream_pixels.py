"""The stb_image / libyuv reproduction that gives the SSD test upstream's input pixels (tests/upstream_pixels.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.upstream_pixels import idct_blocks, libyuv_down_even, stb_decode_jpeg, upsample_h2v2, ycbcr_to_rgb

pytestmark = pytest.mark.device


def test_idct_of_a_dc_block_is_flat_and_level_shifted():
    coefficients = np.zeros((8, 8), np.int16)
    coefficients[0, 0] = 10                      # x quant 8 = 80: 80 / 8 + 128 = 138 everywhere
    out = idct_blocks(coefficients, np.full((8, 8), 8))
    assert out.dtype == np.uint8 and (out == 138).all()
    coefficients[0, 0] = -200                    # far below 0: clamped
    assert (idct_blocks(coefficients, np.full((8, 8), 8)) == 0).all()


def test_idct_agrees_with_the_exact_transform_within_one_level():
    rng = np.random.default_rng(0)
    coefficients = rng.integers(-30, 31, (50, 8, 8)).astype(np.int16)
    coefficients[:, 4:, :] = 0                   # keep the values inside 0..255 (no clamping)
    coefficients[:, :, 4:] = 0
    quant = np.ones((8, 8), np.int64)
    n = np.arange(8)
    basis = np.cos((2 * n[None, :] + 1) * n[:, None] * np.pi / 16) * np.where(n[:, None] == 0, np.sqrt(1 / 8), 0.5)
    exact = np.einsum("ux,buv,vy->bxy", basis, coefficients.astype(np.float64), basis) + 128
    assert np.abs(idct_blocks(coefficients, quant).astype(np.float64) - exact).max() <= 1.0


def test_chroma_upsampling_triangle_filter_and_edges():
    chroma = np.array([[0, 160], [80, 240]], np.uint8)
    out = upsample_h2v2(chroma, 4, 4)
    # row 0 (near 0, far 0): t = 4 * [0, 160]; row 1 (near 0, far 1): t = 3 * [0, 160] + [80, 240]
    assert out[0].tolist() == [0, 40, 120, 160]
    assert out[1].tolist() == [(80 + 2) >> 2, (3 * 80 + 720 + 8) >> 4, (3 * 720 + 80 + 8) >> 4, (720 + 2) >> 2]
    assert out[3].tolist() == [80, 120, 200, 240]


def test_ycbcr_grey_and_primaries():
    grey = ycbcr_to_rgb(np.array([[100]]), np.array([[128]]), np.array([[128]]))
    assert grey.tolist() == [[[100, 100, 100]]]
    red = ycbcr_to_rgb(np.array([[76]]), np.array([[85]]), np.array([[255]]))
    assert red[0, 0, 0] == 254 and red[0, 0, 2] <= 1


def test_libyuv_box_takes_columns_4i_plus_1_and_rounds_up_twice():
    image = np.zeros((4, 8, 3), np.uint8)
    image[1, 2] = 1                              # BR of output (0, 0): C code gives (0+0+0+1+2)>>2 = 0, SSE2 gives 1
    image[0, 0] = 255                            # column 0 is never read
    out = libyuv_down_even(image, 2, 2)
    assert out.shape == (2, 2, 3) and out[0, 0].tolist() == [1, 1, 1] and out[1].max() == 0
    with pytest.raises(ValueError):
        libyuv_down_even(image, 3, 2)


def test_stb_decode_is_a_real_jpeg_decode(fixtures):
    """Against OpenCV's libjpeg-turbo: the same picture, the usual 1-3 level differences on a few pixels."""
    pytest.importorskip("jpeglib", reason="pip install jpeglib (part of the dev extras)")
    path = fixtures / "images" / "cats_and_dogs.jpg"
    ours = stb_decode_jpeg(path)
    theirs = cv2.imread(str(path))[:, :, ::-1]
    assert ours.shape == theirs.shape == (600, 1200, 3)
    diff = np.abs(ours.astype(np.int16) - theirs)
    assert diff.max() <= 3 and (diff == 0).mean() > 0.95 and (diff > 0).any()
