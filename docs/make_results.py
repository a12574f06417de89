"""Writes docs/results.md from the reports of `keras-edda compare` runs.

docs/results_prose.md holds the prose; each line `<!-- report: DIR -->` in it
is replaced by the report `keras-edda report DIR` writes (the same
`keras_edda.experiments.report.markdown`), so no number in docs/results.md is
typed by hand. Rerun the commands the reports name, then:

    python docs/make_results.py
"""

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_edda.experiments import report  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = re.compile(r"^<!-- report: (\S+) -->$")


def main():
    lines = []
    with open(os.path.join(HERE, "results_prose.md")) as f:
        for line in f.read().splitlines():
            match = MARKER.match(line.strip())
            if match:
                folder = os.path.join(os.path.dirname(HERE), match.group(1))
                lines.append(report.markdown(report.load(folder)).replace("\n## ", "\n### ", 1))
            else:
                lines.append(line)
    path = os.path.join(HERE, "results.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
