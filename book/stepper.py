"""Step through EM (chapter 9): the runs, the figure of one half-step, and the live controls.

A run is computed once per (data set, K, seed, implementation) and cached. The figure is built
once per run; moving through the half-steps of a run (start, E-step, M-step, E-step, ...) only
updates its artists in place and renders them with Agg, so the iteration slider only redraws.
The same `Frame` draws the frames of the static animation in the book page.
"""

import base64
import functools
import io
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import figures
import gallery
import numpy as np
from matplotlib.artist import Artist
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from PIL import Image

import gmm_core

#: The data sets the widget offers: key -> label.
DATASETS = {
    "friendly": "friendly 2-D (100 points)",
    "faithful": "Old Faithful (272 points)",
    "empty": "pain gallery: an empty component",
}
#: The pain-gallery cases start from their own parameters, so K and the seed do not apply.
CASES = {"empty": gallery.empty_case}
IMPLEMENTATIONS = ("painless", "naive")
#: At most this many M-steps per run.
MAX_ITER = 100
#: The range of the K control.
K_MAX = 8
#: The figure's size (inches) and resolution: 684 x 333 pixels, the width of a book page.
FIGSIZE = (7.6, 3.7)
DPI = 90


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    """One EM run, every half-step of it.

    Attributes
    ----------
    dataset, k, seed, impl : the key of the run
    X : ndarray of shape (N, 2)
    states : tuple of gmm_core.EMState
        The start and the state after every E- and M-step, as long as the numbers are finite.
    message : str
        How the run ended: converged, or where and why naive EM broke.
    failed : bool
        True when naive EM broke: an exception, non-finite numbers, or a likelihood that
        underflowed to 0 and stopped the loop.
    """

    dataset: str
    k: int
    seed: int
    impl: str
    X: np.ndarray
    states: tuple
    message: str
    failed: bool

    @property
    def history(self):
        """The log-likelihood after each E-step (-inf where the naive product underflowed)."""
        return np.array([s.log_likelihood for s in self.states if s.step == "E"], dtype=float)

    def label(self, index):
        """What position `index` shows, e.g. 'iteration 3: after the E-step'."""
        state = self.states[index]
        if state.step == "init":
            return "the start"
        if state.step == "E":
            return f"iteration {state.iteration}: after the E-step"
        return f"iteration {state.iteration}: after the M-step"


def data(dataset):
    """The points of a data set, shape (N, 2)."""
    if dataset == "friendly":
        return gallery.friendly_2d()[0]
    if dataset == "faithful":
        return gallery.faithful()
    if dataset in CASES:
        return CASES[dataset]().X
    raise ValueError(f"unknown data set {dataset!r}; choose one of {list(DATASETS)}")


def start(dataset, k, seed):
    """The starting parameters: `init_random(X, k, seed)`, or a pain-gallery case's own."""
    if dataset in CASES:
        return CASES[dataset]().params
    return gmm_core.init_random(data(dataset), k, seed)


def key(dataset, k, seed, impl):
    """The normalised key of a run: a pain-gallery case has its own K and no seed."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {list(DATASETS)}")
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    if dataset in CASES:
        return dataset, len(CASES[dataset]().weights), 0, impl
    return dataset, int(k), int(seed), impl


def get_run(dataset="friendly", k=3, seed=0, impl="painless"):
    """The run for these controls, computed on first use and cached."""
    return _run(*key(dataset, k, seed, impl))


def _finite(state):
    arrays = [state.weights, state.means, state.covariances]
    if state.resp is not None:
        arrays.append(state.resp)
    return all(np.all(np.isfinite(a)) for a in arrays)


def _next_step(state):
    """The name of the step that comes after `state`."""
    if state.step == "E":
        return f"M-step {state.iteration + 1}"
    return f"E-step {state.iteration}"


def _naive(X, params):
    """Naive EM's states up to the last finite one, and how it ended (message, failed)."""
    states, underflow = [], None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with np.errstate(divide="warn", over="warn", invalid="warn", under="ignore"):
            steps = gmm_core.naive_em_steps(X, *params, max_iter=MAX_ITER)
            while True:
                seen = len(caught)
                try:
                    state = next(steps)
                except StopIteration:
                    break
                except Exception as exc:  # a singular matrix: the failure is the point
                    where = _next_step(states[-1]) if states else "the start"
                    return states, f"{where}: {type(exc).__name__}: {exc}", True
                if not _finite(state):
                    new = caught[seen:]
                    why = (f"{new[0].category.__name__}: {new[0].message}" if new
                           else "non-finite numbers")
                    name, bad = next((name, a) for name, a in (
                        ("responsibilities", state.resp), ("means", state.means),
                        ("covariances", state.covariances), ("weights", state.weights))
                        if a is not None and not np.all(np.isfinite(a)))
                    kind = "nan" if np.isnan(bad).any() else "infinite"
                    return states, f"{_next_step(states[-1])}: {why} ({name} are {kind})", True
                states.append(state)
                if state.step == "E" and state.log_likelihood == -np.inf and underflow is None:
                    underflow = state.iteration
    last = states[-1]
    if underflow is not None and last.log_likelihood == -np.inf:
        return states, (f"E-step {underflow}: the likelihood p(z), a product of {len(X)} "
                        "densities, underflowed to 0.0 (log p(z) = -inf), and the stopping "
                        f"rule fired at iteration {last.iteration}: 0.0 cannot grow"), True
    if underflow is not None:
        return states, (_ending(last) + f" (p(z) underflowed to 0.0 at E-step {underflow}, "
                        "so its log-likelihood is -inf there)"), False
    return states, _ending(last), False


def _ending(last):
    if last.converged:
        return (f"converged after {last.iteration} iterations, "
                f"log-likelihood L = {last.log_likelihood:.2f}")
    return (f"stopped after {last.iteration} iterations (max_iter), "
            f"log-likelihood L = {last.log_likelihood:.2f}")


@functools.lru_cache(maxsize=64)
def _run(dataset, k, seed, impl):
    X = data(dataset)
    params = start(dataset, k, seed)
    if impl == "naive":
        states, message, failed = _naive(X, params)
    else:
        states = list(gmm_core.em_steps(X, *params, max_iter=MAX_ITER))
        message, failed = _ending(states[-1]), False
    return Run(dataset, k, seed, impl, X, tuple(states), message, failed)


# --------------------------------------------------------------------------------------------
# The figure of one half-step
# --------------------------------------------------------------------------------------------

def _ellipse_geometry(cov, n_sigma):
    """Width, height and angle of the n-sigma ellipse, as `figures.add_ellipse` draws it."""
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=float))
    vals = np.clip(vals, 0, None)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    return 2 * n_sigma * np.sqrt(vals[1]), 2 * n_sigma * np.sqrt(vals[0]), angle


class Frame:
    """One figure, two panels: the points and the components; the log-likelihood curve.

    `set_run` builds the artists for a run; `update` moves them to one half-step; `image`
    renders the figure. Without `fig`, the frame owns an Agg figure and blits: the parts that
    do not change within a run (axes, ticks, the whole curve) are drawn once per run, and each
    half-step redraws only the points, the ellipses and the labels over that background. With
    `fig` (a figure of your own, say from pyplot) nothing is blitted: `image` draws it all.
    `footer` adds a line saying how the run ended (the widget shows it below the image).
    """

    def __init__(self, fig=None, *, footer=True):
        self.blit = fig is None
        self.footer = footer
        if fig is None:
            fig = Figure(figsize=FIGSIZE, dpi=DPI)
            FigureCanvasAgg(fig)
        self.fig = fig
        self.ax_data, self.ax_ll = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
        fig.subplots_adjust(left=0.08, right=0.98, top=0.84, bottom=0.28 if footer else 0.23,
                            wspace=0.32)
        self.run = None
        self.background = None

    def set_run(self, run):
        """Build the artists of `run`: called once per run, not per half-step."""
        self.run = run
        ax, ax_ll, fig = self.ax_data, self.ax_ll, self.fig
        ax.clear()
        ax_ll.clear()
        for text in fig.texts[:]:
            text.remove()
        X = run.X
        self.points = ax.scatter(X[:, 0], X[:, 1], s=12, c="0.5", lw=0)
        lo, hi = X.min(axis=0), X.max(axis=0)
        pad = 0.08 * (hi - lo)
        ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
        ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
        ax.set_aspect("equal", adjustable="box")
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6, steps=[1, 2, 5, 10]))
        faithful = run.dataset == "faithful"
        ax.set_xlabel("eruption time (standardised)" if faithful else "$z_1$")
        ax.set_ylabel("waiting time (standardised)" if faithful else "$z_2$")
        first = run.states[0]
        self.ellipses, self.centres = [], []
        for k in range(run.k):
            color = figures.component_color(k)
            before = len(ax.patches)
            figures.add_ellipse(ax, first.means[k], first.covariances[k], color=color)
            self.ellipses.append(ax.patches[before:])
            (centre,) = ax.plot(*first.means[k], "x", color=color, ms=8, mew=2)
            self.centres.append(centre)
        # The weights in one row, in the components' colours (one text each: cheaper to draw
        # than a label at each mean, and it shows a component outside the panel too).
        row = 0.085 if self.footer else 0.03
        fig.text(0.02, row, "weights P(k):", fontsize=10)
        self.weight_row = [fig.text(0.2 + 0.075 * k, row, "", fontsize=10, weight="bold",
                                    color=figures.component_color(k)) for k in range(run.k)]
        if self.footer:  # how the run ended (the widget says it under the figure instead)
            color = "crimson" if run.failed else "0.2"
            prefix = "naive EM breaks at " if run.failed else f"{run.impl} EM: "
            fig.text(0.02, 0.02, _shorten(prefix + run.message, 105), fontsize=9, color=color)

        history = run.history
        ax_ll.plot(np.arange(len(history)), history, "o-", ms=3, color="0.3")
        (self.ll_marker,) = ax_ll.plot([], [], "o", ms=10, mfc="none", mec="crimson", mew=2)
        self.ll_line = ax_ll.axvline(0, color="crimson", lw=1, ls=":")
        finite = history[np.isfinite(history)]
        if len(finite):
            span = max(finite.max() - finite.min(), 1.0)
            ax_ll.set_ylim(finite.min() - 0.08 * span, finite.max() + 0.08 * span)
        if len(finite) < len(history):
            ax_ll.text(0.5, 0.06, "log p(z) = -inf: the product underflowed",
                       transform=ax_ll.transAxes, ha="center", color="crimson", fontsize=9)
        ax_ll.set_xlim(-0.7, max(len(history) - 0.3, 1.3))
        ax_ll.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_ll.set_xlabel("iteration")
        ax_ll.set_ylabel("log-likelihood $L$")
        ax_ll.set_title("log-likelihood after each E-step", fontsize=10)
        setting = f"K = {run.k}" + (f", seed {run.seed}" if run.dataset not in CASES else "")
        fig.suptitle(f"{run.impl} EM on {DATASETS[run.dataset]}, {setting}", fontsize=11)
        self.title = ax.set_title("", fontsize=10)

        self.dynamic = [self.points, *(p for pair in self.ellipses for p in pair), *self.centres,
                        *self.weight_row, self.ll_marker, self.ll_line,
                        self.title]
        self.background = None
        if self.blit:
            for artist in self.dynamic:
                artist.set_animated(True)
            self.fig.canvas.draw()  # everything that stays, once per run
            self.background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        return self

    def update(self, index):
        """Move the artists to half-step `index` of the run (and redraw them when blitting)."""
        run = self.run
        state = run.states[index]
        if state.resp is None:
            self.points.set_facecolors("0.5")
        else:
            self.points.set_facecolors(figures.resp_colors(state.resp))
        for k in range(run.k):
            mean, cov = state.means[k], state.covariances[k]
            for n_sigma, patch in zip((1, 2), self.ellipses[k]):
                width, height, angle = _ellipse_geometry(cov, n_sigma)
                patch.set_center(mean)
                patch.set_width(width)
                patch.set_height(height)
                patch.set_angle(angle)
            self.centres[k].set_data([mean[0]], [mean[1]])
            self.weight_row[k].set_text(f"{state.weights[k]:.2f}")
        # The log-likelihood known at this half-step is the last E-step's.
        done = [s for s in run.states[:index + 1] if s.step == "E"]
        if done:
            self.ll_marker.set_data([len(done) - 1], [done[-1].log_likelihood])
        else:
            self.ll_marker.set_data([], [])
        x = state.iteration if state.step == "E" else state.iteration - 0.5
        self.ll_line.set_xdata([x, x])
        self.title.set_text(f"{run.label(index)}  [{index}/{len(run.states) - 1}]")
        if self.blit:
            self.fig.canvas.restore_region(self.background)
            for artist in self.dynamic:
                self.fig.draw_artist(artist)
        return self

    def image(self, fmt="jpeg"):
        """The figure as JPEG (or PNG) bytes, after `update`.

        JPEG at quality 90: encoding takes about 1 ms where PNG takes about 10-30, and at this
        quality lines and text stay sharp.
        """
        if not self.blit:
            self.fig.canvas.draw()
        width, height = self.fig.canvas.get_width_height(physical=True)
        picture = Image.frombuffer("RGBA", (width, height), self.fig.canvas.buffer_rgba(),
                                   "raw", "RGBA", 0, 1).convert("RGB")
        buffer = io.BytesIO()
        if fmt == "jpeg":
            picture.save(buffer, format="jpeg", quality=90)
        else:
            picture.save(buffer, format="png", compress_level=1)
        return buffer.getvalue()


def _shorten(text, width):
    return text if len(text) <= width else text[:width - 3] + "..."


class _SaveOnlyCanvas(FigureCanvasAgg):
    """An Agg canvas that draws only when saved: `to_jshtml` then draws each frame once."""

    def draw_idle(self, *args, **kwargs):
        pass


class _Picture(Artist):
    """An RGBA picture painted onto the canvas pixel for pixel: no resampling, no colour map."""

    def __init__(self, rgba):
        super().__init__()
        self.rgba = rgba

    def draw(self, renderer):
        gc = renderer.new_gc()
        renderer.draw_image(gc, 0, 0, self.rgba)
        gc.restore()


def animation(run, *, interval=500):
    """A `FuncAnimation` over every half-step of `run`, for `to_jshtml` (the static page).

    Each half-step is drawn once with `Frame` (exactly the widget's picture); the animation's
    own figure only shows those pictures, one per frame, so `to_jshtml` draws nothing twice.
    Pass its HTML through `compact` before showing it.
    """
    from matplotlib.animation import FuncAnimation

    frame = Frame().set_run(run)
    pictures = [np.asarray(frame.update(i).fig.canvas.buffer_rgba())[::-1].copy()
                for i in range(len(run.states))]
    height, width, _ = pictures[0].shape
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    _SaveOnlyCanvas(fig)
    shown = fig.add_artist(_Picture(pictures[0]))

    def show(i):
        shown.rgba = pictures[i]
        return [shown]

    return FuncAnimation(fig, show, frames=len(pictures), interval=interval, repeat=False)


_FRAME = re.compile(r'(frames\[\d+\] = "data:image/)png;base64,([^"]*)"')
_FONT_AWESOME = re.compile(r'<link rel="stylesheet"\s+href="https://[^"]*font-awesome[^"]*">')
_ICON = re.compile(r'<i class="fa ([^"]*)"></i>')
#: The player's buttons, as text (U+FE0E asks for the text form of the triangles, not emoji).
_ICONS = {"fa-minus": "\u2212", "fa-fast-backward": "\u25ae\u25c0\ufe0e\u25c0\ufe0e",
          "fa-step-backward": "\u25ae\u25c0\ufe0e", "fa-play fa-flip-horizontal": "\u25c0\ufe0e",
          "fa-pause": "\u25ae\u25ae", "fa-play": "\u25b6\ufe0e",
          "fa-step-forward": "\u25b6\ufe0e\u25ae",
          "fa-fast-forward": "\u25b6\ufe0e\u25b6\ufe0e\u25ae", "fa-plus": "+"}


def compact(html, colors=256):
    """Make a `to_jshtml` page smaller and self-contained.

    Its PNG frames become palette PNGs, about a third of the size: the figure has a few flat
    colours plus their anti-aliased blends, so `colors` (256) chosen by an octree keep every
    pixel within a few levels of the original. Its buttons' Font Awesome icons, which it loads
    from a CDN, become text symbols, so the player needs no network.
    """
    def palette(match):
        raw = base64.b64decode(match.group(2).replace("\\\n", ""))
        picture = Image.open(io.BytesIO(raw)).convert("RGB")
        small = picture.quantize(colors=colors, method=Image.Quantize.FASTOCTREE,
                                 dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        small.save(buffer, format="png")
        data = base64.b64encode(buffer.getvalue()).decode("ascii")
        return f'{match.group(1)}png;base64,{data}"'

    def icon(match):
        return f'<span aria-hidden="true">{_ICONS.get(match.group(1), "?")}</span>'

    html = _FONT_AWESOME.sub("", html)
    html = _ICON.sub(icon, html)
    return _FRAME.sub(palette, html)


# --------------------------------------------------------------------------------------------
# The live controls (ipywidgets)
# --------------------------------------------------------------------------------------------

class StepThrough:
    """The controls and the figure: data set, K, seed, naive/painless, and the half-step slider.

    Display it as the last expression of a cell. Its parts are attributes, so a test can set
    `widget.iteration.value` and read `widget.image.value`.
    """

    def __init__(self, dataset="friendly", k=3, seed=0, impl="painless", cache_size=400):
        import ipywidgets as widgets

        label = {"description_width": "70px"}
        self.dataset = widgets.Dropdown(options=[(v, k) for k, v in DATASETS.items()],
                                        value=dataset, description="data", style=label,
                                        layout=widgets.Layout(width="360px"))
        self.impl = widgets.ToggleButtons(options=list(IMPLEMENTATIONS), value=impl,
                                          style={"button_width": "80px"})
        self.k = widgets.IntSlider(value=k, min=1, max=K_MAX, description="K", style=label,
                                   continuous_update=False, layout=widgets.Layout(width="360px"))
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=9999, description="seed",
                                           style={"description_width": "40px"},
                                           layout=widgets.Layout(width="140px"))
        self.iteration = widgets.IntSlider(value=0, min=0, max=1, description="half-step",
                                           style=label, layout=widgets.Layout(width="460px"))
        self.position = widgets.Label()
        self.image = widgets.Image(format="jpeg")
        self.message = widgets.HTML()
        self.frame = Frame(footer=False)
        self._frames = OrderedDict()  # (run key, index) -> JPEG bytes
        self._cache_size = cache_size
        self.run = None
        for control in (self.dataset, self.k, self.seed, self.impl):
            control.observe(self._on_run, names="value")
        self.iteration.observe(self._on_iteration, names="value")
        self.box = widgets.VBox([
            widgets.HBox([self.dataset, self.impl]),
            widgets.HBox([self.k, self.seed]),
            widgets.HBox([self.iteration, self.position]),
            self.image,
            self.message,
        ])
        self._on_run()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.box)

    def _on_run(self, change=None):
        run = get_run(self.dataset.value, self.k.value, self.seed.value, self.impl.value)
        fixed = self.dataset.value in CASES
        self.k.disabled = self.seed.disabled = fixed
        self.run = run
        self.frame.set_run(run)
        self.message.value = _message_html(run)
        last = len(run.states) - 1
        # Keep the position when only the implementation changes, so both can be compared.
        keep = change is not None and change["owner"] is self.impl
        index = min(self.iteration.value, last) if keep else 0
        with self.iteration.hold_trait_notifications():
            self.iteration.max = max(last, 1)
            self.iteration.value = index
        self.iteration.disabled = last == 0
        self.redraw()

    def _on_iteration(self, change):
        self.redraw()

    def redraw(self):
        """Show the current half-step: a cached picture, or update the artists and render."""
        run = self.run
        index = min(self.iteration.value, len(run.states) - 1)
        cache_key = (run.dataset, run.k, run.seed, run.impl, index)
        picture = self._frames.get(cache_key)
        if picture is None:
            if self.frame.run is not run:
                self.frame.set_run(run)
            picture = self.frame.update(index).image()
            self._frames[cache_key] = picture
            if len(self._frames) > self._cache_size:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(cache_key)
        self.image.value = picture
        self.position.value = f"{run.label(index)} ({index} of {len(run.states) - 1})"


def _message_html(run):
    from html import escape

    if run.failed:
        return (f'<span style="color:crimson"><b>naive EM breaks.</b> '
                f"{escape(run.message)}. The slider stops at the last finite state.</span>")
    return f"<b>{run.impl} EM</b>: {escape(run.message)}."
