"""Writes docs/results.md from the reports of `keras-edda compare` runs.

docs/results_prose.md holds the prose; each line `<!-- report: DIR -->` in it
is replaced by the report `keras-edda report DIR` writes (the same
`keras_edda.experiments.report.markdown`), so no number in docs/results.md is
typed by hand. Pages that keep their prose themselves (docs/excon.md) hold
`<!-- report: DIR -->` ... `<!-- end report -->`; what lies between is
replaced in place. Rerun the commands the reports name, then:

    python docs/make_results.py                       # every report
    python docs/make_results.py --only runs/DIR ...   # only these sections (prose and report), in place
"""

import argparse
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_edda.experiments import report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = re.compile(r"^<!-- report: (\S+) -->$")
END = "<!-- end report -->"
IN_PLACE = ("excon.md",)


def report_of(folder):
    return report.markdown(report.load(os.path.join(os.path.dirname(HERE), folder))).replace("\n## ", "\n### ", 1)


def fill_in_place(name, only=None):
    """Replaces what lies between each `<!-- report: DIR -->` and `<!-- end report -->` of a page.

    `only`: the run folders to regenerate (`None`: every one); the others keep their text.
    """
    path = os.path.join(HERE, name)
    with open(path) as f:
        lines = f.read().splitlines()
    out, skipping = [], False
    for line in lines:
        if skipping:
            if line.strip() == END:
                out.append(line)
                skipping = False
            continue
        out.append(line)
        match = MARKER.match(line.strip())
        if match and (only is None or match.group(1) in only):
            out += ["", report_of(match.group(1)), ""]
            skipping = True
    if skipping:
        raise SystemExit(f"{path}: a report marker without {END}")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(path + ".tmp", path)
    print(f"wrote {path}")


def copy_prose(folder):
    """Copies the prose of `folder`'s section (its `## ` heading up to its marker) from results_prose.md into
    results.md, so that `--only` regenerates the whole section, not only its report."""
    marker = f"<!-- report: {folder} -->"
    with open(os.path.join(HERE, "results_prose.md")) as f:
        prose = f.read()
    path = os.path.join(HERE, "results.md")
    with open(path) as f:
        results = f.read()
    if marker not in prose or marker not in results:
        return
    heading = prose.rindex("\n## ", 0, prose.index(marker)) + 1
    section = prose[heading:prose.index(marker)]
    title = section.split("\n", 1)[0]
    start = results.rfind(title + "\n", 0, results.index(marker))
    if start < 0:
        raise SystemExit(f"{path}: no section {title!r} before {marker}")
    with open(path + ".tmp", "w") as f:
        f.write(results[:start] + section + results[results.index(marker):])
    os.replace(path + ".tmp", path)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Writes docs/results.md (and the pages in IN_PLACE) from runs.")
    parser.add_argument("--only", nargs="+", metavar="DIR",
                        help="regenerate only the reports of these run folders, in place (results.md keeps "
                             "each report between its markers); the other reports keep their text")
    args = parser.parse_args(argv)
    if args.only:
        for folder in args.only:
            copy_prose(folder)
        for name in ("results.md",) + IN_PLACE:
            fill_in_place(name, set(args.only))
        return
    lines = []
    with open(os.path.join(HERE, "results_prose.md")) as f:
        for line in f.read().splitlines():
            match = MARKER.match(line.strip())
            if match:
                # The markers stay, so that one report can be regenerated alone (--only).
                lines += [line, "", report_of(match.group(1)), "", END]
            else:
                lines.append(line)
    path = os.path.join(HERE, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")
    for name in IN_PLACE:
        fill_in_place(name)


if __name__ == "__main__":
    main()
