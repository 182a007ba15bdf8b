"""The quantizers: nearest-code assignment, straight-through gradients, commitment loss,
codebook health (k-means init, EMA, dead-code restart) and the Gumbel quantizer."""
import pytest
import torch
import torch.nn.functional as F

from healthgpt_lite.vq.quantizer import GumbelQuantizer, VectorQuantizer


def _grid(flat: torch.Tensor, b: int, h: int, w: int) -> torch.Tensor:
    """(b*h*w, D) rows in raster order -> (b, D, h, w), the layout the quantizer takes."""
    return flat.view(b, h, w, -1).permute(0, 3, 1, 2).contiguous()


def test_nearest_code_matches_brute_force_cdist():
    torch.manual_seed(0)
    q = VectorQuantizer(64, 8).double()
    q.embedding.weight.data.normal_()
    flat = torch.randn(2000, 8, dtype=torch.float64)
    expected = torch.cdist(flat, q.embedding.weight).argmin(1)  # brute force: every distance
    assert torch.equal(q.nearest(flat), expected)
    q.eval()
    out = q(_grid(flat, 5, 20, 20))  # the forward pass uses the same assignment, in raster order
    assert out.indices.shape == (5, 20, 20)
    assert torch.equal(out.indices.flatten(), expected)
    assert torch.allclose(out.quantized, q.lookup(out.indices))


def test_straight_through_gradient_is_identity():
    torch.manual_seed(0)
    q = VectorQuantizer(16, 4).eval()
    q.embedding.weight.data.normal_()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    weights = torch.randn(2, 4, 3, 3)
    (q(z).quantized * weights).sum().backward()
    assert torch.allclose(z.grad, weights)  # d quantized / d z = identity despite the argmin


@pytest.mark.parametrize("ema", [False, True])
def test_commitment_loss_value_and_what_it_trains(ema):
    torch.manual_seed(0)
    beta = 0.25
    q = VectorQuantizer(16, 4, beta=beta, ema=ema).eval()
    q.embedding.weight.data.normal_()
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = q(z)
    mse = F.mse_loss(z, q.lookup(out.indices)).item()
    # codebook term ||sg[z] - e||^2 (absent with EMA: averages move the codebook) + beta ||z - sg[e]||^2
    expected = beta * mse if ema else (1 + beta) * mse
    assert out.loss.item() == pytest.approx(expected, rel=1e-5)
    out.loss.backward()
    z_q = q.lookup(out.indices).detach()
    assert torch.allclose(z.grad, beta * 2 * (z - z_q).detach() / z.numel(), atol=1e-7)
    if ema:
        assert q.embedding.weight.grad is None and not q.embedding.weight.requires_grad
    else:
        assert q.embedding.weight.grad.abs().sum() > 0


def test_kmeans_init_on_first_training_batch_only():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0], [-5, 0], [0, 5], [0, -5]])
    flat = centres.repeat_interleave(100, 0) + 0.1 * torch.randn(400, 2)
    q = VectorQuantizer(4, 2, kmeans_iters=20, dead_threshold=0)
    q.eval()(_grid(flat, 1, 20, 20))
    assert not q.initialized  # eval never initialises
    q.train()(_grid(flat, 1, 20, 20))
    assert q.initialized
    found = q.embedding.weight.detach()
    nearest = torch.cdist(centres, found).min(1).values
    assert (nearest < 0.5).all(), found  # each true centre has a code next to it
    before = found.clone()
    q(_grid(flat + 100, 1, 20, 20))  # a second batch far away: no re-initialisation (not EMA: no move)
    assert torch.equal(q.embedding.weight.detach(), before)


def test_ema_update_moves_codes_to_the_mean_of_their_vectors():
    torch.manual_seed(0)
    q = VectorQuantizer(2, 2, ema=True, decay=0.0, dead_threshold=0)
    q.embedding.weight.data = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    q.reset_statistics(count=1.0)
    flat = torch.cat([torch.randn(30, 2) * 0.2 + 2, torch.randn(10, 2) * 0.2 - 3])
    q.train()(_grid(flat, 1, 1, 40))
    means = torch.stack([flat[:30].mean(0), flat[30:].mean(0)])
    assert torch.allclose(q.embedding.weight, means, atol=1e-3)  # decay 0: the codebook *is* the batch mean
    assert torch.allclose(q.cluster_size, torch.tensor([30.0, 10.0]))


def test_ema_is_a_running_average():
    q = VectorQuantizer(1, 1, ema=True, decay=0.9, dead_threshold=0)
    q.embedding.weight.data.fill_(0.0)
    q.reset_statistics(count=1.0)
    q.train()(torch.full((1, 1, 1, 1), 10.0))
    # cluster_size = 0.9*1 + 0.1*1 = 1, embed_sum = 0.9*0 + 0.1*10 = 1 -> code = 1
    assert q.embedding.weight.item() == pytest.approx(1.0, rel=1e-4)


def test_dead_code_is_restarted_on_a_batch_vector():
    torch.manual_seed(0)
    q = VectorQuantizer(3, 2, decay=0.5, dead_threshold=1.0)
    q.embedding.weight.data = torch.tensor([[0.0, 0.0], [1.0, 1.0], [100.0, 100.0]])  # code 2: far from all data
    q.reset_statistics(count=1.0)
    flat = torch.rand(16, 2)
    q.train()(_grid(flat, 1, 4, 4))
    restarted = q.embedding.weight.data[2]
    assert (restarted - flat).abs().sum(1).min() < 1e-6  # now sits on one of the batch's vectors
    assert torch.equal(q.embedding.weight.data[:2], torch.tensor([[0.0, 0.0], [1.0, 1.0]]))  # live codes kept


def test_gumbel_shapes_and_deterministic_eval():
    torch.manual_seed(0)
    q = GumbelQuantizer(in_channels=8, n_embed=32, embed_dim=6)
    z = torch.randn(2, 8, 4, 5, requires_grad=True)
    q.train()
    out = q(z)
    assert out.quantized.shape == (2, 6, 4, 5) and out.indices.shape == (2, 4, 5) and out.loss.ndim == 0
    assert out.indices.dtype == torch.int64 and 0 <= out.indices.min() and out.indices.max() < 32
    assert torch.allclose(out.quantized, q.lookup(out.indices))  # hard one-hot: exactly a code
    out.quantized.sum().backward()
    assert q.proj.weight.grad.abs().sum() > 0 and z.grad is not None  # straight-through to the logits
    q.eval()
    a, b = q(z), q(z)
    assert torch.equal(a.indices, b.indices)  # eval: argmax, no Gumbel noise
    assert torch.equal(a.indices, q.proj(z).argmax(1))


def test_statistics_sync_path_runs_under_torch_distributed(tmp_path):
    """With a process group (DDP), counts are all-reduced and restarts broadcast from rank 0;
    a one-process gloo group runs that code path and must give the single-process result."""
    import torch.distributed as dist

    torch.manual_seed(0)
    flat = torch.randn(64, 3)
    single = VectorQuantizer(8, 3, ema=True)
    twin = VectorQuantizer(8, 3, ema=True)
    torch.manual_seed(1)
    single.train()(_grid(flat, 1, 8, 8))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        torch.manual_seed(1)
        twin.train()(_grid(flat, 1, 8, 8))
    finally:
        dist.destroy_process_group()
    assert torch.allclose(single.embedding.weight, twin.embedding.weight)
    assert torch.allclose(single.cluster_size, twin.cluster_size)
