"""Chapter 9's widget code, driven from Python: no browser, no kernel (see also tests/browser)."""

import base64
import re
import sys
from pathlib import Path

import numpy as np
import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
if str(BOOK) not in sys.path:
    sys.path.insert(0, str(BOOK))

import stepper  # noqa: E402

JPEG = b"\xff\xd8\xff"


def picture(widget):
    return bytes(widget.image.value)


@pytest.fixture
def widget():
    return stepper.StepThrough(dataset="friendly", k=3, seed=1, impl="painless")


def test_moving_the_iteration_slider_redraws(widget):
    shown = [picture(widget)]
    assert shown[0].startswith(JPEG)
    assert widget.iteration.max == len(widget.run.states) - 1 == 25
    for position in (1, 2, 13, widget.iteration.max, 0):
        widget.iteration.value = position
        assert picture(widget) != shown[-1], f"position {position} did not redraw"
        shown.append(picture(widget))
    assert shown[-1] == shown[0], "position 0 again shows the first picture (frame cache)"
    widget.iteration.value = 2
    assert widget.position.value.startswith("iteration 1: after the M-step")


def test_naive_toggle_on_a_breaking_run_shows_why(widget):
    widget.k.value = 5
    widget.seed.value = 117
    assert "converged" in widget.message.value
    widget.iteration.value = 30
    before = picture(widget)
    widget.impl.value = "naive"
    assert "naive EM breaks" in widget.message.value
    assert "E-step 19: LinAlgError: Singular matrix" in widget.message.value
    assert widget.iteration.max == 38, "the slider ends at the last finite state"
    assert widget.iteration.value == 30, "switching the implementation keeps the position"
    assert picture(widget) != before
    widget.iteration.value = widget.iteration.max
    assert "iteration 19: after the M-step" in widget.position.value


def test_pain_gallery_case_has_its_own_start(widget):
    widget.impl.value = "naive"
    widget.dataset.value = "empty"
    assert widget.k.disabled and widget.seed.disabled
    assert widget.run.k == 4
    assert "M-step 1" in widget.message.value and "nan" in widget.message.value
    assert widget.iteration.max == 1  # the start and the first E-step
    widget.impl.value = "painless"
    assert "converged" in widget.message.value
    widget.dataset.value = "faithful"
    assert not widget.k.disabled and widget.run.X.shape == (272, 2)


def test_runs_are_cached_and_share_their_start():
    naive = stepper.get_run("friendly", 5, 117, "naive")
    assert stepper.get_run("friendly", 5, 117, "naive") is naive
    painless = stepper.get_run("friendly", 5, 117, "painless")
    for a, b in zip(naive.states[0].means, painless.states[0].means):
        np.testing.assert_allclose(a, b)
    # Same start, same steps while every number is representable.
    np.testing.assert_allclose(naive.history[:10], painless.history[:10], rtol=1e-9)
    # A pain-gallery case ignores K and the seed.
    assert stepper.get_run("empty", 2, 5, "naive") is stepper.get_run("empty", 7, 0, "naive")


def test_naive_underflow_is_reported_not_fatal():
    run = stepper.get_run("faithful", 3, 1, "naive")
    assert run.history[0] == -np.inf and np.isfinite(run.history[-1])
    assert not run.failed and "underflowed" in run.message
    frame = stepper.Frame().set_run(run)
    assert frame.update(1).image().startswith(JPEG)  # -inf is drawn, not a crash


def test_bad_controls_are_refused():
    with pytest.raises(ValueError, match="unknown data set"):
        stepper.get_run("nope")
    with pytest.raises(ValueError, match="impl"):
        stepper.get_run("friendly", impl="fast")


def test_static_animation_embeds_every_half_step():
    run = stepper.get_run("empty", impl="painless")
    html = stepper.animation(run).to_jshtml()
    small = stepper.compact(html)
    frames = re.findall(r'frames\[\d+\] = "data:image/png;base64,([^"]*)"', small)
    assert len(frames) == len(run.states) == 8
    assert 'type="range"' in small and len(small) < len(html) / 2
    first = base64.b64decode(frames[0])
    assert first.startswith(b"\x89PNG") and len(set(frames)) == len(frames)
