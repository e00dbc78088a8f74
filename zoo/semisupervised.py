"""Semi-supervised learning with N labels (Kingma et al. 2014, "Semi-supervised learning with deep
generative models"; Bruna's lecture 16): which training examples keep their label, M1 (a classifier
on a trained model's latent means, sec. 3.1) and a model's own classifier (M2's q(y|x)) scored on the
test images, and the paper's Table 1 (MNIST) as data.

TensorFlow-free (the dashboard imports this module); scikit-learn is imported where M1 trains.
"""
from __future__ import annotations

import numpy as np


def labelled_subset(labels, n: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of `n` training examples whose label is kept, balanced over the classes as in
    Kingma et al. 2014 sec. 4.1 (n / classes per class; a class with fewer examples gives all it has
    and the others share the rest), drawn with `seed`: the same `n` and `seed` give the same examples
    for every model (M1 and M2 see the same labels). `labels` int `[N]`. Raises ValueError for n
    outside [1, N]."""
    labels = np.asarray(labels)
    if not 1 <= int(n) <= len(labels):
        raise ValueError(f"labelled examples: give n in [1, {len(labels)}] (the training split's size), "
                         f"got {n}")
    classes, counts = np.unique(labels, return_counts=True)
    share = np.zeros(len(classes), int)
    while share.sum() < int(n):  # one more per class with room, in turn (n <= N: this ends)
        room = np.flatnonzero(share < counts)
        share[room[: int(n) - share.sum()]] += 1
    rng = np.random.default_rng(seed)
    picked = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, share)]
    return np.sort(np.concatenate(picked))


# --- Kingma et al. 2014, Table 1: MNIST test error (%) with N labels (Bruna's lecture 16) ----------
# method -> {N: (test error %, ± over runs)}; MNIST, 50,000 training images, the rest unlabelled.
PAPER_DATASET = "MNIST"
PAPER_TABLE1 = {
    "M1+TSVM": {100: (11.82, 0.25), 600: (5.72, 0.049), 1000: (4.24, 0.07), 3000: (3.49, 0.04)},
    "M2": {100: (11.97, 1.71), 600: (4.94, 0.13), 1000: (3.60, 0.56), 3000: (3.92, 0.63)},
    "M1+M2": {100: (3.33, 0.14), 600: (2.59, 0.05), 1000: (2.40, 0.02), 3000: (2.18, 0.04)},
}


def paper_rows() -> list[tuple[str, int, float, float]]:
    """PAPER_TABLE1 as (method, N, test error %, ±) rows."""
    return [(m, n, e, pm) for m, by_n in PAPER_TABLE1.items() for n, (e, pm) in by_n.items()]


# --- M1: a classifier on the latent means (Kingma et al. 2014 sec. 3.1) -----------------------------
M1_METRIC = "m1_error_n{n}"  # test error of M1 with n labels: fraction of test images misclassified
SSL_METRIC = "ssl_error"  # test error of the model's own classifier q(y|x) (M2), a fraction
METRIC_KIND = "classifier"


def latent_features(model, x, batch_size: int = 500) -> np.ndarray:
    """M1's features of uint8 images `[N, H, W, C]`: `model.encode(x)` in batches -- a tuple's first
    element (a VAE's q(z|x) mean mu of (mu, sigma); a mixture's responsibilities), flattened: float64
    `[N, D]`."""
    out = []
    for i in range(0, len(x), batch_size):
        z = model.encode(x[i:i + batch_size])
        z = z[0] if isinstance(z, (tuple, list)) else z
        out.append(np.asarray(z, np.float64).reshape(len(x[i:i + batch_size]), -1))  # [b, D]
    return np.concatenate(out) if out else np.zeros((0, 0))


def m1_classifier(features, labels):
    """The classifier M1 trains on the labelled examples' features: standardised features, then an
    RBF-kernel SVM (scikit-learn's SVC, C = 1, gamma "scale"): the inductive half of the paper's M1 +
    TSVM (a transductive SVM, which also uses the unlabelled examples' features). One class only: a
    constant prediction. Returns a fitted scikit-learn estimator."""
    from sklearn.dummy import DummyClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    one_class = len(np.unique(labels)) < 2
    clf = DummyClassifier(strategy="most_frequent") if one_class else make_pipeline(StandardScaler(), SVC())
    return clf.fit(features, labels)


def m1_error(train_features, train_labels, test_features, test_labels, n: int, seed: int = 0) -> float:
    """Test error of M1 with `n` labels, a fraction in [0, 1]: `m1_classifier` fitted on the
    `labelled_subset(train_labels, n, seed)` rows of `train_features` `[N, D]`, scored on
    `test_features` `[M, D]` against `test_labels` `[M]`. Raises ValueError for n outside [1, N]."""
    keep = labelled_subset(train_labels, n, seed)
    clf = m1_classifier(np.asarray(train_features)[keep], np.asarray(train_labels)[keep])
    return float(np.mean(clf.predict(test_features) != np.asarray(test_labels)))


def classifier_error(model, x, labels, batch_size: int = 500) -> float:
    """Test error of a model's own classifier (`can_classify`: M2's q(y|x)), a fraction in [0, 1]: the
    argmax of `model.classify(x)` `[B, K]` against `labels` `[N]`."""
    pred = [np.argmax(np.asarray(model.classify(x[i:i + batch_size])), axis=-1)
            for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(pred) != np.asarray(labels)))


def ssl_rows(model, dataset, ns, seed: int = 0, split: str = "test", batch_size: int = 500) -> list:
    """The semi-supervised metrics of a trained model on `dataset`'s `split`, as (name, value, kind)
    rows: `m1_error_n{N}` for each N of `ns` when the model has an encoder (labels of
    `labelled_subset(train labels, N, seed)`; seed 0: the examples whose labels the m2 family trains
    with, zoo.training), and `ssl_error` when it can classify; every value a fraction of `split` images
    misclassified, kind "classifier". No rows without labels."""
    if "train" not in dataset.labels or split not in dataset.labels:
        return []
    x, y = dataset.split(split), dataset.labels[split]
    rows = []
    if ns and model.has_encoder:  # M1 applies (VAE, IWAE, flow, M2, mixture)
        train = latent_features(model, dataset.train, batch_size)  # [N, D]
        test = latent_features(model, x, batch_size)  # [M, D]
        rows += [(M1_METRIC.format(n=int(n)), m1_error(train, dataset.labels["train"], test, y, int(n), seed),
                  METRIC_KIND) for n in ns]
    if model.can_classify:
        rows.append((SSL_METRIC, classifier_error(model, x, y, batch_size), METRIC_KIND))
    return rows
