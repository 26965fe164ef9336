"""The sketch lab in AppTest: a drawing reaches every model, toggles re-run them, sources shown."""

from __future__ import annotations

import json
import re

import jax
import numpy as np
import plotly.io as pio
import pytest
from helpers import (
    ROOT,
    canvas_state,
    image_bytes,
    mnist_digit,
    mnist_on_canvas,
    on_device,
    on_paper,
    open_tab,
    vertical_one,
)
from streamlit.testing.v1 import AppTest

from engine import cnn, ffnn
from engine.app.predict import DEFAULT_MODELS
from ui.figures.charts import IDLE_BAR, probability_bars_figure
from ui.figures.pictures import feature_map_mosaic, saliency_overlay
from ui.models import TRAINED_MODELS_KEY
from ui.sketch import canvas_key
from ui.views.lab import (
    WAITING,
    compact_bars_figure,
    compacted,
    top_guess,
    waiting_bars_figure,
)

SMALL_THREE = mnist_on_canvas(mnist_digit(3), top=15, left=20, size=70)  # small, top-left

PAGE = "pages/sketch.py"


@pytest.fixture
def lab() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def draw(at: AppTest, rgba: np.ndarray) -> AppTest:
    at.session_state[canvas_key("sk")] = canvas_state(rgba)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def guesses(at: AppTest) -> list[str]:
    return [metric.value for metric in at.metric]


def captions(at: AppTest) -> list[str]:
    return [caption.value for caption in at.caption]


def test_an_empty_canvas_gets_a_friendly_prompt_and_every_model_waiting(lab) -> None:
    assert "Draw a digit" in lab.info[0].value
    assert not lab.error and not lab.warning
    assert guesses(lab) == [WAITING] * len(DEFAULT_MODELS)
    assert captions(lab).count("waiting for your drawing") == len(DEFAULT_MODELS)
    for chart in lab.get("plotly_chart"):  # ten empty, unlabelled bars, none highlighted
        bars = json.loads(chart.proto.spec)["data"][0]
        assert bars["y"] == [0.0] * 10 and bars["text"] == [""] * 10
        assert bars["marker"]["color"] == IDLE_BAR


def test_a_drawing_replaces_the_waiting_columns_with_answers(lab) -> None:
    draw(lab, vertical_one())
    assert WAITING not in guesses(lab) and "waiting for your drawing" not in captions(lab)
    assert len(lab.get("plotly_chart")) == len(DEFAULT_MODELS)  # the answers' bars only
    lab.session_state[canvas_key("sk")] = None  # the canvas cleared
    lab.run()
    assert guesses(lab) == [WAITING] * len(DEFAULT_MODELS)


def test_the_waiting_bars_are_the_answer_bars_at_zero() -> None:
    waiting, answer = waiting_bars_figure().to_dict(), compact_bars_figure(np.eye(10)[3]).to_dict()
    assert waiting["layout"] == answer["layout"]
    assert waiting["data"][0]["x"] == answer["data"][0]["x"]


def test_a_drawn_one_is_answered_by_every_model_with_its_source(lab) -> None:
    draw(lab, vertical_one())
    answered = [c for c in captions(lab) if c == "pretrained default"]
    assert len(guesses(lab)) == len(answered) == len(DEFAULT_MODELS)
    assert set(guesses(lab)) == {"1"}
    assert any(c.endswith("% confident") for c in captions(lab))
    assert not lab.warning  # sure of itself: no "not sure" hint


def test_switching_cropping_off_re_runs_the_models(lab) -> None:
    """A small digit in a corner: fine with every step, a "1" for the feed-forward nets once the
    crop is off (the digit then fills a few pixels of the 20x20 box)."""
    draw(lab, SMALL_THREE)
    assert guesses(lab)[:2] == ["3", "3"]
    lab.toggle(key="sk_crop").set_value(False).run()
    assert not lab.exception
    assert guesses(lab)[:2] != ["3", "3"]
    assert any(c.startswith("2 · cropped 280×280") for image in lab.get("image")
               for c in image.captions)


def test_switching_centring_off_leaves_the_digit_where_it_was_pasted(lab) -> None:
    draw(lab, SMALL_THREE)
    lab.toggle(key="sk_centre").set_value(False).run()
    stage_captions = [c for image in lab.get("image") for c in image.captions]
    assert "6 · shifted by (0, 0): what the models see" in stage_captions


def test_a_model_trained_in_this_session_replaces_the_default_and_says_so(lab) -> None:
    """An untrained net (all-zero weights) answers 10% for every digit: a model that is not sure."""
    arch = ffnn.Architecture((8,))
    zeros = {name: np.zeros(shape, np.float32) for name, shape in arch.param_shapes().items()}
    lab.session_state[TRAINED_MODELS_KEY] = {"ffnn-jax": on_device(ffnn.FAMILY, arch, zeros)}
    draw(lab, vertical_one())
    assert captions(lab).count("trained in this session") == 1
    assert guesses(lab)[1] == "0?"
    assert "Not sure: only 10% confident" in captions(lab)
    assert "bigger" in lab.warning[0].value


def test_the_cnn_shows_its_saliency_and_first_layer(lab) -> None:
    """Whichever CNN is offered (here an untrained one of this session) gets section 3."""
    spec = cnn.CNNSpec(filters=(4,))
    params = cnn.init_params(jax.random.PRNGKey(0), spec)
    lab.session_state[TRAINED_MODELS_KEY] = {"cnn": on_device(cnn.FAMILY, spec, params)}
    draw(lab, vertical_one())
    assert "What the CNN looks at" in [h.value for h in lab.subheader]
    cnn_captions = [c for image in lab.get("image") for c in image.captions]
    assert any(c.startswith("Saliency") for c in cnn_captions)
    assert "First layer: what each of its 4 filters responds to (bright = strong)" in cnn_captions


def test_the_lab_bars_are_the_shared_bar_chart_made_compact() -> None:
    """compact_bars_figure builds on a cached figure per winning digit: it must stay exactly
    compacted(probability_bars_figure(p)), and drawings with the same winner must not leak
    into each other's figures (all are built before any is read)."""
    def spec(figure) -> dict:
        return json.loads(pio.to_json(figure, validate=False))

    rng = np.random.default_rng(0)
    drawings = [rng.dirichlet(np.ones(10) * a) for a in (0.1, 1.0, 10.0)]
    drawings += [np.full(10, 0.1), np.eye(10)[9], np.linspace(0.0, 0.2, 10)]  # two 9s
    figures = [compact_bars_figure(probabilities) for probabilities in drawings]
    for probabilities, figure in zip(drawings, figures, strict=True):
        assert spec(figure) == spec(compacted(probability_bars_figure(probabilities)))


def test_top_guess_and_the_cnn_views_are_plain_images() -> None:
    assert top_guess(np.array([0.1, 0.6, 0.3])) == (1, pytest.approx(0.6))
    image = np.zeros((28, 28), np.float32)
    image[5:20, 14] = 1
    saliency = np.zeros((28, 28), np.float32)
    saliency[10, 14] = -2.0  # magnitude counts, not sign
    overlay = saliency_overlay(image, saliency)
    assert overlay.shape == (28, 28, 3) and overlay.dtype == np.uint8
    assert tuple(overlay[10, 14]) == (255, 38, 13)  # the strongest pixel is full red
    assert tuple(overlay[5, 14]) == (89, 89, 89)  # ink without saliency: dimmed grey
    maps = np.stack([image, 2 * image, np.zeros_like(image)], axis=-1)
    mosaic = feature_map_mosaic(maps, columns=2)
    assert mosaic.shape == (28 * 2 + 1, 28 * 2 + 1, 3)
    assert mosaic[5, 14, 0] == mosaic[5, 29 + 14, 0] == 255  # each map scaled to its own peak
    assert mosaic[29 + 5, 14, 0] == 0  # an all-zero map stays black


def confidences(at: AppTest) -> list[int]:
    """The top confidence shown under each model's answer, in percent."""
    return [int(m.group(1)) for c in captions(at) if (m := re.search(r"(\d+)% confident$", c))]


def test_a_high_temperature_flattens_the_bars_but_keeps_every_guess(lab) -> None:
    draw(lab, mnist_on_canvas(mnist_digit(7)))
    before, sure = confidences(lab), guesses(lab)
    assert len(before) == len(DEFAULT_MODELS) and lab.select_slider(key="sk_temperature").value == 1
    lab.select_slider(key="sk_temperature").set_value(4.0).run()
    assert not lab.exception, [e.value for e in lab.exception]
    after = confidences(lab)
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)
    assert [g.rstrip("?") for g in guesses(lab)] == sure  # the guess never changes
    labels = [json.loads(c.proto.spec)["data"][0]["text"] for c in lab.get("plotly_chart")]
    tallest = [max(int(label.rstrip("%")) for label in bars) for bars in labels]
    assert tallest == after  # the bars show the tempered probabilities too


def test_inputs_no_model_was_trained_for_get_every_models_answer(lab) -> None:
    draw(lab, mnist_on_canvas(mnist_digit(7)))
    (panel,) = [e for e in lab.expander if e.label == "Inputs no model was trained for"]
    assert not panel.children  # closed: nothing computed for it
    lab.session_state["sk_unfamiliar"] = True  # the learner opens it
    lab.run()
    (panel,) = [e for e in lab.expander if e.label == "Inputs no model was trained for"]
    shown = [c for image in panel.get("image") for c in image.captions]
    assert shown == ["uniform noise", "the letter A", "a faint scribble"]
    answers = [m.value for m in panel.markdown if " at " in m.value]
    assert len(answers) == 3
    assert all(text.count("%") == len(DEFAULT_MODELS) for text in answers)
    assert "a confident answer is not a correct one" in panel.markdown[0].value.lower()


def switches(at: AppTest) -> dict[str, bool]:
    return {toggle.key: toggle.value for toggle in at.toggle}


def stage_captions(at: AppTest) -> list[str]:
    return [c for image in at.get("image") for c in image.captions if "·" in c]


def upload(at: AppTest, name: str, rgba: np.ndarray | None) -> AppTest:
    value = None if rgba is None else (name, image_bytes(rgba), "image/png")
    at.file_uploader(key="sk_upload").set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_switches_keep_their_state_across_a_second_upload_and_clear(lab) -> None:
    """Issue 18, item 2: with no stages to switch (the upload swapped out, the canvas cleared),
    the switches went undrawn for a run, lost their values and came back out of step."""
    upload(lab, "three.png", on_paper(SMALL_THREE))
    lab.toggle(key="sk_crop").set_value(False).run()
    lab.toggle(key="sk_centre").set_value(False).run()
    off = {"sk_crop": False, "sk_fit": True, "sk_strokes": True, "sk_centre": False}
    assert switches(lab) == off
    upload(lab, "three.png", None)  # the browser drops the old file before sending the new one
    upload(lab, "seven.png", on_paper(mnist_on_canvas(mnist_digit(7), size=150)))
    assert switches(lab) == off
    assert any("cropped 280×280" in c for c in stage_captions(lab))  # crop still off
    assert any("shifted by (0, 0)" in c for c in stage_captions(lab))  # centring still off
    upload(lab, "seven.png", None)
    draw(lab, vertical_one())
    lab.button(key="sk_clear").click().run()
    lab.session_state[canvas_key("sk", clears=1)] = canvas_state(vertical_one())
    lab.run()
    assert switches(lab) == off
    assert any("cropped 280×280" in c for c in stage_captions(lab))


def table_with(at: AppTest, column: str):
    """The one dataframe shown with `column` (AppTest does not expose a dataframe's key)."""
    (table,) = [d.value for d in at.dataframe if column in d.value.columns]
    return table


@pytest.mark.slow
def test_where_they_look_shows_every_method_for_every_model(lab) -> None:
    draw(lab, mnist_on_canvas(mnist_digit(7)))
    open_tab(lab, PAGE, "Where they look")
    traces = json.loads(lab.get("plotly_chart")[0].proto.spec)["data"]
    assert [t["type"] for t in traces] == ["heatmap"] * len(DEFAULT_MODELS) * 5
    check = table_with(lab, "explained digit")
    assert list(check["explained digit"]) == [7, 7, 7]
    lab.selectbox(key="sk_explain_class").set_value(2).run()
    assert list(table_with(lab, "explained digit")["explained digit"]) == [2, 2, 2]


@pytest.mark.slow
@pytest.mark.parametrize("key, value", [("sk_sg_samples", 64), ("sk_sg_noise", 0.0),
                                        ("sk_ig_steps", 1), ("sk_occ_patch", 14),
                                        ("sk_occ_patch", 1), ("sk_ig_baseline", "noise")])
def test_extreme_attribution_settings_never_crash(lab, key, value) -> None:
    draw(lab, mnist_on_canvas(mnist_digit(4)))
    open_tab(lab, PAGE, "Where they look")
    widget = lab.selectbox(key=key) if key == "sk_ig_baseline" else lab.slider(key=key)
    widget.set_value(value).run()
    assert not lab.exception and not lab.error
    assert table_with(lab, "explained digit") is not None


@pytest.mark.slow
def test_fool_them_attacks_the_cnn_and_every_model_answers(lab) -> None:
    draw(lab, mnist_on_canvas(mnist_digit(3)))
    open_tab(lab, PAGE, "Fool them")
    lab.slider(key="sk_attack_epsilon").set_value(0.3).run()
    table = table_with(lab, "fooled")
    assert len(table) == len(DEFAULT_MODELS)
    assert table["fooled"].iloc[-1] == "yes"  # PGD at 0.3 fools the CNN it attacks
    lab.selectbox(key="sk_attack_target").set_value(8).run()
    assert table is not None and not lab.exception
    lab.button(key="sk_attack_search").click().run()
    assert not lab.exception
    assert len(table_with(lab, "smallest epsilon")) == len(DEFAULT_MODELS)
    # Issue 27: another tab and back keeps the attack's settings.
    open_tab(lab, PAGE, "Where they look")
    open_tab(lab, PAGE, "Fool them")
    assert lab.slider(key="sk_attack_epsilon").value == 0.3
    assert lab.selectbox(key="sk_attack_target").value == 8


def test_epsilon_zero_and_fgsm_get_a_message_not_an_error(lab) -> None:
    draw(lab, mnist_on_canvas(mnist_digit(5)))
    open_tab(lab, PAGE, "Fool them")
    lab.radio(key="sk_attack_method").set_value("fgsm").run()
    lab.slider(key="sk_attack_epsilon").set_value(0.0).run()
    assert set(table_with(lab, "fooled")["fooled"]) == {"no"}
    assert any("epsilon 0" in i.value for i in lab.info)


def test_an_uploaded_non_digit_gets_a_message_on_every_tab(lab) -> None:
    """Pure noise from a file: refused with a message before any tab runs."""
    noise = np.random.default_rng(0).integers(0, 256, (280, 280, 4), dtype=np.uint8)
    noise[..., 3] = 255
    draw(lab, noise)
    for label in ("Where they look", "Fool them", "Teach it"):
        open_tab(lab, PAGE, label)
        assert lab.error or lab.warning or lab.info


@pytest.mark.slow
def test_teach_it_changes_the_cnn_and_undo_puts_the_default_back_exactly(lab) -> None:
    draw(lab, mnist_on_canvas(mnist_digit(3)))
    open_tab(lab, PAGE, "Teach it")
    assert lab.selectbox(key="sk_teach_label").value == 3  # starts at the CNN's guess
    assert any("untouched" in i.value for i in lab.info)
    lab.selectbox(key="sk_teach_label").set_value(8).run()
    lab.slider(key="sk_teach_steps").set_value(3).run()
    lab.button(key="sk_teach_go").click().run()
    assert not lab.exception, [e.value for e in lab.exception]
    taught = lab.session_state[TRAINED_MODELS_KEY]["cnn"]
    assert taught.metadata["taught"] == {"label": 8, "steps": 3}
    assert {"Helped (wrong → right)", "Hurt (right → wrong)"} <= {m.label for m in lab.metric}
    assert "Taught so far: **8**" in " ".join(m.value for m in lab.markdown)
    lab.button(key="sk_teach_undo").click().run()
    assert not lab.exception
    assert "cnn" not in lab.session_state[TRAINED_MODELS_KEY]
    assert any("untouched" in i.value for i in lab.info)


@pytest.mark.slow
def test_undo_puts_back_the_model_trained_in_this_session_exactly(lab) -> None:
    key = jax.random.key(0)
    arch = ffnn.Architecture(hidden=(32,))
    own = on_device(ffnn.FAMILY, arch, ffnn.init_params(key, arch))
    kept = {name: np.array(value) for name, value in own.params.items()}
    lab.session_state[TRAINED_MODELS_KEY] = {"ffnn-jax": own}
    draw(lab, mnist_on_canvas(mnist_digit(4)))
    open_tab(lab, PAGE, "Teach it")
    lab.selectbox(key="sk_teach_model").set_value("ffnn-jax").run()
    lab.button(key="sk_teach_go").click().run()
    lab.button(key="sk_teach_go").click().run()  # a second press teaches the taught model on
    assert "Taught so far: **" in " ".join(m.value for m in lab.markdown)
    assert lab.session_state[TRAINED_MODELS_KEY]["ffnn-jax"] is not own
    lab.button(key="sk_teach_undo").click().run()
    back = lab.session_state[TRAINED_MODELS_KEY]["ffnn-jax"]
    assert back is own
    assert all(np.array_equal(np.asarray(back.params[n]), kept[n]) for n in kept)
