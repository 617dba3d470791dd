from __future__ import annotations

import torch

from bench.nn.transformer import BackboneConfig, EncoderDecoder


def _model() -> tuple[EncoderDecoder, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    cfg = BackboneConfig(d_model=32, n_heads=4, encoder_layers=1, decoder_layers=2, d_ff=64, dropout=0.0)
    m = EncoderDecoder(cfg).eval()
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[0, :3] = True
    return m, m.encode(torch.randn(2, 7, 32), pad), pad


def test_incremental_decoding_equals_teacher_forcing() -> None:
    m, memory, pad = _model()
    y = torch.randn(2, 5, 32)
    full = m.decode(y, memory, pad)
    cache = m.start_cache(memory, pad)
    steps = [m.decode_step(y[:, :2], cache), m.decode_step(y[:, 2:3], cache), m.decode_step(y[:, 3:], cache)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


def test_beams_share_the_memory_without_copies() -> None:
    m, memory, pad = _model()
    y = torch.randn(2, 3, 32)
    full = m.decode(y, memory, pad)
    cache = m.start_cache(memory, pad)
    m.decode_step(y[:, :2], cache)
    rows = torch.arange(2).repeat_interleave(3)  # three beams per input
    cache.select(rows, 3)
    out = m.decode_step(y[rows, 2:], cache)
    assert torch.allclose(out[::3, 0], full[:, 2], atol=1e-5) and torch.allclose(out[2::3, 0], full[:, 2], atol=1e-5)


def test_leading_decoder_padding_is_invisible() -> None:
    """A row with a shorter forced prefix, left-padded, decodes exactly as the same row unpadded."""
    m, memory, pad = _model()
    y = torch.randn(2, 6, 32)
    y_pad = torch.zeros(2, 6, dtype=torch.bool)
    y_pad[0, :2] = True
    full = m.decode(y, memory, pad, y_pad)
    alone = m.decode(y[:1, 2:], memory[:1], pad[:1])
    assert torch.allclose(full[0, 2:], alone[0], atol=1e-5)
    assert torch.allclose(full[1], m.decode(y[1:], memory[1:], pad[1:])[0], atol=1e-5)
    cache = m.start_cache(memory, pad)
    steps = torch.cat([m.decode_step(y[:, :4], cache, y_pad[:, :4]), m.decode_step(y[:, 4:], cache)], dim=1)
    assert torch.allclose(steps[0, 2:], full[0, 2:], atol=1e-5) and torch.allclose(steps[1], full[1], atol=1e-5)


def test_padding_inside_the_forced_prefix_is_invisible() -> None:
    """[e, pad, pad, g1, g2, z] decodes like [e, g1, g2, z]: positions count real tokens only."""
    m, memory, pad = _model()
    y = torch.randn(1, 6, 32)
    y_pad = torch.tensor([[False, True, True, False, False, False]])
    full = m.decode(y, memory[:1], pad[:1], y_pad)
    keep = ~y_pad[0]
    assert torch.allclose(full[0, keep], m.decode(y[:, keep], memory[:1], pad[:1])[0], atol=1e-5)
    cache = m.start_cache(memory[:1], pad[:1])
    steps = torch.cat([m.decode_step(y[:, :5], cache, y_pad[:, :5]), m.decode_step(y[:, 5:], cache)], dim=1)
    assert torch.allclose(steps[0, keep], full[0, keep], atol=1e-5)
