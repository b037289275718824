"""The README's links agree with the one repository URL of `_config.yml`.

A fork changes `repository.url` (and `repository.branch`) in `_config.yml`; the README's links to
the published book (GitHub Pages), to Binder and to the repository are derived from them. These
tests name every README link that still points elsewhere.
"""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

#: Any link into GitHub, GitHub Pages or Binder's GitHub launcher, up to whitespace or a bracket.
LINK = re.compile(r"https?://(?:[\w.-]+\.)?(?:github\.com|github\.io|mybinder\.org/v2/gh)[^\s)>\]\"']*")


def repository(config_text):
    """The owner, name and branch of the book's repository, from `_config.yml`'s text.

    Parameters
    ----------
    config_text : str
        The text of `_config.yml`.

    Returns
    -------
    owner, name, branch : str
    """
    repo = yaml.safe_load(config_text)["repository"]
    match = re.fullmatch(r"https://github\.com/([\w.-]+)/([\w.-]+?)(?:\.git)?/?", repo["url"])
    if match is None:
        raise ValueError(f"repository.url is not a GitHub repository: {repo['url']!r}")
    return match.group(1), match.group(2), str(repo.get("branch", "main"))


def expected_links(owner, name, branch):
    """The addresses a README link may start with, by kind.

    GitHub Pages serves a project repository at https://OWNER.github.io/NAME/ (the owner in
    lower case, as host names are), and a repository named OWNER.github.io at the root.

    Returns
    -------
    links : dict of str
        "pages", "binder" and "repository" addresses.
    """
    host = f"{owner.lower()}.github.io"
    pages = f"https://{host}/" if name.lower() == host else f"https://{host}/{name}/"
    return {
        "pages": pages,
        "binder": f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}",
        "repository": f"https://github.com/{owner}/{name}",
    }


def links(readme_text):
    """The README's links to GitHub, Pages and Binder, outside code (where templates such as
    ``https://OWNER.github.io/REPO/`` are shown)."""
    prose = re.sub(r"```.*?```", "", readme_text, flags=re.DOTALL)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return LINK.findall(prose)


def link_problems(readme_text, owner, name, branch):
    """Every README link to GitHub, Pages or Binder that disagrees with the repository.

    Parameters
    ----------
    readme_text : str
    owner, name, branch : str
        As `repository` returns them.

    Returns
    -------
    problems : list of str
        One line per bad link, or per expected link that the README's opening lacks; empty when
        the README agrees.
    """
    want = expected_links(owner, name, branch)
    problems = []
    for link in links(readme_text):
        if "mybinder.org/v2/gh/" in link:
            kind = "binder"
            ok = link == want["binder"] or link.startswith(want["binder"] + "?")
        elif ".github.io" in link:
            kind = "pages"
            ok = link.startswith(want["pages"])
        else:
            kind = "repository"
            ok = link == want["repository"] or link.startswith(want["repository"] + "/")
        if not ok:
            problems.append(f"{kind} link {link} does not start with {want[kind]}")
    # The README opens with where to read the book and how to run it: both before its first
    # section.
    opening = readme_text.split("\n## ", 1)[0]
    for kind in ("pages", "binder"):
        if want[kind] not in opening:
            problems.append(f"the README's opening has no {kind} link {want[kind]}")
    return problems


@pytest.fixture(scope="module")
def repo():
    return repository((ROOT / "_config.yml").read_text())


def test_readme_links_follow_config(repo):
    problems = link_problems((ROOT / "README.md").read_text(), *repo)
    assert not problems, "\n".join(problems)


def test_readme_has_the_links(repo):
    """The check above is not vacuous: the README does hold a Pages and a Binder link."""
    found = links((ROOT / "README.md").read_text())
    want = expected_links(*repo)
    assert any(link.startswith(want["pages"]) for link in found), found
    assert any(link.startswith(want["binder"]) for link in found), found


def test_a_fork_that_forgot_the_readme_is_caught(repo):
    """_config.yml moved to a fork, the README not: every old link is named."""
    owner, name, branch = repo
    readme = (ROOT / "README.md").read_text()
    problems = link_problems(readme, "someone-else", name, branch)
    assert any(p.startswith("pages link") for p in problems), problems
    assert any(p.startswith("binder link") for p in problems), problems
    assert any("opening has no pages link" in p for p in problems), problems


def test_a_wrong_branch_is_caught(repo):
    owner, name, _ = repo
    problems = link_problems((ROOT / "README.md").read_text(), owner, name, "gh-pages-branch")
    assert any(p.startswith("binder link") for p in problems), problems


@pytest.mark.parametrize(("url", "pages"), [
    ("https://github.com/Painless-GMM/painless-gmm", "https://painless-gmm.github.io/painless-gmm/"),
    ("https://github.com/alice/alice.github.io", "https://alice.github.io/"),
    ("https://github.com/alice/book.git", "https://alice.github.io/book/"),
])
def test_pages_address(url, pages):
    owner, name, branch = repository(f"repository:\n  url: {url}\n  branch: main\n")
    assert expected_links(owner, name, branch)["pages"] == pages


def test_a_url_that_is_not_github_is_refused():
    with pytest.raises(ValueError, match="not a GitHub repository"):
        repository("repository:\n  url: https://gitlab.com/alice/book\n")
