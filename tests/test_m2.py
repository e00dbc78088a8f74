"""M2 (Kingma et al. 2014, `zoo.models.m2`): its bounds against a brute-force computation, importance
sampling against the exact log p(x) of a model where it is known, the eq. 9 training loss, hidden
labels (-1) never taken for a class, `fit` feeding only the N kept labels, the checks naming a bad
num_classes / labelled / unlabelled dataset, binarized MNIST's optional labels file, and labels
teaching the classifier (digits, N = 100)."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_softmax, logsumexp, softplus
from support import subset

import zoo
from experiments.config import TrainConfig
from zoo import data
from zoo.semisupervised import labelled_subset
from zoo.training import fit, semi_supervised_batches

TINY = dict(num_classes=4, latent_dim=2, width=16, depth=1, jit_compile=False, seed=0)


def z_free(model):
    """`model` with the decoder's kernel rows for z zeroed: p(x | y, z) = p(x | y) for every z, so the
    distortion needs no draw and log p(x) = logsumexp_y log p(y) p(x | y) is exact."""
    kernel = model.decoder.get_layer("dense_0").kernel
    kernel.assign(np.concatenate([np.zeros((model.hp.latent_dim, kernel.shape[1]), np.float32),
                                  kernel.numpy()[model.hp.latent_dim:]]))
    return model


def brute_force(model, x):
    """log p(x | y), KL(q(z|x,y) || p(z)) `[B, K]` and log q(y|x) `[B, K]` of a z-free Bernoulli model
    in numpy, from the raw network outputs (the probability maths written out again)."""
    k, d = model.num_classes, model.hp.latent_dim
    xf = x.reshape(len(x), -1).astype(np.float32) * 2.0 - 1.0  # 2 levels -> [-1, 1]
    log_q = log_softmax(model.classifier(x.astype(np.float32) * 2.0 - 1.0).numpy(), axis=-1)
    log_px, kl = np.zeros((len(x), k)), np.zeros((len(x), k))
    for y in range(k):
        onehot = np.tile(np.eye(k, dtype=np.float32)[y], (len(x), 1))
        logits = model.decoder(np.concatenate([np.zeros((len(x), d), np.float32), onehot], 1)).numpy()
        logits = logits.reshape(len(x), -1)  # one Bernoulli logit per pixel
        log_px[:, y] = (x.reshape(len(x), -1) * logits - np.logaddexp(0, logits)).sum(-1)
        mu, s = np.split(model.encoder(np.concatenate([xf, onehot], 1)).numpy(), 2, axis=-1)
        sigma = softplus(s) + 1e-4
        kl[:, y] = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * np.log(sigma)).sum(-1)
    return log_px, kl, log_q


@pytest.fixture(scope="module")
def tiny(bars):
    """A z-free tiny model with random weights N(0, 0.5^2): q(y|x) far from uniform, no symmetry."""
    model = zoo.build_model("m2", bars, **TINY)
    rng = np.random.default_rng(0)
    for w in model.weights:
        if w.trainable:
            w.assign(rng.normal(0.0, 0.5, w.shape).astype(np.float32))
    return z_free(model)


def test_bounds_match_a_brute_force_computation(tiny, bars):
    """L(x, y) (eq. 6) and U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)) (eq. 7), term by term; encode(x) is
    q(z | x, argmax q(y|x))."""
    x = bars.test[:32]
    log_px, kl, log_q = brute_force(tiny, x)
    q, log_py = np.exp(log_q), -math.log(4)
    big_l = log_px - kl + log_py  # L(x, y) <= log p(x, y), [B, K]
    u = (q * big_l).sum(-1) - (q * log_q).sum(-1)
    terms = {k: v.numpy() for k, v in tiny.nll_terms(x, seed=1).items()}
    np.testing.assert_allclose(terms["distortion"], -(q * log_px).sum(-1), rtol=1e-4)
    np.testing.assert_allclose(terms["rate"], (q * kl).sum(-1), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(terms["label_rate"], (q * (log_q - log_py)).sum(-1), atol=1e-4)
    np.testing.assert_allclose(tiny.log_prob(x, seed=1).numpy(), u, rtol=1e-5)
    for y in range(4):  # the bound on log p(x | y) = L(x, y) - log p(y); no label rate
        labelled = tiny.nll_terms(x, seed=1, labels=y)
        got = tiny.log_prob(x, seed=1, labels=y).numpy()
        np.testing.assert_allclose(got, big_l[:, y] - log_py, rtol=1e-5)
        assert np.all(labelled["label_rate"].numpy() == 0)
    np.testing.assert_allclose(tiny.classify(x).numpy(), q, rtol=1e-5, atol=1e-6)
    mu, sigma = (a.numpy() for a in tiny.encode(x))
    best = np.argmax(q, -1)
    out = tiny.encoder(np.concatenate([x.reshape(32, -1) * 2.0 - 1.0, np.eye(4)[best]], 1).astype(np.float32))
    np.testing.assert_allclose(mu, out.numpy()[:, :2], rtol=1e-5, atol=1e-6)
    assert sigma.shape == (32, 2) and np.all(sigma > 0)


def test_importance_sampling_reaches_the_exact_log_px_above_u(tiny, bars):
    """Where log p(x) = logsumexp_y log p(y) p(x|y) is exact (z-free decoder): U(x) <= log p(x) for
    every image; IS with k = 1 is below it on average (Jensen), with k = 4000 within 0.05 nats. The IS
    check takes q(z|x,y) = N((0.5, -0.5), 1.5^2 I), wider than p(z) = p(z|x,y), so the weights p/q are
    bounded (a trained q narrower than sqrt(1/2) gives them infinite variance)."""
    x = bars.test[:64]
    log_px, _, _ = brute_force(tiny, x)
    exact = logsumexp(log_px - math.log(4), axis=-1)
    assert np.all(tiny.log_prob(x).numpy() <= exact + 1e-4)
    model = z_free(zoo.build_model("m2", bars, **TINY))
    out = model.encoder.get_layer("out")
    out.kernel.assign(np.zeros(out.kernel.shape, np.float32))
    out.bias.assign(np.array([0.5, -0.5] + [np.log(np.expm1(1.5 - 1e-4))] * 2, np.float32))
    log_px, _, _ = brute_force(model, x)
    exact = logsumexp(log_px - math.log(4), axis=-1)
    is1 = model.log_prob_is(x, 1, seed=0).numpy()
    assert np.mean(is1) < np.mean(exact) - 0.05
    np.testing.assert_allclose(model.log_prob_is(x, 4000, seed=0).numpy(), exact, atol=0.05)


def test_training_loss_is_eq9_and_hidden_labels_are_no_class(tiny, bars):
    """The loss of a batch mixing labels and -1 is the mean of -L(x, y) + alpha (-log q(y|x)) over the
    labelled and -U(x) over the hidden ones (brute force); hidden labels as -1 give the loss of the
    images alone; public calls refuse -1 as a label."""
    x = bars.test[:16]
    y = np.where(np.arange(16) % 3 == 0, bars.labels["test"][:16], -1).astype(np.int32)
    log_px, kl, log_q = brute_force(tiny, x)
    q = np.exp(log_q)
    neg_u = -((q * (log_px - kl - math.log(4))).sum(-1) - (q * log_q).sum(-1))
    rows = np.arange(16)
    labelled = -(log_px - kl)[rows, y] + tiny.hp.alpha * -log_q[rows, y]
    want = np.where(y >= 0, labelled, neg_u).mean()
    loss, terms = tiny._training_loss(tf.constant(x), tf.constant(y))
    assert float(loss) == pytest.approx(want, rel=1e-5)
    np.testing.assert_allclose(sum(terms.values()).numpy(), np.where(y >= 0, -(log_px - kl)[rows, y], neg_u),
                               rtol=1e-5)
    hidden = tiny._training_loss(tf.constant(x), tf.fill([16], -1))[0]
    assert float(hidden) == pytest.approx(float(tiny._training_loss(tf.constant(x), None)[0]), rel=1e-6)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        tiny.log_prob(x, labels=-1)


def test_fit_feeds_only_the_n_kept_labels(digits):
    """One epoch of `fit`'s batches: each is 64 examples of the whole split (labels -1 but for the N of
    `labelled_subset`) then 8 labelled ones; every visible label is the image's true one."""
    model = zoo.build_model("m2", digits, labelled=100, labelled_batch=8, jit_compile=False)
    ds, _ = semi_supervised_batches(model, digits, 64, 16, 0, tf.Variable(0, dtype=tf.int64), False)
    kept = labelled_subset(digits.labels["train"], 100)
    truth = {x.tobytes(): y for x, y in zip(digits.train, digits.labels["train"])}
    kept_images = {digits.train[i].tobytes() for i in kept}
    seen, extra = [], []
    for images, labels in ds.as_numpy_iterator():
        main = len(images) - 8
        seen += [(im.tobytes(), y) for im, y in zip(images[:main], labels[:main])]
        extra += [(im.tobytes(), y) for im, y in zip(images[main:], labels[main:])]
    assert len(seen) == 1000 and sum(y >= 0 for _, y in seen) == 100  # each image once, N labels shown
    assert sorted(y for _, y in seen if y >= 0) == sorted(digits.labels["train"][kept])
    assert all(truth[im] == y for im, y in seen + extra if y >= 0)
    assert len(extra) == 16 * 8 and all(y >= 0 and im in kept_images for im, y in extra)


def fake_binarized_mnist(folder, monkeypatch):
    """Three blank images a split in `folder`/binarized_mnist.npz, found through ZOO_DATA_DIR."""
    blank = {f"x_{s}": np.zeros((3, 28, 28), np.uint8) for s in data.SPLITS}
    np.savez(folder / "binarized_mnist.npz", **blank)
    monkeypatch.setenv("ZOO_DATA_DIR", str(folder))


def test_fit_names_a_wrong_num_classes_labelled_or_missing_labels(digits, tmp_path, monkeypatch):
    train = TrainConfig(epochs=1, batch_size=64, verbose=0)
    with pytest.raises(ValueError, match="num_classes = 4.*10 classes.*num_classes: 10"):
        fit(zoo.build_model("m2", digits, num_classes=4), digits, train, tmp_path / "a")
    with pytest.raises(ValueError, match=r"labelled = 1001 .*1000 training.*\[0, 1000\]"):
        fit(zoo.build_model("m2", digits, labelled=1001), digits, train, tmp_path / "b")
    fake_binarized_mnist(tmp_path, monkeypatch)
    bmnist = data.load("binarized_mnist")
    with pytest.raises(ValueError, match="binarized_mnist.*has none.*binarized_mnist_labels.npz"):
        fit(zoo.build_model("m2", bmnist), bmnist, train, tmp_path / "c")


def test_binarized_mnist_reads_its_optional_labels_file(tmp_path, monkeypatch):
    fake_binarized_mnist(tmp_path, monkeypatch)
    assert data.load("binarized_mnist").labels == {}
    np.savez(tmp_path / "binarized_mnist_labels.npz", y_train=[1, 2, 3], y_valid=[4, 5, 6], y_test=[7, 8, 9])
    labels = data.load("binarized_mnist").labels
    assert labels["valid"].tolist() == [4, 5, 6] and labels["test"].dtype == np.int64
    np.savez(tmp_path / "binarized_mnist_labels.npz", y_train=[1, 2], y_valid=[4, 5, 6], y_test=[7, 8, 9])
    with pytest.raises(data.DataError, match="2 labels y_train for 3 train images"):
        data.load("binarized_mnist")


def test_labels_teach_the_classifier_and_choose_the_samples(bars, tmp_path):
    """Bars (label = the lit column) with N = 40 of 4000 labels, 4 epochs: q(y|x) classifies the test
    images (error 0.008 - 0.01 measured over 2 seeds; chance 0.75) and sample(labels=c) draws bars in
    column c (0.96 - 0.98 of them; after 3 epochs on 1000 images only 0.38: z, not y, then carries
    the column). U(x) <= log p(x): its mean is below the IS estimate with k = 1000."""
    small = subset(bars, 4000, 100, 400)
    keras.utils.set_random_seed(0)
    model = zoo.build_model("m2", small, labelled=40, num_classes=4, latent_dim=2, width=32, depth=1,
                            learning_rate=3e-3, jit_compile=False, seed=0)
    fit(model, small, TrainConfig(epochs=4, batch_size=64, verbose=0), tmp_path, seed=0)
    error = np.mean(np.argmax(model.classify(small.test).numpy(), -1) != small.labels["test"])
    assert error < 0.05
    s = model.sample(400, seed=1, labels=np.repeat(np.arange(4), 100)).numpy()
    column = s[..., 0].sum(axis=1).argmax(-1)  # the most lit column of each sample
    assert np.mean(column == np.repeat(np.arange(4), 100)) > 0.9
    u = model.log_prob(small.test, seed=2, draws=8).numpy()
    assert np.mean(u) < np.mean(model.log_prob_is(small.test, 1000, seed=2).numpy())


def test_100_digit_labels_teach_the_classifier(digits, tmp_path):
    """Digits with N = 100 of 1000 labels, a small M2 (width 64, depth 1, 8 latents), 10 epochs of fit:
    test error of q(y|x) 0.13 - 0.15 over 3 seeds (with N = 0: 0.83 - 0.95, chance 0.9; an MLP
    trained on the 100 labels alone: 0.14). Asserted: below 0.25."""
    keras.utils.set_random_seed(0)
    model = zoo.build_model("m2", digits, labelled=100, latent_dim=8, width=64, depth=1, seed=0)
    fit(model, digits, TrainConfig(epochs=10, batch_size=64, verbose=0), tmp_path, seed=0)
    error = np.mean(np.argmax(model.classify(digits.test).numpy(), -1) != digits.labels["test"])
    assert error < 0.25
