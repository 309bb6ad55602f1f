"""Every backend against plain inference on the same images, through `ppml.evaluate` (the loop
behind `ppml eval`) and through `Backend.infer`."""

import contextlib

import numpy as np
import pytest

import ppml

# (backend, options, model, images, batch): a few hundred images each; HE on its small model
# and fewer images (its throughput mode costs the same for 1 or 8192 images per ciphertext).
CASES = [
    ("plain", {}, "lenet", 300, 100),
    ("tee", {"allow_simulated": True}, "lenet", 300, 100),
    ("mpc2", {}, "lenet", 300, 100),
    ("mpc3", {}, "lenet", 300, 100),
    ("mpc3", {"comparison": "fss"}, "mlp", 300, 100),
    ("he", {"batch": 200}, "cnn", 200, 200),
    ("hybrid", {}, "mlp", 100, 100),
]


@pytest.mark.parametrize("name,options,model_name,n,batch", CASES,
                         ids=[f"{c[0]}-{c[2]}" + ("-fss" if c[1].get("comparison") else "")
                              for c in CASES])
def test_backend_against_plain(name, options, model_name, n, batch, test_set):
    model = ppml.load_model(model_name)
    x, y = test_set.images[:n], test_set.labels[:n]
    plain_pred = model.predict(x).argmax(axis=1)

    backend = ppml.backend(name, **options)
    report = ppml.evaluate(model, backend, x, y, batch=batch)
    assert (report.model, report.backend, report.n, report.batch) == (model_name, name, n, batch)
    assert report.accuracy == pytest.approx(float(np.mean(plain_pred == y)), abs=0.01)
    if name == "plain":
        assert report.agreement is None and "agreement" not in report.to_dict()
    else:
        assert report.agreement >= 0.99
    assert report.latency_ms > 0 and report.throughput_img_per_s > 0
    secure = name != "plain"
    assert (report.bytes_sent > 0) == secure and (report.rounds > 0) == secure

    # The same backend, called directly after the evaluation's setup.
    logits, stats = backend.infer(x[:batch])
    assert logits.shape == (batch, 10) and logits.dtype == np.float32
    assert np.mean(logits.argmax(axis=1) == plain_pred[:batch]) >= 0.99
    assert (stats.bytes_sent > 0) == secure


def test_setup_report_and_float_inputs(cnn, test_set):
    from conftest import normalise

    b = ppml.backend("mpc2")
    setup = b.setup(cnn)
    assert setup.seconds >= 0 and isinstance(setup.notes, list)
    assert setup.facts.comparison == "bit-decomposition" and setup.facts.fractional_bits == 16
    assert setup.facts.mode is None and setup.facts.ring_degree is None
    x = test_set.images[:64]
    plain = cnn.predict(x)
    for images in (x, normalise(x)):
        logits, stats = b.infer(images)
        # 16 fractional bits: the logits agree with plain to about 1e-3 of their scale.
        np.testing.assert_allclose(logits, plain, atol=2e-2 * np.abs(plain).max())
        assert stats.rounds > 0


def test_evaluate_defaults_and_progress(cnn):
    calls = []
    data = ppml.datasets.mnist(limit=250)
    report = ppml.evaluate(cnn, "plain", data, batch=100, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(100, 250), (200, 250), (250, 250)]
    assert report.n == 250 and report.batch == 100
    assert set(report.to_dict()) == {
        "model", "backend", "n", "batch", "accuracy", "seconds", "latency_ms", "latency_p95_ms",
        "throughput_img_per_s", "setup_seconds", "setup_bytes", "bytes_sent", "rounds",
        "client_bytes", "offline_bytes", "offline_seconds", "on_demand_calls", "facts", "notes",
    }
    # Plain chooses nothing: every fact is absent (null in the JSON).
    assert set(report.to_dict()["facts"].values()) == {None}


def test_bench_rows():
    rows = ppml.bench(["cnn"], ["mpc3"], limit=50, latency_images=5)
    by_backend = {r["backend"]: r for r in rows}
    assert set(by_backend) == {"plain", "mpc3"}  # plain always, as the baseline
    mpc3 = by_backend["mpc3"]
    assert mpc3["model"] == "cnn" and mpc3["throughput"]["n"] == 50
    assert mpc3["latency"]["n"] == 5 and mpc3["latency"]["batch"] == 1
    assert mpc3["throughput"]["agreement"] >= 0.98 and mpc3["throughput_slowdown"] > 1
    with pytest.raises(ppml.InputError, match="unknown backend"):
        ppml.bench(["cnn"], ["quantum"])


def test_progress_true_needs_tqdm(cnn, monkeypatch):
    import builtins

    data = ppml.datasets.mnist(limit=20)
    try:
        import tqdm  # noqa: F401
    except ImportError:
        pass
    else:  # with tqdm: a bar, closed at the end
        report = ppml.evaluate(cnn, "plain", data, batch=10, progress=True)
        assert report.n == 20
    real_import = builtins.__import__

    def no_tqdm(name, *args, **kwargs):
        if name.startswith("tqdm"):
            raise ImportError("No module named 'tqdm'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    with pytest.raises(ppml.InputError, match="tqdm"):
        ppml.evaluate(cnn, "plain", data, batch=10, progress=True)


@contextlib.contextmanager
def running_server(command, model_name):
    """A `ppml he-server` or `ppml hybrid-server` process (the CLI binary cargo builds for its
    tests) serving `model_name` over TLS on 127.0.0.1, with a fresh CA: yields `(addr, ca)`."""
    import os
    import re
    import subprocess
    import tempfile

    from conftest import ROOT

    exe = os.path.join(ROOT, "target", "release", "ppml")
    if not os.path.exists(exe):
        pytest.skip("no target/release/ppml (cargo build --release -p ppml)")
    certs = tempfile.mkdtemp(prefix=f"ppml-{command}-certs-")
    subprocess.run([exe, "he-certs", "--out", certs, "--name", command], check=True,
                   capture_output=True)
    server = subprocess.Popen([exe, command, "--model", model_name, "--listen", "127.0.0.1:0",
                               "--cert", os.path.join(certs, f"{command}.pem"),
                               "--key", os.path.join(certs, f"{command}.key")],
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = server.stderr.readline()
        yield re.search(r"on (127\.0\.0\.1:\d+)$", line.strip()).group(1), \
            os.path.join(certs, "ca.pem")
    finally:
        server.kill()
        server.wait()


def test_client_of_a_running_he_server(cnn, test_set):
    """`server=`: the client of `ppml he-server`."""
    with running_server("he-server", "cnn") as (addr, ca):
        with pytest.raises(ppml.InputError, match="ca="):
            ppml.backend("he", server=addr)
        b = ppml.backend("he", server=addr, ca=ca, timeout=120)
        with pytest.raises(ppml.BackendError, match="before setup"):
            b.infer(test_set.images[:1])
        setup = b.setup(cnn)
        assert setup.bytes_sent > 0 and addr in setup.notes[0]
        assert setup.facts.mode == "auto" and setup.facts.ring_degree >= 4096
        x = test_set.images[:20]
        logits, stats = b.infer(x)
        assert np.mean(logits.argmax(1) == cnn.predict(x).argmax(1)) >= 0.95
        assert stats.bytes_sent > 0
    with pytest.raises(ppml.InputError, match="he-server"):
        ppml.backend("mpc3", server=addr)


def test_client_of_a_running_hybrid_server(test_set):
    """`server=` for hybrid: the client of `ppml hybrid-server` over TLS, its only peer."""
    mlp = ppml.load_model("mlp")
    with running_server("hybrid-server", "mlp") as (addr, ca):
        with pytest.raises(ppml.InputError, match="ca="):
            ppml.backend("hybrid", server=addr)
        b = ppml.backend("hybrid", server=addr, ca=ca)
        b.setup(mlp)
        x = test_set.images[:10]
        logits, stats = b.infer(x)
        assert (logits.argmax(1) == mlp.predict(x).argmax(1)).all()
        assert stats.bytes_sent > 0
