"""The docs name every public object, and the README opens with the two
commands."""

import os

import pytest

from keras_edda import callbacks, data, explainers, inpainting, methods, metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


@pytest.mark.parametrize("module, names", [
    (explainers, explainers.__all__), (metrics, metrics.__all__),
    (data, ["edda_map_fn", "method_map_fn"]), (callbacks, ["AlignmentCallback"]),
    (methods, methods.__all__), (inpainting, inpainting.__all__),
])
def test_api_reference_lists_every_public_name(module, names):
    api = read("docs/api.md")
    for name in names:
        assert f"`{name}" in api, f"{module.__name__}.{name} missing from docs/api.md"


def test_readme_opens_with_the_two_commands():
    lines = read("README.md").splitlines()
    block = lines[lines.index("```bash") + 1:lines.index("```bash") + 3]
    assert block[0].startswith("make demo") and block[1].startswith("make test")


def test_docs_link_to_existing_files():
    for doc in ("README.md", "docs/getting_started.md", "docs/metrics.md", "docs/edda.md", "docs/methods.md"):
        text = read(doc)
        base = os.path.dirname(os.path.join(ROOT, doc))
        for part in text.split("](")[1:]:
            target = part.split(")")[0].split("#")[0]
            if target and not target.startswith("http"):
                assert os.path.exists(os.path.join(base, target)), (doc, target)
