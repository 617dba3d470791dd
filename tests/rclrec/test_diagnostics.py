"""RCLRec's diagnostic variants: QAL on the selection module only, a self-generated prefix, and the
one-token-per-code backbone."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.errors import BenchError
from bench.recommender import Context
from bench.semantic_ids import SemanticIdConfig
from rclrec.diagnostics import RCLRecDiagnostic, RCLRecDiagnosticConfig, generate_prefix, selection_parameters
from rclrec.model import RCLRec, relevance, select_top_k
from tests.rclrec.test_model import TINY, split  # noqa: F401 - the module's split fixture

CONFIG = RCLRecDiagnosticConfig(**dataclasses.asdict(TINY))


def _model(split, cache: Path | None = None, **overrides) -> RCLRecDiagnostic:  # noqa: F811
    torch.manual_seed(0)
    ctx = Context(split=split, device=torch.device("cpu"), seed=0, progress=False, cache_dir=cache,
                  semantic_id_config=SemanticIdConfig(codebook_size=4, svd_dim=4))  # fmt: skip
    return RCLRecDiagnostic(dataclasses.replace(CONFIG, **overrides), ctx)


def _grads(model: RCLRecDiagnostic, theta0, split) -> dict[str, torch.Tensor]:  # noqa: F811
    model.theta0 = theta0
    model.net.train()
    h = split.histories(split.test.take(slice(0, 24)))
    out = model.sft_loss(h, torch.as_tensor(split.test.item[:24]))
    model.net.zero_grad()
    out["loss"].backward()
    return {n: p.grad.clone() for n, p in model.net.named_parameters() if p.grad is not None}


def test_qal_on_the_selection_module_only(split) -> None:  # noqa: F811
    """With qal_scope: selection, the selection module gets the full loss's gradient and every other
    parameter gets L_SFT's alone (λ = 0's), on the same weights and batch; the loss value is unchanged."""
    full = _model(split, lam=10.0, margin=5.0)  # a large margin: the hinge is active
    theta0 = copy.deepcopy(full.net).eval()
    torch.manual_seed(1)
    with torch.no_grad():  # θ differs from θ0, so L_qual depends on the parameters
        for p in full.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = full.net.state_dict()
    variants = {}
    for name, overrides in (("full", {}), ("none", {"lam": 0.0}), ("selection", {"qal_scope": "selection"})):
        model = _model(split, **{"lam": 10.0, "margin": 5.0, **overrides})
        model.net.load_state_dict(state)
        variants[name] = _grads(model, theta0, split)
    selection = {n for n, p in full.net.named_parameters() if any(p is q for q in selection_parameters(full.net))}
    assert {n.split(".")[0] for n in selection} == {"user_id", "w_u", "query"}  # this log has no user features
    moved = 0
    for name, grad in variants["selection"].items():
        reference = variants["full"] if name in selection else variants["none"]
        assert torch.allclose(grad, reference[name], atol=1e-6), name
        moved += not torch.allclose(variants["full"][name], variants["none"][name], atol=1e-6)
    assert moved > len(selection)  # QAL's gradient reaches the backbone in the paper's loss, so the test can fail


def test_the_generated_prefix_starts_with_the_no_prefix_top_item(split) -> None:  # noqa: F811
    model = _model(split, generated_prefix=True)
    model.net.eval()
    h = split.histories(split.test)
    states, pad, _ = model._encode(model.net, h)
    prefix = generate_prefix(model, model.net, states, pad)
    assert prefix.shape == (len(h), CONFIG.k)
    start, start_pad = model._decoder_start(model.net, len(h), None, None, None)
    top, _ = model.net.codes.generate(states, pad, start, model.trie, model.beam_width, 1, start_pad=start_pad)
    assert torch.equal(prefix[:, 0], top[:, 0])


def test_the_generated_prefix_is_used_at_test_time_only(split) -> None:  # noqa: F811
    plain, generated = _model(split), _model(split, generated_prefix=True)
    generated.net.load_state_dict(plain.net.state_dict())
    h = split.histories(split.test)
    same = np.array_equal(plain.recommend(h, 10), generated.recommend(h, 10))  # validation-like: no targets given
    assert same
    test_plain = plain.rank(h, split.test.item)
    test_generated = generated.rank(h, split.test.item)
    assert test_generated.shape == test_plain.shape and not np.array_equal(test_plain, test_generated)


def test_the_token_backbone_encodes_one_token_per_code_and_ties_its_heads(split) -> None:  # noqa: F811
    model = _model(split, backbone="token")
    net = model.net.eval()
    h = split.histories(split.test)
    states, pad, items = model._encode(net, h)
    levels = net.levels
    assert states.shape == (len(h), items.shape[1] * levels, CONFIG.d_model)
    assert torch.equal(pad, (items < 0).repeat_interleave(levels, dim=1))
    assert net.codes.heads is None  # the token table is the output head
    assert not any(name.startswith("codes.heads") for name, _ in net.named_parameters())
    plain = _model(split).net
    assert plain.codes.heads is not None  # RCLRec's own backbone has per-level heads


def test_the_token_backbone_scores_each_interaction_by_its_mean_token_state(split) -> None:  # noqa: F811
    model = _model(split, backbone="token")
    net = model.net.eval()
    h = split.histories(split.test)
    with torch.no_grad():
        states, pad, items = model._encode(net, h)
        _, slot_pad, _, index = model.curriculum(net, h, states, pad, items)
        b, n = items.shape
        pooled = states.reshape(b, n, net.levels, -1).mean(dim=2)  # by hand: interaction n's L states
        users = torch.as_tensor(h.users)
        p = relevance(net.user_query(users, model.user_feature_codes[users]), pooled, items < 0, CONFIG.tau)
        expected, expected_pad = select_top_k(p, items < 0, CONFIG.k)
    assert torch.equal(index, expected) and torch.equal(slot_pad, expected_pad)
    assert int(index.max()) < n  # positions of interactions, not of tokens


def test_only_the_token_backbone_trains_its_own_theta0(split, tmp_path: Path) -> None:  # noqa: F811
    base = RCLRec(TINY, _model(split).ctx).theta0_key()
    assert _model(split).theta0_key() == base  # the other variants share RCLRec's θ0
    token = _model(split, tmp_path, backbone="token")
    assert token.theta0_key() != base
    # and --dry-run counts their θ0s the same way
    assert RCLRecDiagnostic.shared_stage(CONFIG, 0) == RCLRec.shared_stage(TINY, 0) != RCLRecDiagnostic.shared_stage(token.config, 0)
    token.fit(split)  # both stages and the test ranking run end to end on the token backbone
    assert [p.name for p in tmp_path.glob("*.pt")] == [f"{token.theta0_key()}.pt"]
    ranks = token.rank(split.histories(split.test), split.test.item)
    assert ranks.shape == (len(split.test.item),) and (ranks >= 1).all()


def test_without_fine_tuning_the_model_is_theta0_decoding_from_e_pay(split, tmp_path: Path) -> None:  # noqa: F811
    full, bare = _model(split, tmp_path), _model(split, tmp_path, fine_tune=False)
    full.fit(split)
    report = bare.fit(split)  # θ0 from the cache the full model wrote: nothing trains
    assert report.extra["theta0"] == "cached" and bare.stage == "pretrain"
    assert all(torch.equal(a, b) for a, b in zip(bare.net.state_dict().values(), full.theta0.state_dict().values()))
    h = split.histories(split.test)
    states, pad, _ = bare._encode(bare.net.eval(), h)
    start, start_pad = bare._decoder_start(bare.net, len(h), None, None, None)
    expected, _ = bare.net.codes.generate(states, pad, start, bare.trie, bare.beam_width, 10, start_pad=start_pad)
    assert np.array_equal(bare.recommend(h, 10), expected.numpy())
    assert not np.array_equal(full.recommend(h, 10), expected.numpy())  # the fine-tuned model decodes otherwise


def test_bad_values_are_refused() -> None:
    with pytest.raises(BenchError, match="qal_scope 'encoder'"):
        dataclasses.replace(CONFIG, qal_scope="encoder")
    with pytest.raises(BenchError, match="two test-time prefixes"):
        dataclasses.replace(CONFIG, generated_prefix=True, inference_prefix="recent")
    with pytest.raises(BenchError, match="backbone 'tokens'"):
        dataclasses.replace(CONFIG, backbone="tokens")
    with pytest.raises(BenchError, match="sft_lr_scale = 0"):
        dataclasses.replace(CONFIG, sft_lr_scale=0.0)


def test_a_gentler_fine_tuning_shares_theta0_and_steps_stage_2_only_at_the_scaled_rate(
    split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    rates: list[tuple[str, float]] = []
    real = torch.optim.AdamW

    def recording(params: object, lr: float, **kw: object) -> torch.optim.Optimizer:
        rates.append((model.stage, lr))
        return real(params, lr=lr, **kw)

    model = _model(split, tmp_path, sft_lr_scale=0.1)
    assert model.theta0_key() == _model(split).theta0_key()  # stage 1 is RCLRec's: the same θ0
    monkeypatch.setattr(torch.optim, "AdamW", recording)
    model.fit(split)
    assert rates == [("pretrain", CONFIG.learning_rate), ("sft", pytest.approx(0.1 * CONFIG.learning_rate))]
    assert model.config.learning_rate == CONFIG.learning_rate  # the configured value is back after stage 2
