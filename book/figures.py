"""Plot helpers shared by the chapters (matplotlib only; gmm_core stays free of it)."""

import numpy as np
from matplotlib.patches import Ellipse

import gmm_core

#: One colour per component, used in every chapter.
COLORS = np.array([
    [0.122, 0.467, 0.706], [1.000, 0.498, 0.055], [0.173, 0.627, 0.173], [0.839, 0.153, 0.157],
    [0.580, 0.404, 0.741], [0.549, 0.337, 0.294], [0.890, 0.467, 0.761], [0.498, 0.498, 0.498],
    [0.737, 0.741, 0.133], [0.090, 0.745, 0.812],
])


def component_color(k):
    """The colour of component `k`."""
    return COLORS[k % len(COLORS)]


def resp_colors(resp):
    """Mix the component colours by responsibility: an (N, 3) array of RGB colours."""
    resp = np.asarray(resp)
    palette = COLORS[np.arange(resp.shape[1]) % len(COLORS)]
    return np.clip(resp @ palette, 0, 1)


def add_ellipse(ax, mean, cov, n_sigma=(1, 2), color="k", **kwargs):
    """Draw the n-sigma ellipses of a 2-D Gaussian (the contour at Mahalanobis distance n)."""
    vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=float))
    vals = np.clip(vals, 0, None)
    angle = np.degrees(np.arctan2(vecs[1, 1], vecs[0, 1]))
    for n in np.atleast_1d(n_sigma):
        ax.add_patch(Ellipse(mean, 2 * n * np.sqrt(vals[1]), 2 * n * np.sqrt(vals[0]),
                             angle=angle, fill=False, color=color,
                             lw=kwargs.get("lw", 2 if n == 1 else 1),
                             ls="-" if n == 1 else "--", alpha=kwargs.get("alpha", 1.0)))


def plot_mixture(ax, X, weights, means, covariances, resp=None, *, title=None, dims=(0, 1),
                 point_size=6, show_weights=True):
    """Points, coloured by responsibility when given, and each component's 1-, 2-sigma ellipses."""
    i, j = dims
    X = np.asarray(X)
    colors = resp_colors(resp) if resp is not None else "0.5"
    ax.scatter(X[:, i], X[:, j], c=colors, s=point_size, alpha=0.7, lw=0)
    for k, (w, m, c) in enumerate(zip(weights, means, covariances)):
        sub = np.asarray(c)[np.ix_([i, j], [i, j])]
        add_ellipse(ax, np.asarray(m)[[i, j]], sub, color=component_color(k))
        ax.plot(*np.asarray(m)[[i, j]], "x", color=component_color(k), ms=8, mew=2)
        if show_weights:
            ax.annotate(f"{w:.2f}", np.asarray(m)[[i, j]], xytext=(6, 6),
                        textcoords="offset points", color=component_color(k), fontsize=9,
                        weight="bold")
    if title:
        ax.set_title(title)
    return ax


def plot_history(ax, history, *, current=None, label=None, per_point=None):
    """The log-likelihood after each E-step; `current` marks one iteration."""
    history = np.asarray(history, dtype=float)
    if per_point:
        history = history / per_point
    ax.plot(np.arange(len(history)), history, "o-", ms=3, label=label)
    if current is not None and 0 <= current < len(history):
        ax.plot([current], [history[current]], "o", ms=10, mfc="none", mec="crimson", mew=2)
    ax.set_xlabel("iteration")
    ax.set_ylabel("log-likelihood per point" if per_point else "log-likelihood")
    return ax


def mixture_density_1d(x, weights, means, variances):
    """p(x) and the weighted components P(k) N(x | mu_k, sigma_k^2) on a 1-D grid of shape (M,)."""
    x = np.asarray(x, dtype=float)[:, None]
    comps = np.stack([w * gmm_core.gaussian_pdf(x, [m], [[v]])
                      for w, m, v in zip(weights, means, variances)], axis=1)
    return comps.sum(axis=1), comps


def show_source(*objects):
    """Show the source of gmm_core functions or classes as a highlighted code block.

    Chapters show the module's code this way instead of typing it again.
    """
    import inspect

    from IPython.display import Markdown

    code = "\n\n".join(inspect.getsource(obj).rstrip() for obj in objects)
    return Markdown(f"```python\n{code}\n```")


def animation_html(anim, **kwargs):
    """A matplotlib animation as a self-contained player: `anim.to_jshtml(**kwargs)` as HTML.

    The standard `to_jshtml` player (frames embedded as PNG, its own slider and buttons), minus
    the one line that loads Font Awesome from a CDN: the book's theme and JupyterLab already ship
    those icons, so the page makes no request to another host and works offline.
    """
    import re

    from IPython.display import HTML

    html = anim.to_jshtml(**kwargs)
    return HTML(re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "",
                       html))
