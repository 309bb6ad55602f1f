# %% [markdown]
# # ppml from Python: a tour
#
# A notebook-style script (cells marked `# %%`, as Jupyter, VS Code and jupytext read them):
# run it whole with `python examples/python_tour.py` after `pip install ./python`, or cell by
# cell. It takes about a minute on two cores.

# %%
import numpy as np

import ppml

for entry in ppml.zoo():
    print(f"{entry.name:10} {entry.description}")

# %% [markdown]
# ## A model and the MNIST test images
# `uint8` pixels go in as they are; the model normalises them with its own statistics.

# %%
model = ppml.load_model("lenet")
print(model.summary())
images, labels = ppml.datasets.mnist("test", limit=500)
logits = model.predict(images)
print(f"plain accuracy on {len(labels)} images: {np.mean(logits.argmax(1) == labels):.2%}")

# %% [markdown]
# ## Private inference
# The same images under three-party MPC: no party sees an image or the weights. `infer` returns
# the logits and what the call sent.

# %%
mpc3 = ppml.backend("mpc3")
setup = mpc3.setup(model)
secure_logits, stats = mpc3.infer(images[:100])
print(f"setup {setup.seconds:.3f} s; one call of 100 images: {stats.bytes_sent / 1e6:.1f} MB, "
      f"{stats.rounds} rounds")
print("max |logit difference| vs plain:", float(np.abs(secure_logits - logits[:100]).max()))

# %% [markdown]
# ## The evaluation loop of `ppml eval`
# Accuracy, agreement with plain, latency and throughput, for any backend; `progress=` takes a
# callback (or `True` for a tqdm bar when tqdm is installed).

# %%
for name, options in [("tee", {"allow_simulated": True}), ("mpc2", {}), ("mpc3", {})]:
    report = ppml.evaluate(model, ppml.backend(name, **options), images, labels, batch=100)
    print(f"{name:5} accuracy {report.accuracy:.2%}, agreement {report.agreement:.2%}, "
          f"{report.throughput_img_per_s:8.0f} img/s, {report.bytes_sent / report.n / 1e6:.3f} MB/img")

# %% [markdown]
# ## Homomorphic encryption
# CKKS runs polynomial models (x^2 activations, average pooling): here `cnn`, the CryptoNets
# network. The server computes on ciphertexts only.

# %%
cnn = ppml.load_model("cnn")
report = ppml.evaluate(cnn, ppml.backend("he", batch=500), images, labels, batch=500)
print(f"he/cnn: accuracy {report.accuracy:.2%}, agreement {report.agreement:.2%}, "
      f"setup {report.setup_seconds:.2f} s, {report.throughput_img_per_s:.0f} img/s")
print("\n".join(report.notes))

# %% [markdown]
# ## Your own model
# Any ONNX file of supported operators (docs/onnx.md), or a PyTorch module with
# `ppml.from_torch(module, example_input)` when torch is installed.

# %%
import os

onnx_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tests",
                         "data", "torch_mnist.onnx")
mine = ppml.import_onnx(onnx_file, name="torch_mnist")
print(mine, mine.import_notes)
report = ppml.evaluate(mine, "mpc3", images, labels, batch=100)
print(f"torch_mnist under mpc3: accuracy {report.accuracy:.2%}, agreement {report.agreement:.2%}")
