"""The "why" views over (models, image): where each model looks (the sketch lab and the rooms),
and how to fool it (the sketch lab)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import streamlit as st

from engine.explain import adversarial as adv
from engine.explain import attribution as attr
from engine.models.model import Model
from ui.figures.explain_charts import adversarial_figure, attribution_figure
from ui.state import remembered

TOP_GUESS = "the top guess (each model's own)"


def _class_to_explain(key: str) -> int | None:
    """The digit picked to explain, or None for each model's own top guess."""
    choice = st.selectbox("Explain the score of", [TOP_GUESS, *range(10)],
                          key=remembered(key, TOP_GUESS),
                          help="Attributions answer: which pixels push this digit's score up "
                               "(red) or down (blue)?")
    return None if choice == TOP_GUESS else int(choice)


def _attribution_settings(prefix: str) -> attr.Settings:
    """The methods' settings, one row of compact controls."""
    c1, c2, c3, c4, c5 = st.columns(5)
    samples = c1.slider("SmoothGrad samples", 1, 64, key=remembered(f"{prefix}_sg_samples", 16))
    noise = c2.slider("SmoothGrad noise", 0.0, 1.0, step=0.05,
                      key=remembered(f"{prefix}_sg_noise", 0.15),
                      help="Standard deviation of the Gaussian noise added to the pixels "
                           "(which run from 0 to 1). At 0 SmoothGrad is the plain gradient.")
    steps = c3.slider("IG steps", 1, 128, key=remembered(f"{prefix}_ig_steps", 32))
    baseline = c4.selectbox("IG baseline", attr.BASELINES,
                            key=remembered(f"{prefix}_ig_baseline", attr.BASELINES[0]),
                            help="Where Integrated Gradients starts: a black image, your digit "
                                 "blurred beyond recognition, or random noise.")
    patch = c5.slider("Occlusion patch", 1, 14, key=remembered(f"{prefix}_occ_patch", 4))
    return attr.Settings(samples=samples, noise=noise, steps=steps, baseline=baseline,
                         patch=patch, stride=max(1, patch // 2))


def _completeness_table(titles: list[str], explanations: list[attr.Explanation], key: str
                        ) -> None:
    """Integrated Gradients' check per model: the attributions add up to f(x) - f(baseline)."""
    rows = [{"model": t, "explained digit": e.cls,
             "sum of IG attributions": round(e.completeness.total, 3),
             "f(digit) − f(baseline)": round(e.completeness.gap, 3),
             "mismatch": f"{e.completeness.relative_error:.1%}"}
            for t, e in zip(titles, explanations, strict=True)]
    st.dataframe(rows, hide_index=True, key=key)
    if any(e.completeness.relative_error > 0.02 for e in explanations):
        st.info("Where the mismatch is over 2%, the path from the baseline crosses many ReLU "
                "kinks: raise the IG steps.", icon=":material/straighten:")


def show_attribution_view(models: Mapping[str, Model], titles: Mapping[str, str],
                          image: np.ndarray, answers: Mapping[str, np.ndarray], *,
                          prefix: str = "sk") -> None:
    """Every method's map for every model on `image` (28, 28), with IG's completeness check.

    answers: each model's probabilities (10,); prefix: the page's widget-key prefix (the sketch
    lab's "sk", or a room's for its one model)."""
    cls = _class_to_explain(f"{prefix}_explain_class")
    settings = _attribution_settings(prefix)
    try:
        settings.check()
        with st.spinner("Computing five attribution maps per model…"):
            explanations = [attr.explain(m, image, int(answers[s].argmax()) if cls is None
                                         else cls, settings) for s, m in models.items()]
    except attr.AttributionError as error:
        st.warning(f"{error} Move the slider back to a usable value.")
        return
    names = [titles[s] for s in models]
    st.plotly_chart(attribution_figure(explanations, names), key=f"{prefix}_attribution",
                    config={"displayModeBar": False})
    st.caption("Each row shares one colour scale (across the models, when there are several). "
               "Gradient: how a tiny change "
               "of each pixel moves the score. × input: only where there is ink. SmoothGrad: "
               "the gradient averaged over noisy copies. Integrated Gradients: gradients along "
               "the way from the baseline to your digit. Occlusion: how much the score drops "
               "when a patch is blacked out.")
    _completeness_table(names, explanations, f"{prefix}_ig_check")


def _attack_controls() -> tuple[str, str, int | None, float]:
    """(attacked model's slot, method, target digit or None, epsilon) from the controls."""
    c1, c2, c3, c4 = st.columns([2, 2, 2, 3])
    method = c2.radio("Attack", list(adv.ATTACKS), format_func=adv.ATTACKS.get,
                      key=remembered("sk_attack_method", list(adv.ATTACKS)[1]))
    target = c3.selectbox("Push toward", ["any other digit", *range(10)],
                          key=remembered("sk_attack_target", "any other digit"))
    epsilon = c4.slider("Epsilon: the most any pixel may change", 0.0, 0.5, step=0.01,
                        key=remembered("sk_attack_epsilon", 0.15))
    return c1, method, None if target == "any other digit" else int(target), epsilon


def fooled(before: int, after: int, target: int | None) -> str:
    """Whether an attack fooled a model that answered `before` and then `after`: any other
    answer when untargeted; when it pushed toward `target`, that one."""
    if target is None or after == target:
        return "yes" if after != before else "no"
    return f"no: it answers {after}, not {target}" if after != before else "no"


def _answers_table(models: Mapping[str, Model], titles: Mapping[str, str], image: np.ndarray,
                   attacked: np.ndarray, target: int | None) -> None:
    """Each model's answer and confidence on the digit and on the attacked digit, and whether
    the attack fooled it (`fooled`)."""
    rows = []
    for slot, model in models.items():
        before, after = model.predict_proba(np.stack([image, attacked]))
        rows.append({"model": titles[slot],
                     "answer on your digit": f"{before.argmax()} ({before.max():.0%})",
                     "answer on the attacked digit": f"{after.argmax()} ({after.max():.0%})",
                     "fooled": fooled(int(before.argmax()), int(after.argmax()), target)})
    st.dataframe(rows, hide_index=True, key="sk_attack_answers")


def _smallest_epsilons(models: Mapping[str, Model], titles: Mapping[str, str],
                       image: np.ndarray, method: str, target: int | None) -> None:
    """Bisection per model (each attacked directly) for the smallest epsilon that works."""
    rows = []
    with st.spinner("Bisecting epsilon for each model…"):
        for slot, model in models.items():
            found = adv.smallest_epsilon(model, image, method=method, target=target)
            rows.append({"model": titles[slot],
                         "smallest epsilon": "not fooled up to 0.5" if found.epsilon is None
                         else f"{found.epsilon:.3f}",
                         "answer then": "" if found.answer is None else str(found.answer)})
    st.dataframe(rows, hide_index=True, key="sk_attack_bisection")


def show_adversarial_view(models: Mapping[str, Model], titles: Mapping[str, str],
                          image: np.ndarray) -> None:
    """Attack one model on `image` (28, 28); show the change and every model's answer."""
    column, method, target, epsilon = _attack_controls()
    slot = column.selectbox("Attack the model", list(models), format_func=titles.get,
                            key=remembered("sk_attack_model", list(models)[-1]))
    label = models[slot].predict_proba(image[None]).argmax(axis=1)
    attacked = adv.attack(models[slot], image[None], label, epsilon, method=method,
                          target=target)[0]
    st.plotly_chart(adversarial_figure(image, attacked), key="sk_attack_figure",
                    config={"displayModeBar": False})
    st.markdown("Every model reads the attacked digit. The attack only used the gradients of "
                f"**{titles[slot]}**: does it fool the others too (does it *transfer*)?")
    _answers_table(models, titles, image, attacked, target)
    if epsilon == 0:
        st.info("At epsilon 0 no pixel may change: move the slider to attack.")
    if st.button("Find the smallest epsilon that fools each model", key="sk_attack_search"):
        _smallest_epsilons(models, titles, image, method, target)


def show_where_it_looks(model: Model, title: str, image: np.ndarray, probabilities: np.ndarray,
                        *, prefix: str) -> None:
    """A room's one model on its digit (28, 28): the attribution maps, behind a switch (they
    cost a compile the first time, and the room reruns often during a run)."""
    if st.toggle("Where it looks: five attribution methods on this digit",
                 key=remembered(f"{prefix}_attribution_on", False)):
        show_attribution_view({prefix: model}, {prefix: title}, image, {prefix: probabilities},
                              prefix=prefix)
