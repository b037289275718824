"""The book's plot helpers that the layout depends on: source listings wrapped to the page's width
without changing the program, and the smallest-text measure the layout test reads."""

import ast
import base64
import inspect
import io
import textwrap
import tokenize

import figures
import matplotlib
import pytest
from matplotlib.figure import Figure
from PIL import Image

import gmm_core

matplotlib.use("Agg")

SHOWN = [obj for _, obj in inspect.getmembers(gmm_core)
         if (inspect.isfunction(obj) or inspect.isclass(obj))
         and getattr(obj, "__module__", "") == "gmm_core"]


def program(source):
    """The AST of `source`, docstrings reduced to their words (wrapping only moves spaces)."""
    tree = ast.parse(textwrap.dedent(source))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            body[0].value.value = " ".join(body[0].value.value.split())
    return ast.dump(tree)


@pytest.mark.parametrize("obj", SHOWN, ids=lambda obj: obj.__name__)
def test_wrapped_listing_is_the_same_program(obj):
    source = inspect.getsource(obj).rstrip()
    wrapped = figures.wrap_listing(source, width=88)
    assert program(wrapped) == program(source)
    # Every comment line and docstring line now fits (unless it is one unbreakable word).
    dedented = textwrap.dedent(wrapped)
    comments = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(dedented).readline)
                if tok.type == tokenize.COMMENT and tok.line.strip().startswith("#")}
    docstrings = set()
    for node in ast.walk(ast.parse(dedented)):
        body = getattr(node, "body", None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            docstrings.update(range(body[0].lineno, body[0].end_lineno + 1))
    lines = wrapped.split("\n")
    too_long = [lines[row - 1] for row in comments | docstrings
                if len(lines[row - 1]) > 88 and " " in lines[row - 1].strip()]
    assert not too_long


def test_wrap_listing_examples():
    source = (
        "def f(x):\n"
        '    """' + "word " * 20 + '"""\n'
        "    # " + "note " * 20 + "\n"
        "    y = x + 1  # " + "why " * 20 + "\n"
        "    return y\n")
    wrapped = figures.wrap_listing(source, width=40)
    assert all(len(line) <= 40 for line in wrapped.split("\n")), wrapped
    assert program(wrapped) == program(source)
    lines = wrapped.split("\n")
    assert lines[1].startswith('    """word') and lines[2].startswith("    word")
    code = lines.index("    y = x + 1")
    assert lines[code - 1].startswith("    # why")
    assert figures.wrap_listing("x = 1  # short", width=40) == "x = 1  # short"


def test_smallest_text_px():
    fig = Figure(figsize=(4, 3), dpi=100)
    ax = fig.subplots()
    ax.set_title("title", fontsize=12)
    ax.text(0.5, 0.5, "small", fontsize=7.2)
    ax.text(0.5, 0.2, "hidden", fontsize=2, visible=False)
    ax.tick_params(labelsize=9)
    assert figures.smallest_text_px(fig) == pytest.approx(7.2 * 100 / 72)
    assert figures.smallest_text_px(Figure()) is None


def test_png_carries_smallest_text():
    """The PNG the notebooks show records the smallest text, as the layout test reads it."""
    pytest.importorskip("IPython")
    fig = Figure(figsize=(4, 3), dpi=100)
    fig.subplots().set_title("t", fontsize=9)
    data = figures._png_with_text_size(fig, bbox_inches="tight")
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    expected = figures.smallest_text_px(fig)
    assert float(image.info["Smallest text px"]) == pytest.approx(expected, abs=0.01)
