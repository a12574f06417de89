"""Makes docs/images/tensorboard_alignment.png from a real run.

    python docs/screenshot.py [--out docs/images/tensorboard_alignment.png]

Trains the small CNN on the embedded digits for a few epochs with
`AlignmentCallback` and `keras.callbacks.TensorBoard` sharing one log
directory, serves it with `tensorboard` on a free loopback port and takes a
screenshot in headless Chromium (Debian's `chromium` package).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_edda  # noqa: E402


def train(log_dir, epochs):
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = keras_edda.datasets.load_digits()
    model = keras_edda.models.small_cnn(x_train.shape[1:], 10)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    callbacks = [
        keras_edda.callbacks.AlignmentCallback(
            (x_test, y_test), explainers=("grad_cam", "saliency"),
            metrics=keras_edda.metrics.DEFAULT_METRICS, log_dir=log_dir, max_samples=64),
        keras.callbacks.TensorBoard(log_dir),
    ]
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=2,
              validation_data=(x_test, y_test), callbacks=callbacks)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/images/tensorboard_alignment.png")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--url-suffix", default="?forceSVG=true#timeseries&tagFilter=alignment")
    parser.add_argument("--log-dir", help="reuse the logs of an earlier run")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs Chromium: apt-get install chromium")
    log_dir = args.log_dir or tempfile.mkdtemp(prefix="keras_edda_tb_")
    if not args.log_dir:
        train(log_dir, args.epochs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", log_dir,
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(60):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2)
                break
            except OSError:
                time.sleep(1)
        # WebGL through SwiftShader, so the line charts are drawn headless.
        subprocess.run([browser, "--headless", "--no-sandbox", "--use-angle=swiftshader",
                        "--enable-unsafe-swiftshader", "--hide-scrollbars",
                        "--window-size=1500,1700",
                        "--virtual-time-budget=20000", f"--screenshot={os.path.abspath(args.out)}",
                        f"http://127.0.0.1:{port}/{args.url_suffix}"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"Wrote {args.out} (logs in {log_dir})")


if __name__ == "__main__":
    main()
