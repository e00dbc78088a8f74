"""Sample quality: how close a model's samples are to the data, next to its likelihood.

`sample_metrics(dataset, samples)` -> (name, value, kind) rows for the results store. Samples are
compared with the evaluation split (a fixed random subset of `len(samples)` of its images, the
*reference*: the same for every run; a random one because splits can be ordered, e.g. binarized
MNIST's test split) and with the whole train split.

Datasets with labels (digits, MNIST variants, CIFAR-10): a small conv classifier, trained once and
cached as `cache_dir()/classifiers/<name>-<HxWxC>-<levels>lv-classifier-<hash of train data>.keras`,
embeds images by its penultimate layer ("features", 64 ReLU units), divided by one scalar so that
mean |f|^2 / d = 1 on train (keeps the kernel's x.y / d near 1). Rows of kind "classifier":

    fcd        Frechet classifier distance |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)),
               the FID formula (Heusel et al. 2017) on these features -- no Inception, so NOT an FID
    kid        unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018); kid_se its
               delete-a-group jackknife standard error (10 groups)
    precision  fraction of samples inside the real k-NN manifold (union of balls reaching each real
    recall     point's k-th neighbour), and of real images inside the sample manifold
               (Kynkaanniemi et al. 2019, k = 3), on equal-sized sets
    nn_train_dist        mean feature distance of a sample to its nearest training image
    nn_train_dist_test   the same for the reference (fresh) images: the scale to read it against
    nn_closer_than_test  fraction of samples closer to a training image than the median reference
                         image is: 0.5 for fresh data, towards 1 for copies of the training set
    classifier_accuracy  the classifier on the evaluation split (are the features sane?)
fcd (and precision / recall) depend on the set sizes (fcd is biased upwards at small N): compare models
at the same `metric_samples`. Bars is not listed because it has the exact metrics below.

Unlabelled data (binarized_mnist has no labels in our loader): the same rows from the 64-unit linear
bottleneck of a small autoencoder instead, kind "autoencoder"; the Frechet distance is then named
`fd_ae` (not a classifier distance) and the sanity row is `autoencoder_mse` (per pixel, in [0, 1]).

Bars (p known on all 2^16 states): exact metrics of the empirical sample histogram q^, no features:
    kl_emp_true = KL(q^ || p) = sum_{x: q^(x) > 0} q^(x) log(q^(x) / p(x)), finite whenever p > 0
    (the reverse KL(p || q^) is infinite as soon as one state of p > 0 is never sampled);
    tv_emp_true = 1/2 sum_x |q^(x) - p(x)|; and *_floor, the mean of each over 5 sets of N exact draws
    from p: what a perfect sampler scores at this N (both are biased upwards at finite N).

TensorFlow / Keras are imported inside functions only.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

FEATURES = 64
RECIPE = "v1"  # part of the cache key: bump when the nets or their training change


# --- feature nets ------------------------------------------------------------------------------
@dataclasses.dataclass
class FeatureNet:
    """A trained classifier or autoencoder; `features(x)` embeds uint8 images `[N, H, W, C]`."""

    kind: str  # "classifier" | "autoencoder"
    model: object = dataclasses.field(repr=False)  # the keras.Model saved at `path`
    path: Path
    trained: bool  # True when this call trained it, False when it was loaded from the cache

    def __post_init__(self):
        import keras

        self._features = keras.Model(self.model.input, self.model.get_layer("features").output)

    @staticmethod
    def _apply(net, x, batch_size=1000) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return np.concatenate([net(x[s:s + batch_size], training=False).numpy()
                               for s in range(0, len(x), batch_size)]).astype(np.float64)

    def features(self, x) -> np.ndarray:
        """Penultimate-layer features `[N, 64]` float64 of uint8 images `[N, H, W, C]`."""
        return self._apply(self._features, x)

    def sanity_rows(self, dataset, split="test") -> list:
        x = dataset.split(split)
        out = self._apply(self.model, x)
        if self.kind == "classifier":
            accuracy = float(np.mean(out.argmax(-1) == dataset.labels[split]))
            return [("classifier_accuracy", accuracy, self.kind)]
        return [("autoencoder_mse", float(np.mean((out - x / (dataset.levels - 1)) ** 2)), self.kind)]


def _build(kind, shape, levels, classes):
    """Conv trunk (one stride-2 stage on 8x8, two from 16x16 up) -> Dense(64) "features" -> head."""
    import keras
    from keras import layers

    x = keras.Input(shape)  # [B, H, W, C] float values 0..levels-1
    h = layers.Rescaling(1.0 / (levels - 1))(x)
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    for _ in range(2 if min(shape[:2]) >= 16 else 1):
        h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Flatten()(h)
    if kind == "classifier":
        f = layers.Dense(FEATURES, activation="relu", name="features")(h)
        model = keras.Model(x, layers.Dense(classes)(f))  # logits
        model.compile(keras.optimizers.Adam(1e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    else:
        f = layers.Dense(FEATURES, name="features")(h)
        d = layers.Dense(int(np.prod(shape)), activation="sigmoid")(layers.Dense(256, activation="relu")(f))
        model = keras.Model(x, layers.Reshape(shape)(d))  # pixel / (levels - 1)
        model.compile(keras.optimizers.Adam(1e-3), "mse")
    return model


def cache_path(dataset, kind: str) -> Path:
    from zoo.datafiles import cache_dir

    h = hashlib.sha1(f"{RECIPE}-{dataset.shape}-{dataset.levels}-{kind}".encode())
    h.update(np.ascontiguousarray(dataset.train).tobytes())
    if kind == "classifier":
        h.update(np.ascontiguousarray(dataset.labels["train"], np.int64).tobytes())
    shape = "x".join(map(str, dataset.shape))
    filename = f"{dataset.name}-{shape}-{dataset.levels}lv-{kind}-{h.hexdigest()[:12]}.keras"
    return cache_dir() / "classifiers" / filename


def train_epochs(n_train: int) -> int:
    """About 20k training examples seen, 2 to 20 epochs (digits: 20 epochs, ~10 s; MNIST: 2, ~1 min)."""
    return int(np.clip(20_000 // max(n_train, 1), 2, 20))


def feature_net(dataset, verbose=0) -> FeatureNet:
    """The dataset's classifier (autoencoder when it has no labels): loaded from the cache, else trained
    on the train split and saved there (written to a temporary file, then renamed: atomic)."""
    import keras

    kind = "classifier" if {"train", "test"} <= set(dataset.labels) else "autoencoder"
    path = cache_path(dataset, kind)
    if path.exists():
        return FeatureNet(kind, keras.saving.load_model(path, compile=False), path, trained=False)
    x = dataset.train.astype(np.float32)  # [N, H, W, C]
    target = dataset.labels["train"] if kind == "classifier" else x / (dataset.levels - 1)
    classes = int(max(dataset.labels[s].max() for s in dataset.labels)) + 1 if kind == "classifier" else 0
    keras.utils.set_random_seed(0)  # the cached artifact is reproducible (the runner reseeds per run)
    model = _build(kind, dataset.shape, dataset.levels, classes)
    model.fit(x, target, batch_size=32 if len(x) < 10_000 else 128, epochs=train_epochs(len(x)),
              verbose=verbose)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.tmp{os.getpid()}.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return FeatureNet(kind, model, path, trained=True)


# --- distances between feature sets (numpy, float64) ------------------------------------------
def frechet_distance(a, b) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) of Gaussians fitted to rows of a, b;
    Tr (S_a S_b)^(1/2) = sum of sqrt eig(S_a^(1/2) S_b S_a^(1/2)) (symmetric, so stable)."""
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(s_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root_a @ s_b @ root_a
    cross = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    value = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(s_a) + np.trace(s_b) - 2 * cross
    return float(max(value, 0.0))


def _chunks(n_rows, n_cols, budget=4_000_000):
    step = max(1, budget // max(n_cols, 1))
    return [slice(s, min(s + step, n_rows)) for s in range(0, n_rows, step)]


def _block_sums(u, v, gu, gv, groups, same):
    """S[g, h] = sum of k(u_i, v_j) over i in group g, j in group h (i != j when `same`)."""
    d = u.shape[1]
    hot_u, hot_v = np.eye(groups)[gu], np.eye(groups)[gv]  # [N, G], [M, G]
    out = np.zeros((groups, groups))
    for s in _chunks(len(u), len(v)):
        k = (u[s] @ v.T / d + 1.0) ** 3  # [c, M]
        if same:
            rows = np.arange(s.stop - s.start)
            k[rows, s.start + rows] = 0.0
        out += hot_u[s].T @ (k @ hot_v)
    return out


def kid(a, b, groups=10) -> tuple[float, float]:
    """Unbiased MMD^2 between rows of a [N, d] and b [M, d] with k(x, y) = (x.y / d + 1)^3:
    sum_{i!=j} k(a_i, a_j) / N(N-1) + sum_{i!=j} k(b_i, b_j) / M(M-1) - 2 sum k(a_i, b_j) / NM,
    and its delete-a-group jackknife standard error (point i in group i mod G)."""
    groups = int(max(2, min(groups, len(a) // 2, len(b) // 2)))
    ga, gb = np.arange(len(a)) % groups, np.arange(len(b)) % groups
    s_aa = _block_sums(a, a, ga, ga, groups, True)
    s_bb = _block_sums(b, b, gb, gb, groups, True)
    s_ab = _block_sums(a, b, ga, gb, groups, False)
    n_a, n_b = np.bincount(ga, minlength=groups), np.bincount(gb, minlength=groups)

    def mmd(aa, bb, ab, n, m):
        return aa / (n * (n - 1)) + bb / (m * (m - 1)) - 2 * ab / (n * m)

    full = mmd(s_aa.sum(), s_bb.sum(), s_ab.sum(), len(a), len(b))
    loo = np.array([mmd(s_aa.sum() - 2 * s_aa[g].sum() + s_aa[g, g],
                        s_bb.sum() - 2 * s_bb[g].sum() + s_bb[g, g],
                        s_ab.sum() - s_ab[g].sum() - s_ab[:, g].sum() + s_ab[g, g],
                        len(a) - n_a[g], len(b) - n_b[g]) for g in range(groups)])
    se = np.sqrt((groups - 1) / groups * np.sum((loo - loo.mean()) ** 2))
    return float(full), float(se)


def _sq_dists(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)  # [N, M]


def nearest_dist(a, b) -> np.ndarray:
    """Distance of each row of a to its nearest row of b, `[N]`."""
    return np.sqrt(np.concatenate([_sq_dists(a[s], b).min(1) for s in _chunks(len(a), len(b))]))


def _kth_radius_sq(a, k):
    """Squared distance of each row of a to its k-th nearest other row (index 0 is itself)."""
    return np.concatenate([np.partition(_sq_dists(a[s], a), k, axis=1)[:, k]
                           for s in _chunks(len(a), len(a))])


def _covered(points, centres, radii_sq):
    """For each point: is it inside some ball (centre_j, radius_j)?"""
    return np.concatenate([(_sq_dists(points[s], centres) <= radii_sq[None]).any(1)
                           for s in _chunks(len(points), len(centres))])


def precision_recall(real, fake, k=3) -> tuple[float, float]:
    """Kynkaanniemi et al. 2019: precision = share of fake inside the real k-NN manifold,
    recall = share of real inside the fake k-NN manifold."""
    precision = _covered(fake, real, _kth_radius_sq(real, k)).mean()
    recall = _covered(real, fake, _kth_radius_sq(fake, k)).mean()
    return float(precision), float(recall)


def feature_rows(fake, ref, train, k=3, kind="classifier") -> list:
    """The feature-space rows for sample features `fake`, reference features `ref`, train features."""
    m = min(len(fake), len(ref))
    precision, recall = precision_recall(ref[:m], fake[:m], k)
    kid_value, kid_se = kid(ref, fake)
    d_fake, d_ref = nearest_dist(fake, train), nearest_dist(ref, train)
    return [("fcd" if kind == "classifier" else "fd_ae", frechet_distance(ref, fake), kind),
            ("kid", kid_value, kind), ("kid_se", kid_se, kind),
            ("precision", precision, kind), ("recall", recall, kind),
            ("nn_train_dist", float(d_fake.mean()), kind), ("nn_train_dist_test", float(d_ref.mean()), kind),
            ("nn_closer_than_test", float(np.mean(d_fake < np.median(d_ref))), kind)]


# --- bars: exact distances to the known p -------------------------------------------------------
def state_index(x) -> np.ndarray:
    """Index k of each binary 4x4 image in `zoo.data.all_binary_images()` (pixel i is bit i of k)."""
    bits = np.asarray(x).reshape(len(x), -1).astype(np.int64)  # [N, 16]
    return bits @ (np.int64(1) << np.arange(bits.shape[1], dtype=np.int64))


def kl_tv(q, log_p) -> tuple[float, float]:
    """KL(q || p) = sum_{q > 0} q log(q / p) and TV = 1/2 sum |q - p| for histograms over all states."""
    s = q > 0
    with np.errstate(divide="ignore"):
        kl = float(np.sum(q[s] * (np.log(q[s]) - log_p[s])))
    return kl, float(0.5 * np.abs(q - np.exp(log_p)).sum())


def bars_rows(dataset, samples, seed=0, floor_draws=5) -> list:
    """kl_emp_true, tv_emp_true of the samples' histogram, and their *_floor for exact draws from p."""
    from zoo.data import all_binary_images

    log_p = dataset.true_log_prob(all_binary_images(4, 4))  # [65536]
    n, states = len(samples), len(log_p)
    kl, tv = kl_tv(np.bincount(state_index(samples), minlength=states) / n, log_p)
    rng, p = np.random.default_rng(seed), np.exp(log_p)
    floor = np.mean([kl_tv(np.bincount(rng.choice(states, n, p=p / p.sum()), minlength=states) / n, log_p)
                     for _ in range(floor_draws)], axis=0)
    return [("kl_emp_true", kl, None), ("tv_emp_true", tv, None),
            ("kl_emp_true_floor", float(floor[0]), None), ("tv_emp_true_floor", float(floor[1]), None)]


# --- entry points -------------------------------------------------------------------------------
def sample_metrics(dataset, samples, split="test", k=3, seed=0) -> list:
    """All sample-quality rows for uint8 `samples [N, H, W, C]` of a model of `dataset`."""
    samples = np.asarray(samples)
    if samples.dtype != np.uint8 or samples.shape[1:] != dataset.shape or len(samples) < 2 * k + 2:
        raise ValueError(f"sample_metrics: expected uint8 samples [N >= {2 * k + 2}, {dataset.shape}], "
                         f"got {samples.dtype} {samples.shape}")
    rows = [("metric_samples", float(len(samples)), None)]
    if hasattr(dataset, "true_log_prob") and dataset.shape == (4, 4, 1) and dataset.levels == 2:
        return rows + bars_rows(dataset, samples, seed)
    net = feature_net(dataset)
    ref = dataset.split(split)
    ref = ref[np.sort(np.random.default_rng(0).permutation(len(ref))[:len(samples)])]  # splits can be ordered
    fake, real, train = net.features(samples), net.features(ref), net.features(dataset.train)
    scale = np.sqrt(np.mean(train ** 2)) or 1.0  # one scalar: mean |f|^2 / d = 1 on train
    fake, real, train = fake / scale, real / scale, train / scale
    return rows + net.sanity_rows(dataset, split) + feature_rows(fake, real, train, k, net.kind)


def draw_samples(model, n, seed=0, batch_size=500, **options) -> np.ndarray:
    """`n` samples of `model` as uint8 numpy `[n, H, W, C]`, drawn in batches with distinct seeds;
    `options` go to `model.sample` (e.g. method="ddim")."""
    parts = [model.sample(min(batch_size, n - s), seed=10_000 * (seed + 1) + i, **options).numpy()
             for i, s in enumerate(range(0, n, batch_size))]
    return np.concatenate(parts)
