"""Two Python threads running inference at once: the GIL is released and results stay right."""

import threading

import numpy as np

import ppml


def run_in_threads(*jobs):
    """Runs each job in its own thread, all started together; returns their results."""
    results = [None] * len(jobs)
    errors = []
    barrier = threading.Barrier(len(jobs))

    def target(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=target, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_two_backends_in_two_threads(lenet, test_set):
    x1, x2 = test_set.images[:100], test_set.images[100:200]
    plain1, plain2 = lenet.predict(x1), lenet.predict(x2)
    a, b = ppml.backend("mpc3"), ppml.backend("mpc2")
    a.setup(lenet)
    b.setup(lenet)
    (l1, s1), (l2, s2) = run_in_threads(lambda: a.infer(x1), lambda: b.infer(x2))
    assert np.mean(l1.argmax(1) == plain1.argmax(1)) >= 0.99
    assert np.mean(l2.argmax(1) == plain2.argmax(1)) >= 0.99
    np.testing.assert_allclose(l1, plain1, atol=2e-2 * np.abs(plain1).max())
    np.testing.assert_allclose(l2, plain2, atol=2e-2 * np.abs(plain2).max())
    assert s1.rounds > 0 and s2.rounds > 0


def test_one_backend_shared_by_two_threads(lenet, test_set):
    shared = ppml.backend("plain")
    shared.setup(lenet)
    batches = [test_set.images[i * 100:(i + 1) * 100] for i in range(6)]
    expected = [lenet.predict(x) for x in batches]

    def job(indices):
        return [shared.infer(batches[i])[0] for i in indices]

    first, second = run_in_threads(lambda: job([0, 2, 4]), lambda: job([1, 3, 5]))
    for got, i in zip(first + second, [0, 2, 4, 1, 3, 5]):
        np.testing.assert_array_equal(got, expected[i])


def test_gil_is_released_during_inference(lenet, test_set):
    b = ppml.backend("mpc3")
    b.setup(lenet)
    x = test_set.images[:100]  # about half a second under mpc3
    ticks = [0]
    running = threading.Event()
    done = threading.Event()

    def count():
        running.set()
        while not done.is_set():
            ticks[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    running.wait()
    before = ticks[0]
    logits, _ = b.infer(x)
    during = ticks[0] - before
    done.set()
    counter.join()
    assert logits.shape == (100, 10)
    # Holding the GIL for the whole call would leave the counter at (nearly) zero ticks: Python
    # threads only switch while this thread runs bytecode, which it does not inside infer.
    assert during > 10_000, during
