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


def test_position_buckets_by_hand() -> None:
    from bench.nn.transformer import position_bucket

    # causal, 32 buckets: distances 0..15 exact, then 16 + ⌊16·log(d/16)/log(128/16)⌋ up to 128, one bucket beyond
    assert position_bucket(torch.tensor([0, 1, 7, 15]), False, 32, 128).tolist() == [0, 1, 7, 15]
    # 22: 16 + ⌊16·0.153⌋ = 18; 32: 16 + ⌊16/3⌋ = 21; 64: 16 + ⌊32/3⌋ = 26
    assert position_bucket(torch.tensor([16, 22, 32, 64]), False, 32, 128).tolist() == [16, 18, 21, 26]
    assert position_bucket(torch.tensor([128, 10_000]), False, 32, 128).tolist() == [31, 31]
    assert position_bucket(torch.tensor([-3, 5]), False, 32, 128).tolist() == [0, 5]  # a future key: bucket 0
    # bidirectional: 16 buckets per direction, a key after the query (negative distance) in the upper half
    assert position_bucket(torch.tensor([3, -3, 0]), True, 32, 128).tolist() == [3, 19, 0]


def test_the_bias_depends_only_on_the_distance() -> None:
    m, _, _ = _model()
    torch.nn.init.normal_(m.dec_bias.table.weight)
    q, k = torch.tensor([[3, 4, 9]]), torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]])
    assert torch.equal(m.dec_bias(q, k), m.dec_bias(q + 40, k + 40))


def test_a_target_is_predicted_the_same_behind_prefixes_of_any_length() -> None:
    """Relative positions: the tokens after a forced prefix see their neighbours at the same distances
    whatever the prefix length, so a prefix whose inputs the target ignores changes nothing. With only
    self-attention to the previous token only (a bias that forbids longer distances), the last token's
    state is the same behind 1 or 9 earlier tokens (two layers: it depends on the last three inputs)."""
    m, memory, pad = _model()
    with torch.no_grad():
        m.dec_bias.table.weight.zero_()
        m.dec_bias.table.weight[2:] = -1e9  # attend to distances 0 and 1 only
    tail = torch.randn(2, 3, 32)
    short = m.decode(torch.cat([torch.randn(2, 1, 32), tail], dim=1), memory, pad)[:, -1]
    long = m.decode(torch.cat([torch.randn(2, 9, 32), tail], dim=1), memory, pad)[:, -1]
    assert torch.allclose(short, long, atol=1e-5)
