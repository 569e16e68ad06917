"""The explorers: sliders rerun a step function and redraw; a broken step function is reported in
the widget, never raised; the widget tree keeps the DOM contract the browser tests rely on."""

from __future__ import annotations

import json
import math
import time

import ipywidgets as widgets
import nbformat
import pytest
import torch

from optimlab.grade.course import ROOT, WIDGET_VIEW, without_widgets
from optimlab.learn import explore, problems
from optimlab.optimizers.sgd import sgd_step

PNG = b"\x89PNG\r\n\x1a\n"


def ravine_explorer(step=sgd_step, **kw) -> explore.Explorer:
    sliders = {"lr": explore.lr_slider(0.05, 1e-3, 0.3), "momentum": explore.momentum_slider(0.6)}
    kw.setdefault("caption", explore.heavy_ball_caption(1, 25))
    return explore.explorer(step, problems.ravine, sliders=sliders, start=(-4.5, 1.5), steps=60,
                            xlim=(-5, 1.5), ylim=(-2, 2), minimum=(0, 0), **kw)


def png(e: explore.Explorer) -> bytes:
    return bytes(e.image.value)


def classes(widget: widgets.Widget) -> list[str]:
    return list(widget._dom_classes)


def test_the_widget_tree_has_the_dom_contracts_classes():
    e = ravine_explorer()
    assert "optimlab-explorer" in classes(e)
    assert isinstance(e.image, widgets.Image) and e.image.format == "png"
    assert "optimlab-explorer-figure" in classes(e.image)
    assert "optimlab-explorer-message" in classes(e.message)
    assert e.image in e.children and e.message in e.children
    assert set(e.sliders) == {"lr", "momentum"}
    for slider in e.sliders.values():
        assert "optimlab-explorer-slider" in classes(slider)
        assert slider in e.children
        assert slider.continuous_update is False
        assert slider.readout
    assert isinstance(e.sliders["lr"], widgets.FloatLogSlider)
    assert isinstance(e.sliders["momentum"], widgets.FloatSlider)
    assert e.sliders["lr"].description.startswith("γ")
    assert e.sliders["momentum"].description.startswith("μ")


def test_the_slider_factories_name_their_symbols():
    assert explore.beta1_slider().description.startswith("β₁")
    assert explore.beta2_slider().description.startswith("β₂")
    assert explore.eps_slider().description.startswith("ε")
    assert isinstance(explore.eps_slider(), widgets.FloatLogSlider)


def test_moving_a_slider_redraws_the_png_fast():
    e = ravine_explorer()
    before, path = png(e), e.path
    assert before.startswith(PNG)
    start = time.perf_counter()
    e.sliders["momentum"].value = 0.3
    elapsed = time.perf_counter() - start
    assert png(e).startswith(PNG) and png(e) != before
    assert not torch.equal(e.path, path)
    assert elapsed < 1.5  # < 0.5 s on an idle core; slack for a loaded CI machine


def test_the_path_is_the_step_functions_with_the_sliders_values():
    e = ravine_explorer()
    e.sliders["lr"].value = 0.02
    want = problems.run_on_surface(
        problems.ravine, lambda p: torch.optim.SGD(p, lr=e.sliders["lr"].value, momentum=0.6),
        start=(-4.5, 1.5), steps=60)
    torch.testing.assert_close(e.path, want, rtol=0, atol=0)


def test_a_torch_optimizer_class_and_betas_from_two_sliders():
    e = explore.explorer(torch.optim.Adam, problems.ravine, fixed={"lr": 0.3}, start=(-4.5, 1.5),
                         steps=20, sliders={"beta1": explore.beta1_slider(0.5),
                                            "beta2": explore.beta2_slider(0.99)})
    assert e.hyperparameters() == {"lr": 0.3, "betas": (0.5, 0.99)}
    want = problems.run_on_surface(
        problems.ravine, lambda p: torch.optim.Adam(p, lr=0.3, betas=(0.5, 0.99)),
        start=(-4.5, 1.5), steps=20)
    torch.testing.assert_close(e.path, want, rtol=0, atol=0)


def test_a_step_function_that_raises_is_reported_in_the_widget():
    def sgd_step(param, grad, state, *, lr=1e-3, momentum=0.0):
        raise NotImplementedError()

    e = ravine_explorer(sgd_step)  # no exception
    assert e.path is None and "NotImplementedError" in e.error
    assert "sgd_step raised NotImplementedError" in e.message.value
    assert "not written yet" in e.message.value
    assert png(e).startswith(PNG)
    e.sliders["lr"].value = 0.1  # the sliders stay usable
    assert "NotImplementedError" in e.message.value


def test_a_step_function_that_raises_midway_names_the_exception():
    def flaky(param, grad, state, *, lr=1e-3, momentum=0.0):
        state["t"] = state.get("t", 0) + 1
        if state["t"] == 5:
            raise ValueError("shapes (2,) and (3,) differ")
        param.sub_(lr * grad)

    e = ravine_explorer(flaky)
    assert "flaky raised ValueError: shapes (2,) and (3,) differ" in e.message.value


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_a_step_function_that_makes_the_point_not_finite_is_reported(value):
    def broken(param, grad, state, *, lr=1e-3, momentum=0.0):
        state["t"] = state.get("t", 0) + 1
        param.sub_(lr * grad if state["t"] < 3 else torch.full_like(param, value))

    e = ravine_explorer(broken)
    assert e.error is None and len(e.path) == 4  # stopped at the first point not finite
    assert "after step 3" in e.message.value and "not finite" in e.message.value
    assert png(e).startswith(PNG)
    e.sliders["momentum"].value = 0.1
    assert "not finite" in e.message.value


def test_a_step_that_does_not_update_in_place_is_reported():
    def out_of_place(param, grad, state, *, lr=1e-3, momentum=0.0):
        param = param - lr * grad  # the mistake: a new tensor, param unchanged

    e = ravine_explorer(out_of_place)
    assert "never moved" in e.message.value and "in place" in e.message.value


def test_a_diverging_path_is_said_to_diverge():
    e = ravine_explorer()
    e.sliders["momentum"].value = 0.0
    e.sliders["lr"].value = 0.3  # γh_max = 7.5: |1 − 7.5|^60 overflows the plot
    assert "diverging" in e.message.value or "not finite" in e.message.value
    assert png(e).startswith(PNG)


def test_the_text_form_is_deterministic_and_short():
    text = repr(ravine_explorer())
    assert text == "Explorer(sgd_step on ravine, 60 steps; lr=0.05, momentum=0.6)"
    bundle = ravine_explorer()._repr_mimebundle_()
    assert bundle["text/plain"] == text  # not cut at 110 characters


def test_captions_say_what_theory_predicts():
    gd = explore.gd_caption(1, 25)({"lr": 0.08})
    assert "γ·h_max = 2" in gd and "-1.000" in gd
    hb = explore.heavy_ball_caption(1, 25)({"lr": 4 / 36, "momentum": 4 / 9})
    assert hb.count("0.667") == 3  # both directions, and the slower, at tuned_heavy_ball(1, 25)
    assert "diverges" in explore.heavy_ball_caption(1, 25)({"lr": 0.2, "momentum": 0.0})
    adam = explore.adam_first_step_caption(problems.ravine, (-4.5, 1.5))({"lr": 0.3, "eps": 1e-8})
    assert "(+0.3, -0.3)" in adam and "|Δy|/|Δx| = 1.00" in adam and "8.33" in adam


def test_a_broken_caption_does_not_break_the_figure():
    e = ravine_explorer(caption=lambda hyper: 1 / 0)
    assert png(e).startswith(PNG) and "ZeroDivisionError" in e.message.value


# ------------------------------------------------------------------ the explorers in the solutions
NOTEBOOKS = ("01_gradient_descent", "03_momentum", "07_adam")


def test_solutions_keep_no_widget_state_nor_model_ids():
    """``./run release`` strips what widgets leave (random model ids, the PNGs again): a solution
    changes only when its outputs do, and nbval compares the explorers' short text form."""
    nb = {"metadata": {"widgets": {"state": {}}}, "cells": [{"cell_type": "code", "outputs": [
        {"output_type": "execute_result", "data": {"text/plain": "Explorer(...)",
                                                   WIDGET_VIEW: {"model_id": "1f2e"}}}]}]}
    nb = without_widgets(nbformat.from_dict(nb))
    assert "widgets" not in nb.metadata
    assert nb.cells[0].outputs[0].data == {"text/plain": "Explorer(...)"}
    for name in NOTEBOOKS:
        text = (ROOT / "solutions" / name / f"{name}.ipynb").read_text(encoding="utf-8")
        solution = json.loads(text)
        assert "widgets" not in solution["metadata"] and WIDGET_VIEW not in text, name
        explorers = [c for c in solution["cells"] if c.get("id", "").endswith("-explore")]
        assert len(explorers) == 1, name
        (out,) = explorers[0]["outputs"]
        assert out["data"]["text/plain"].startswith("Explorer("), name
