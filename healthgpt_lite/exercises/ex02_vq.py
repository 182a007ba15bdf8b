"""Checkers of exercise 02 (vector quantization, docs/PAPERS.md section 1; van den Oord et al. 2017).

q1 ``nearest_code(flat, codebook) -> (M,)``: index of the nearest code of each row, checked
   against ``vq/quantizer.py:VectorQuantizer.nearest`` and a brute-force ``torch.cdist``
   (a near-tie may go either way: the chosen code's distance is what is compared).
q2 ``straight_through(z, z_q) -> z_q`` in the forward pass, gradient copied to ``z``: checked on
   the value and on the gradients that reach ``z`` and ``z_q`` (the codebook).
q3 ``vq_loss(z, z_q, beta) -> ()``: codebook loss + beta * commitment loss, checked on the value
   and on the gradients (the value alone cannot tell where beta or the stop-gradients are).
q4 ``quantize(z, codebook, beta) -> (quantized, loss, indices)`` for ``(B, D, h, w)`` encoder
   outputs, checked against ``VectorQuantizer`` (gradient-trained codebook, ``ema=False``)
   run with the same codebook: values, indices, loss and both gradients.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..vq.quantizer import VectorQuantizer
from .checking import Case, Question

EXERCISE = "02_vq"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def observe_with_inputs(args: tuple, returned):
    return returned, args


def _tensor_problem(got, shape: tuple, what: str) -> str | None:
    if not isinstance(got, torch.Tensor):
        return f"{what}: return a torch.Tensor, got {type(got).__name__}"
    if tuple(got.shape) != shape:
        return f"{what}: shape {tuple(got.shape)} but expected {shape}"
    return None


# ----------------------------------------------------------------------------- q1
def reference_nearest_code(flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    vq = VectorQuantizer(*codebook.shape, ema=False).to(codebook.dtype)  # float64 cases too (q4 uses it as fallback)
    with torch.no_grad():
        vq.embedding.weight.copy_(codebook)
        return vq.nearest(flat)


def nearest_cases() -> list[Case]:
    def codebook_of(seed: int, n: int, d: int) -> torch.Tensor:
        g = _gen(seed)  # codes of very different lengths: a dot product alone picks the long ones
        return torch.randn(n, d, generator=g) * torch.rand(n, 1, generator=g).mul(3).add(0.2)

    sizes = [(12, 2, 8), (300, 16, 64), (4096, 32, 512)]  # (M, D, N): the last one is the tiny preset's size
    return [Case(f"{m} vectors of dimension {d}, a codebook of {n} codes of different lengths",
                 lambda m=m, d=d, n=n, s=s: (torch.randn(m, d, generator=_gen(100 + s)), codebook_of(s, n, d)))
            for s, (m, d, n) in enumerate(sizes)]


def compare_nearest(expected: tuple, got: tuple) -> str | None:
    (want, (flat, codebook)), (have, _) = expected, got
    if (problem := _tensor_problem(have, tuple(want.shape), "indices")):
        return problem + " (one index per row of flat)"
    if have.is_floating_point() or have.dtype == torch.bool:
        return f"indices: dtype {have.dtype}; indices are integers (argmin returns int64)"
    if have.numel() and (have.min() < 0 or have.max() >= len(codebook)):
        return f"an index is outside 0..{len(codebook) - 1}"
    d2 = torch.cdist(flat.double(), codebook.double()) ** 2  # (M, N) brute force
    best = d2.min(1).values
    chosen = d2.gather(1, have.long()[:, None])[:, 0]
    wrong = ~torch.isclose(chosen, best, rtol=1e-5, atol=1e-6)  # a near-tie may go either way
    if not wrong.any():
        return None
    if torch.equal(have.long(), d2.argmax(1)):
        return "every row got its *farthest* code: the nearest code has the smallest distance"
    if torch.equal(have.long(), (flat.double() @ codebook.double().T).argmax(1)):
        return ("you picked the code with the largest dot product; without the ||e||^2 term a long code wins "
                "even when it is far away")
    return f"{int(wrong.sum())} of {len(flat)} rows got a code that is not the nearest (squared L2)"


# ----------------------------------------------------------------------------- gradients, for q2-q4
def gradients_of(out: torch.Tensor, inputs: tuple[torch.Tensor, ...], seed: int = 7) -> tuple[torch.Tensor, ...]:
    """d(sum(out * g)) / d(each input) for a fixed random g (zeros where no gradient flows)."""
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return tuple(torch.zeros_like(x) for x in inputs)
    g = torch.randn(out.shape, generator=_gen(seed), dtype=out.dtype)
    grads = torch.autograd.grad((out * g).sum(), inputs, allow_unused=True)
    return tuple(torch.zeros_like(x) if gr is None else gr for x, gr in zip(inputs, grads))


def _z_and_codes(seed: int, shape=(2, 4, 3, 5)) -> tuple[torch.Tensor, torch.Tensor]:
    """An encoder output z and its codes z_q (close to it, as after a lookup), both leaves."""
    g = _gen(seed)
    z = torch.randn(shape, generator=g, dtype=torch.float64)
    z_q = z + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)
    return z.requires_grad_(), z_q.requires_grad_()


# ----------------------------------------------------------------------------- q2
def reference_straight_through(z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    return z + (z_q - z).detach()  # the line in VectorQuantizer._quantize


def ste_cases() -> list[Case]:
    return [Case(f"z and z_q of shape {shape} (float64, both require grad)", lambda s=s, shape=shape: _z_and_codes(s, shape))
            for s, shape in enumerate([(2, 4, 3, 5), (6, 8)])]


def observe_ste(args: tuple, returned):
    z, z_q = args
    value = returned.detach() if isinstance(returned, torch.Tensor) else returned
    return (value, *gradients_of(returned, (z, z_q))), args


def compare_ste(expected: tuple, got: tuple) -> str | None:
    ((want, want_gz, _), (z, z_q)), ((have, gz, gq), _) = expected, got
    if (problem := _tensor_problem(have, tuple(want.shape), "the result")):
        return problem
    if not torch.allclose(have.double(), want):
        if torch.allclose(have.double(), z.detach()):
            return "the forward value is z; it must be the code z_q (what the decoder sees)"
        return "the forward value is not z_q (the decoder must see the code)"
    if not gz.any():
        if gq.any():
            return ("no gradient reaches the encoder (z), and the codebook (z_q) gets the decoder's gradient "
                    "instead: it must go to z unchanged, with the difference z_q - z carrying none")
        return "no gradient reaches the encoder (z): argmin has none, so the decoder's gradient must be copied to z"
    if not torch.allclose(gz, want_gz):
        return "the gradient reaching z is not the incoming gradient unchanged (straight through = identity)"
    if gq.any():
        return "the codebook (z_q) gets gradient through the straight-through path; only the loss should move it"
    return None


# ----------------------------------------------------------------------------- q3
def reference_vq_loss(z: torch.Tensor, z_q: torch.Tensor, beta: float) -> torch.Tensor:
    # VectorQuantizer._quantize, ema=False: codebook term + beta * commitment term
    return F.mse_loss(z_q, z.detach()) + beta * F.mse_loss(z, z_q.detach())


def loss_cases() -> list[Case]:
    return [Case(f"z and z_q of shape {shape}, beta={beta}", lambda s=s, shape=shape, b=beta: (*_z_and_codes(s, shape), b))
            for s, (shape, beta) in enumerate([((2, 4, 3, 5), 0.25), ((6, 8), 0.5)])]


def observe_loss(args: tuple, returned):
    z, z_q, _ = args
    value = returned.detach() if isinstance(returned, torch.Tensor) else returned
    return (value, *gradients_of(returned, (z, z_q))), args


def compare_loss(expected: tuple, got: tuple) -> str | None:
    ((want, want_gz, want_gq), (z, z_q, beta)), ((have, gz, gq), _) = expected, got
    if not isinstance(have, torch.Tensor) or have.numel() != 1:
        return f"return one number (a 0-dim tensor), got {type(have).__name__} {tuple(getattr(have, 'shape', ()))}"
    have = have.reshape(()).double()
    if not torch.isclose(have, want):
        ratio = float(have / want)
        if abs(ratio - z.numel()) < 1e-3 * z.numel():
            return "the value is numel times too large: use the mean squared error, not the sum"
        if abs(ratio * (1 + beta) - 2) < 1e-6:
            return "the value equals the sum of the two terms without beta: weigh one of them by beta"
        if abs(ratio * (1 + beta) - 1) < 1e-6:
            return "the value is one squared error alone: the loss has a codebook term and a commitment term"
        return f"the value is {ratio:.3g} x the expected one"
    close_z, close_q = torch.allclose(gz, want_gz), torch.allclose(gq, want_gq)
    if close_z and close_q:
        return None
    if torch.allclose(gz, want_gz / beta) and torch.allclose(gq, want_gq * beta):
        return ("the value is right but the gradients are not: the encoder (z) is pulled with weight 1 and the "
                "codebook with beta; which of the two terms should beta weigh?")
    if torch.allclose(gz, want_gz * (1 + beta) / beta) and torch.allclose(gq, want_gq * (1 + beta)):
        return ("the value is right but both z and the codebook get gradient from both terms: each term must move "
                "only one side (stop the gradient of the other with .detach())")
    if not close_z:
        return "the value is right but the gradient reaching the encoder (z) is not beta times the commitment term's"
    return "the value is right but the gradient reaching the codebook (z_q) is not the codebook term's"


# ----------------------------------------------------------------------------- q4
def reference_quantize(z: torch.Tensor, codebook: torch.Tensor, beta: float):
    """``VectorQuantizer`` (ema=False, eval: no data init, no statistics) with ``codebook`` as its weight."""
    vq = VectorQuantizer(*codebook.shape, beta=beta, ema=False, dead_threshold=0).to(codebook.dtype).eval()
    return tuple(functional_call(vq, {"embedding.weight": codebook}, (z,)))


def quantize_cases() -> list[Case]:
    def make(seed: int, shape: tuple, n: int, beta: float):
        g = _gen(seed)
        z = torch.randn(shape, generator=g, dtype=torch.float64)
        codebook = torch.randn(n, shape[1], generator=g, dtype=torch.float64)
        return z.requires_grad_(), codebook.requires_grad_(), beta

    specs = [(0, (2, 4, 3, 5), 16, 0.25), (1, (1, 8, 4, 4), 64, 1.0)]  # h != w first: a layout slip shows
    return [Case(f"z of shape {shape} (B, D, h, w), a codebook of {n} codes, beta={b}",
                 lambda s=s, shape=shape, n=n, b=b: make(s, shape, n, b)) for s, shape, n, b in specs]


def _describe(value) -> str:
    return f"a {type(value).__name__} of {len(value)}" if isinstance(value, (tuple, list)) else type(value).__name__


def observe_quantize(args: tuple, returned):
    """(quantized, loss, indices, grad z, grad codebook) of quantized * g + loss, or a str saying
    what is not right with the shape of the answer."""
    z, codebook, _ = args
    try:
        quantized, loss, indices = returned
    except (TypeError, ValueError):
        return f"return a triple (quantized, loss, indices), got {_describe(returned)}", args
    if not isinstance(quantized, torch.Tensor) or not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        return "quantized must be a tensor and loss a one-number tensor", args
    if quantized.shape != z.shape:
        return f"quantized: shape {tuple(quantized.shape)} but expected z's shape {tuple(z.shape)} (B, D, h, w)", args
    g = torch.randn(quantized.shape, generator=_gen(3), dtype=quantized.dtype)
    grads = gradients_of((quantized * g).sum() + loss.reshape(()), (z, codebook))
    return (quantized.detach(), loss.detach().reshape(()), indices, *grads), args


def compare_quantize(expected: tuple, got: tuple) -> str | None:
    ((want_q, want_loss, want_idx, want_gz, want_gc), _), (have, _) = expected, got
    if isinstance(have, str):
        return have
    q, loss, idx, gz, gc = have
    if (problem := _tensor_problem(idx, tuple(want_idx.shape), "indices")):
        return problem + " (B, h, w): one code per position"
    if not torch.equal(idx.long(), want_idx):
        return ("indices differ from the quantizer's: move D last before flattening (permute(0, 2, 3, 1)), so each "
                "row of the flat matrix is one position's vector")
    if not torch.allclose(q.double(), want_q):
        return "quantized holds the right codes in the wrong places: permute back to (B, D, h, w) after the lookup"
    if not torch.isclose(loss.double(), want_loss):
        return "the loss differs from the quantizer's (codebook term + beta * commitment term, mean over all values)"
    if not torch.allclose(gz, want_gz):
        return "the gradient reaching z differs from the quantizer's (straight through, plus beta * commitment)"
    if not torch.allclose(gc, want_gc):
        return "the gradient reaching the codebook differs from the quantizer's (it should come from the loss only)"
    return None


# ----------------------------------------------------------------------------- given helper (the notebook's demonstration)
def toy_points(seed: int = 0) -> torch.Tensor:
    """(600, 2) points in three clusters, at (0, 0), (3, 1) and (1, 3)."""
    g = _gen(seed)
    centres = torch.tensor([[0.0, 0.0], [3.0, 1.0], [1.0, 3.0]])
    return torch.cat([0.3 * torch.randn(200, 2, generator=g) + c for c in centres])  # (600, 2)


def train_toy_vq(quantize_fn, points: torch.Tensor, steps: int = 300, n_codes: int = 16, beta: float = 0.25,
                 lr: float = 0.03, seed: int = 0) -> dict:
    """A 2-D VQ autoencoder: linear encoder -> ``quantize_fn(z, codebook, beta)`` -> linear decoder,
    trained with reconstruction MSE + the VQ loss (Adam). The encoder starts as a rank-1 map
    that puts the clusters at (3, 1) and (1, 3) on top of each other: only gradient that reaches
    the encoder can pull them apart. Returns the reconstruction loss per step, the final encoder
    outputs, codebook and assignments."""
    from ..vision.probes import one_thread

    gen = torch.Generator().manual_seed(seed)
    encoder, decoder = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    with torch.no_grad():
        encoder.weight.copy_(torch.full((2, 2), 0.3))  # z = 0.3 (x1 + x2) (1, 1): rank 1
        encoder.bias.zero_()
        for p in decoder.parameters():
            p.copy_(torch.rand(p.shape, generator=gen) - 0.5)
    codebook = torch.nn.Parameter(0.5 * torch.randn(n_codes, 2, generator=gen))  # (N, 2)
    opt = torch.optim.Adam([*encoder.parameters(), *decoder.parameters(), codebook], lr=lr)
    history = []
    with one_thread():  # thousands of tiny ops: one thread is far faster than two busy-waiting
        for _ in range(steps):
            z = encoder(points).T[None, :, None, :]  # (1, 2, 1, M): the quantizer's (B, D, h, w) layout
            quantized, vq_loss, indices = quantize_fn(z, codebook, beta)
            reconstruction = F.mse_loss(decoder(quantized[0, :, 0].T), points)  # (M, 2) vs (M, 2)
            opt.zero_grad()
            (reconstruction + vq_loss).backward()
            opt.step()
            history.append(reconstruction.item())
    return {"reconstruction": history, "z": z[0, :, 0].T.detach(), "codebook": codebook.detach().clone(),
            "indices": indices.flatten()}


# ----------------------------------------------------------------------------- the questions
_QUANTIZER = ("healthgpt_lite.vq.quantizer.VectorQuantizer.forward", "healthgpt_lite.vq.quantizer.VectorQuantizer._quantize", "healthgpt_lite.vq.quantizer.GumbelQuantizer")
q1 = Question(EXERCISE, "q1", "nearest_code", reference_nearest_code, nearest_cases, compare_nearest,
              observe=observe_with_inputs, placeholder=None, forbidden=("healthgpt_lite.vq.quantizer.VectorQuantizer.nearest", *_QUANTIZER),
              hints=("Nearest means the smallest squared Euclidean distance. Write ||z - e||^2 out as a sum of three "
                     "terms: which of them can you compute for all M x N pairs at once?",
                     "One term is a matrix product of the rows with the codebook; the other two are squared lengths, "
                     "one per row and one per code, broadcast as a column and a row. Which term can you not drop?"))
q2 = Question(EXERCISE, "q2", "straight_through", reference_straight_through, ste_cases, compare_ste,
              observe=observe_ste, placeholder=None, forbidden=_QUANTIZER,
              hints=("The forward value must be the code, the backward pass the identity towards the encoder. Can one "
                     "expression have the value of one tensor and the gradient of another?",
                     "Start from the tensor whose gradient you want, and add a correction whose value is the "
                     "difference you need but through which no gradient flows."))
q3 = Question(EXERCISE, "q3", "vq_loss", reference_vq_loss, loss_cases, compare_loss, observe=observe_loss,
              placeholder=None, forbidden=_QUANTIZER,
              hints=("Two terms measure the same distance between z and z_q. What should each one move: the codes "
                     "towards the encoder, or the encoder towards its code?",
                     "In each term, stop the gradient of the side that must not move; beta weighs the term that moves "
                     "the encoder. Both are means, not sums."))
q4 = Question(EXERCISE, "q4", "quantize", reference_quantize, quantize_cases, compare_quantize,
              observe=observe_quantize, placeholder=None, forbidden=_QUANTIZER,
              hints=("Your three functions work on rows of D numbers; z is (B, D, h, w). How do you turn every grid cell "
                     "into one row without mixing the channels of different cells, and back again?",
                     "Move D to the last dimension before flattening to (B*h*w, D), look up the codes, apply the loss "
                     "and straight-through on rows, then undo the move in reverse order; the indices keep the grid."))
QUESTIONS = (q1, q2, q3, q4)
