"""The peers jaxreg is measured against: the seeds' NumPy loops and PyTorch, written for the benchmark.

Each trains the same network on the same data as the jaxreg workload it stands beside
(``benchmarks/run.py``), and returns what it computed, so the run can check that both did the
work (a peer that trains nothing would look fast).

* :func:`numpy_notebook`: the notebook's 2-D loop as the notebook writes it (float64, dicts
  of layers, the forward pass recomputed in the backward one), one config.
* :func:`torch_notebook`: the same network in PyTorch eager, ``members`` configs at once
  with ``torch.baddbmm`` (one config: ``members=1``), autograd, EMA momentum in place.
* :func:`numpy_book`: the book's chapter 8 experiment 1 as the book writes it: per-example
  SGD on 1000 MNIST images, 784-40-10, the test set evaluated one image at a time.
"""

from __future__ import annotations

import numpy as np

SHAPE, BATCH, ALPHA, GAMMA, BETA = (2, 64, 128, 1), 16, 0.1, 0.0005, 0.9


def numpy_notebook(x, y, x_val, y_val, epochs: int, seed: int = 1234):
    """The notebook's ``train_dec`` loop: ``forwardn`` then ``backward_mom`` per mini-batch of 16,
    EMA momentum, lr decay, then the cost on ``(x_val, y_val)`` after every epoch (the notebook
    passes its training set there).

    Returns the costs, one per epoch, and the accuracy on ``(x_val, y_val)`` at the end.
    """
    rng = np.random.RandomState(seed)
    w = {l: rng.randn(SHAPE[l - 1], SHAPE[l]) * np.sqrt(2.0 / SHAPE[l - 1]) for l in range(1, 4)}
    b = {l: np.zeros((SHAPE[l], 1)) for l in range(1, 4)}
    relu = lambda z: np.maximum(z, 0)
    drelu_dz = lambda z: (z > 0).astype(float)
    sig = lambda z: 1 / (1 + np.exp(-z))
    dsig_dz = lambda z: sig(z) * (1 - sig(z))
    cost = lambda y_, yh: -(yh * np.log(y_ + 1e-6) + (1 - yh) * np.log(1 - y_ + 1e-6))
    dcost = lambda y_, yh: (1 - yh) / (1 - y_ + 1e-8) - yh / (y_ + 1e-8)

    def forwardn(x0):
        h = x0
        for l in range(1, len(w)):
            h = relu(np.dot(h, w[l]) + b[l].T)
        return sig(np.dot(h, w[len(w)]) + b[len(w)].T)

    def backward_mom(x0, y_, yh, dw, db, alpha):
        n_layers, batch_size = len(w), len(yh)
        z, xs, delta = {}, {0: x0}, {}
        for l in range(1, n_layers + 1):
            z[l] = np.matmul(xs[l - 1], w[l]) + b[l].T
            xs[l] = relu(z[l])
        for l in range(n_layers, 0, -1):
            if l == n_layers:
                delta[l] = (dcost(y_, yh) * dsig_dz(z[n_layers])).T
            else:
                delta[l] = np.matmul(w[l + 1], delta[l + 1]) * drelu_dz(z[l]).T
            dw[l] = BETA * dw[l] + (1 - BETA) * np.matmul(delta[l], xs[l - 1]).T / batch_size
            db[l] = BETA * db[l] + (1 - BETA) * delta[l].mean(axis=1, keepdims=True)
            w[l] -= alpha * dw[l]
            b[l] -= alpha * db[l]

    yhat, yhat_val = y.reshape(-1, 1).astype(np.float64), y_val.reshape(-1, 1).astype(np.float64)
    dw = {l: np.zeros_like(wl) for l, wl in w.items()}
    db = {l: np.zeros_like(bl) for l, bl in b.items()}
    costs, alpha = np.zeros(epochs), ALPHA
    for epoch in range(epochs):
        for i in range(0, len(x), BATCH):
            x_batch, yh = x[i:i + BATCH], yhat[i:i + BATCH]
            backward_mom(x_batch, forwardn(x_batch), yh, dw, db, alpha)
        alpha *= 1 - GAMMA
        predictions = forwardn(x_val)
        costs[epoch] = np.mean(cost(predictions, yhat_val))
    return costs, np.mean(predictions.round() == yhat_val)


def torch_notebook(x, y, x_val, y_val, epochs: int, learning_rates, l2s, *, threads: int = 1, seed: int = 0):
    """The notebook's network in PyTorch eager, one member per (learning rate, l2) pair, all at
    once: ``baddbmm`` over the member axis, autograd, ``0.5 * l2 * sum(w**2)`` in the loss,
    EMA momentum and lr decay in place, the mean validation loss of every member after every
    epoch. float32, ``threads`` intra-op threads.

    Returns the validation losses, (epochs, members).
    """
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    members = len(learning_rates)
    lr = torch.tensor(np.asarray(learning_rates, np.float32)).view(members, 1, 1)
    l2 = torch.tensor(np.asarray(l2s, np.float32))
    params = []
    for n_in, n_out in zip(SHAPE[:-1], SHAPE[1:]):
        params.append((torch.randn(members, n_in, n_out) * np.sqrt(2.0 / n_in)).requires_grad_())
        params.append(torch.zeros(members, 1, n_out, requires_grad=True))
    velocity = [torch.zeros_like(p) for p in params]
    x = torch.tensor(np.asarray(x, np.float32))
    y = torch.tensor(np.asarray(y, np.float32))
    x_val = torch.tensor(np.asarray(x_val, np.float32)).expand(members, -1, -1)
    y_val = torch.tensor(np.asarray(y_val, np.float32)).expand(members, -1)
    bce = torch.nn.functional.binary_cross_entropy_with_logits

    def logits(h):
        for i in range(0, len(params), 2):
            h = torch.baddbmm(params[i + 1], h, params[i])
            if i < len(params) - 2:
                h = torch.relu(h)
        return h[..., 0]

    losses = np.zeros((epochs, members), np.float32)
    decay = 1.0
    for epoch in range(epochs):
        for i in range(0, len(x), BATCH):
            xb, yb = x[i:i + BATCH].expand(members, -1, -1), y[i:i + BATCH].expand(members, -1)
            loss = bce(logits(xb), yb, reduction="none").mean(1)
            loss = loss + 0.5 * l2 * sum((w * w).sum((1, 2)) for w in params[0::2])
            grads = torch.autograd.grad(loss.sum(), params)
            with torch.no_grad():
                for p, v, g in zip(params, velocity, grads):
                    v.mul_(BETA).add_(g, alpha=1 - BETA)
                    p.sub_(lr * decay * v)
        decay *= 1 - GAMMA
        with torch.no_grad():
            losses[epoch] = bce(logits(x_val), y_val, reduction="none").mean(1).numpy()
    return losses


def numpy_book(images, labels, test_images, test_labels, epochs: int, *, dtype=np.float64,
               test_every: int = 10, alpha: float = 0.005, hidden: int = 40):
    """Grokking Deep Learning ch. 8, experiment 1, as the book writes it: per-example SGD on
    ``images`` (one-hot ``labels``), ReLU, the running error and correct count of every epoch,
    and the test set evaluated image by image. The book tests at ``j % 10 == 0`` and at the
    last epoch; here after every ``test_every``-th epoch, as often as jaxreg's
    ``eval_every = test_every`` does, so both pay for the same number of test passes.
    Returns ``(epoch, train error, train accuracy, test error, test accuracy)`` per test."""
    np.random.seed(1)
    relu = lambda x: (x >= 0) * x
    relu2deriv = lambda x: x >= 0
    images, labels = images.astype(dtype), labels.astype(dtype)
    test_images, test_labels = test_images.astype(dtype), test_labels.astype(dtype)
    alpha = dtype(alpha)
    weights_0_1 = (0.2 * np.random.random((images.shape[1], hidden)) - 0.1).astype(dtype)
    weights_1_2 = (0.2 * np.random.random((hidden, labels.shape[1])) - 0.1).astype(dtype)
    history = []
    for j in range(epochs):
        error, correct_cnt = (0.0, 0)
        for i in range(len(images)):
            layer_0 = images[i:i + 1]
            layer_1 = relu(np.dot(layer_0, weights_0_1))
            layer_2 = np.dot(layer_1, weights_1_2)
            error += np.sum((labels[i:i + 1] - layer_2) ** 2)
            correct_cnt += int(np.argmax(layer_2) == np.argmax(labels[i:i + 1]))
            layer_2_delta = labels[i:i + 1] - layer_2
            layer_1_delta = layer_2_delta.dot(weights_1_2.T) * relu2deriv(layer_1)
            weights_1_2 += alpha * layer_1.T.dot(layer_2_delta)
            weights_0_1 += alpha * layer_0.T.dot(layer_1_delta)
        train = (error / len(images), correct_cnt / len(images))
        if (j + 1) % test_every == 0:
            error, correct_cnt = (0.0, 0)
            for i in range(len(test_images)):
                layer_1 = relu(np.dot(test_images[i:i + 1], weights_0_1))
                layer_2 = np.dot(layer_1, weights_1_2)
                error += np.sum((test_labels[i:i + 1] - layer_2) ** 2)
                correct_cnt += int(np.argmax(layer_2) == np.argmax(test_labels[i:i + 1]))
            history.append((j, *train, error / len(test_images), correct_cnt / len(test_images)))
    return history
