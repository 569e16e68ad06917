"""Notebook 00-02's landscape helpers and the check of notebook 01's `convergence_rate`."""

from __future__ import annotations

import pytest
import torch

from optimlab.learn import landscape, problems


def spectral(H, lr):
    """Right, written another way: the 2-norm of the step's matrix I − γH."""
    return torch.linalg.matrix_norm(torch.eye(len(H), dtype=H.dtype) - lr * H, ord=2)


def by_loop(H, lr):
    """Right, with numpy and a loop over the eigenvalues."""
    import numpy as np

    return max(abs(1 - lr * h) for h in np.linalg.eigvalsh(H.double().numpy()))


@pytest.mark.parametrize("fn", [spectral, by_loop])
@pytest.mark.parametrize("hidden", [False, True])
def test_check_accepts_correct_rates_written_differently(fn, hidden):
    assert "matches" in landscape.check_convergence_rate(fn, hidden=hidden)


@pytest.mark.parametrize("wrong, hint", [
    (lambda H, lr: 1 - lr * torch.linalg.eigvalsh(H).min(), "stiff direction overshoots"),
    (lambda H, lr: (1 - lr * torch.linalg.eigvalsh(H)).max(), "the size .1 − γh_max."),
    (lambda H, lr: (1 - lr * torch.linalg.eigvalsh(H)).abs().min(), "slow"),
    (lambda H, lr: (1 - lr * torch.linalg.eigvalsh(H).max()).abs(), "stiff direction alone"),
    (lambda H, lr: 1 - lr * H.diagonal().min(), "your rate is"),
    (lambda H, lr: 1 - lr * H.trace() / len(H), "Follow the error along each eigenvector"),
])
def test_check_rejects_plausible_mistakes_and_says_why(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        landscape.check_convergence_rate(wrong)


def test_check_rejects_a_non_number_and_an_exception():
    with pytest.raises(AssertionError, match="return one number"):
        landscape.check_convergence_rate(lambda H, lr: [0.9, 0.1])
    with pytest.raises(AssertionError, match="raised NotImplementedError"):
        landscape.check_convergence_rate(lambda H, lr: (_ for _ in ()).throw(NotImplementedError))


def test_hidden_cases_are_reproducible_given_the_seed(monkeypatch):
    import optimlab.learn.landscape as mod

    monkeypatch.setattr(mod, "_seed", lambda hidden, label="": 1234)
    first = [(H.clone(), lr) for H, lr, _ in mod._rate_cases(True)]
    second = [(H.clone(), lr) for H, lr, _ in mod._rate_cases(True)]
    assert len(first) == 10
    for (a, la), (b, lb) in zip(first, second, strict=True):
        assert la == lb and torch.equal(a, b)


def test_answer_is_below_one_exactly_inside_the_stability_bound():
    H = torch.diag(torch.tensor([1.0, 25.0], dtype=torch.float64))
    assert landscape.convergence_rate_answer(H, 0.04) == pytest.approx(0.96)
    assert landscape.convergence_rate_answer(H, 2 / 26) == pytest.approx(24 / 26)
    assert landscape.convergence_rate_answer(H, 0.08) == pytest.approx(1.0)
    assert landscape.convergence_rate_answer(H, 0.09) > 1


def test_descend_without_noise_is_torch_sgd_and_noise_is_seeded():
    plain = landscape.descend(problems.saddle, (1.0, 0.5), lr=0.1, steps=5)
    ref = problems.run_on_surface(problems.saddle, lambda p: torch.optim.SGD(p, lr=0.1),
                                  (1.0, 0.5), 5)
    torch.testing.assert_close(plain, ref, rtol=0, atol=0)
    a = landscape.descend(problems.saddle, (1.0, 0.0), lr=0.1, steps=5, noise=0.1, seed=3)
    b = landscape.descend(problems.saddle, (1.0, 0.0), lr=0.1, steps=5, noise=0.1, seed=3)
    c = landscape.descend(problems.saddle, (1.0, 0.0), lr=0.1, steps=5, noise=0.1, seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    # the first step's noise is σ·ξ on the gradient, so it moves y by -γσξ
    xi = torch.randn(2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert a[1, 1].item() == pytest.approx(-0.1 * 0.1 * xi[1].item())
    quiet = landscape.descend(problems.saddle, (1.0, 0.0), lr=0.1, steps=5, noise=0.1, seed=3,
                              quiet=5)
    assert torch.equal(quiet[:, 1], torch.zeros(6, dtype=torch.float64))


def test_descend_runs_several_noise_levels_at_once():
    starts = torch.tensor([1.0, 0.0], dtype=torch.float64).expand(3, 1, 2)
    levels = torch.tensor([0.0, 0.1, 1.0], dtype=torch.float64).view(-1, 1, 1)
    path = landscape.descend(problems.saddle, starts, lr=0.1, steps=3, noise=levels, seed=5)
    assert path.shape == (4, 3, 1, 2)
    assert torch.equal(path[:, 0, 0, 1], torch.zeros(4, dtype=torch.float64))  # σ = 0: no noise
    xi = torch.randn(3, 1, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert path[1, 2, 0, 1].item() == pytest.approx(-0.1 * 1.0 * xi[2, 0, 1].item())
    assert path[1, 1, 0, 1].item() == pytest.approx(-0.1 * 0.1 * xi[1, 0, 1].item())


def test_steps_until():
    path = torch.tensor([[0.0, 0.1], [0.0, 0.5], [0.0, 2.0]])
    assert landscape.steps_until(path, lambda p: p[:, 1].abs() >= 1) == 2
    assert landscape.steps_until(path, lambda p: p[:, 1].abs() >= 5) is None
