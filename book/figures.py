"""Plot helpers shared by the chapters (matplotlib only; gmm_core stays free of it).

Imported in a notebook, it also makes every figure's PNG record the size of its smallest text
(`smallest_text_px`, as PNG metadata "Smallest text px"): the book's layout test reads it back
and checks that, at the page's width, no figure's text is smaller than 9 px.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse
from matplotlib.text import Text

import gmm_core

#: Source listings (`show_source`) wrap comments and docstrings at this width, as code cells.
LISTING_WIDTH = 88

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


def show_source(*objects, width=LISTING_WIDTH):
    """Show the source of gmm_core functions or classes as a highlighted code block.

    Chapters show the module's code this way instead of typing it again. Comments and docstring
    lines longer than `width` are wrapped (see `wrap_listing`), so the listing fits the page as
    the code cells do; the code itself is shown as it is.
    """
    import inspect

    from IPython.display import Markdown

    code = "\n\n".join(wrap_listing(inspect.getsource(obj).rstrip(), width)
                       for obj in objects)
    return Markdown(f"```python\n{code}\n```")


def wrap_listing(source, width=LISTING_WIDTH):
    """Python source with its prose wrapped at `width` characters; the code is left alone.

    A comment line, or a docstring line, longer than `width` is reflowed at spaces with the
    lines that continue its paragraph (same indentation; not a list item, a `name : type`
    line or an underline) into lines of the same indentation (a comment keeps its `#` or `#:`);
    a rule of dashes is cut to `width`.
    A long line of code with a comment after it becomes the comment on its own line above the
    code. Nothing else changes, so the result is the same program.
    """
    import ast
    import io
    import re
    import textwrap
    import tokenize

    dedented = textwrap.dedent(source)
    try:
        tree = ast.parse(dedented)
        tokens = list(tokenize.generate_tokens(io.StringIO(dedented).readline))
    except (SyntaxError, tokenize.TokenError):
        return source
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    comments = {tok.start[0]: tok.string for tok in tokens if tok.type == tokenize.COMMENT}

    def wrap(text, prefix):
        return textwrap.wrap(text, width, initial_indent=prefix, subsequent_indent=prefix,
                             break_long_words=False, break_on_hyphens=False) or [prefix]

    lines = source.split("\n")
    structural = re.compile(r"([-*+] |\d+\. |[-=~]{3,}|\w[\w, *]* : |\.\. |>>> )")

    def indent_of(line):
        return line[:len(line) - len(line.lstrip())]

    def paragraph(row, same):
        """Rows row, row + 1, ... that continue the paragraph starting at `row` (1-based)."""
        rows = [row]
        while (rows[-1] < len(lines) and same(rows[-1] + 1)
               and not re.search(r'("""|\'\'\')\s*$', lines[rows[-1] - 1])):
            rows.append(rows[-1] + 1)
        return rows

    out, row = [], 1
    while row <= len(lines):
        line = lines[row - 1]
        if len(line) <= width:
            out.append(line)
            row += 1
            continue
        indent, stripped = indent_of(line), line.strip()
        comment = comments.get(row)
        rows = [row]
        if comment is not None and stripped == comment:  # a comment on its own line
            if re.fullmatch(r"#+:?\s*[-=~]+", stripped):
                out.append(line[:width])
            else:
                marker = re.match(r"#+:?\s?", stripped).group(0)

                def same(r, marker=marker, indent=indent):
                    text = lines[r - 1]
                    body = text.strip()[len(marker):]
                    return (r in comments and text.strip() == comments[r]
                            and indent_of(text) == indent and text.strip().startswith(marker)
                            and body.strip() and not structural.match(body)
                            and not re.fullmatch(r"[-=~]+", body.strip()))

                rows = paragraph(row, same)
                text = " ".join(lines[r - 1].strip()[len(marker):].strip() for r in rows)
                out.extend(wrap(text, indent + marker))
        elif row in docstrings:  # prose: the paragraph from here on is reflowed

            def same(r, indent=indent):
                text = lines[r - 1]
                return (r in docstrings and text.strip() and indent_of(text) == indent
                        and not structural.match(text.strip()))

            rows = paragraph(row, same)
            text = " ".join(lines[r - 1].strip() for r in rows)
            quote = re.match(r'[rRuU]?("""|\'\'\')', text)
            if quote:  # the docstring's first line: the quotes stay in front
                first = wrap(text[quote.end():], indent + " " * quote.end())
                out.append(indent + text[:quote.end()] + first[0].lstrip())
                out.extend(indent + rest.lstrip() for rest in first[1:])
            else:
                out.extend(wrap(text, indent))
        elif comment is not None and line.endswith(comment):  # code, then a comment
            out.extend(wrap(comment.lstrip("#").strip(), indent + "# "))
            out.append(line[:len(line) - len(comment)].rstrip())
        else:
            out.append(line)
        row = rows[-1] + 1
    return "\n".join(out)


def animation_html(anim, **kwargs):
    """A matplotlib animation as a self-contained player: `anim.to_jshtml(**kwargs)` as HTML.

    The standard `to_jshtml` player (frames embedded as PNG, its own slider and buttons), minus
    the one line that loads Font Awesome from a CDN: the book's theme and JupyterLab already ship
    those icons, so the page makes no request to another host and works offline.
    """
    import re

    from IPython.display import HTML

    html = anim.to_jshtml(**kwargs)
    html = re.sub(r'<link rel="stylesheet"\s+href="https?://[^"]*font-awesome[^"]*">', "", html)
    size = smallest_text_px(anim._fig)
    if size is not None:  # for the layout test, as the figures' PNG metadata
        html = html.replace('<div class="animation">',
                            f'<div class="animation" data-smallest-text-px="{size:.2f}">', 1)
    return HTML(html)


def smallest_text_px(fig):
    """The height in pixels, at the figure's own resolution, of its smallest visible text.

    Font size in points times dpi / 72 (mathtext's sub- and superscripts, smaller still, are not
    counted). None when the figure has no text.
    """
    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.get_alpha() != 0]
    return min(sizes) * fig.dpi / 72 if sizes else None


def _png_with_text_size(fig, **kwargs):
    """The inline backend's PNG of `fig`, with its smallest text size as PNG metadata."""
    from IPython.core.pylabtools import print_figure

    size = smallest_text_px(fig)
    metadata = {"Smallest text px": f"{size:.2f}"} if size is not None else {}
    return print_figure(fig, fmt="png", base64=True, metadata=metadata, **kwargs)


def _record_text_size():
    """In IPython with the inline backend: figures shown as PNG carry their smallest text size.

    The inline backend sets its PNG formatter once, when it is loaded; it is loaded here first,
    so the formatter set after it stays.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    import matplotlib

    backend = matplotlib.rcParams._get("backend")
    if backend not in ("inline", "module://matplotlib_inline.backend_inline"):
        return
    import functools

    from matplotlib_inline import backend_inline

    kwargs = dict(backend_inline.InlineBackend.instance().print_figure_kwargs)
    kwargs.setdefault("bbox_inches", "tight")
    formatter = shell.display_formatter.formatters["image/png"]
    formatter.for_type(Figure, functools.partial(_png_with_text_size, **kwargs))


_record_text_size()
