"""diagnose on synthetic histories: healthy runs, NaN, bad initialisation, divergence, spikes,
plateaus, over- and underfitting; the findings' shape and the inputs a history may be."""

from __future__ import annotations

import math

import numpy as np
import pytest

import losskit
from losskit.diagnostics import Finding, as_history, diagnose
from losskit.diagnostics.history import KINDS, SEVERITIES

K = 10
LN_K = math.log(K)


# -- synthetic histories -----------------------------------------------------------------------


def curve(n=600, *, floor=0.3, start=LN_K, tau=None, noise=0.05, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    tau = tau or n / 6
    return (floor + (start - floor) * np.exp(-t / tau)) * (1 + noise * rng.standard_normal(n))


def kinds(findings):
    return [f.kind for f in findings]


def only(findings, kind):
    hits = [f for f in findings if f.kind == kind]
    assert hits, f"no {kind} finding in {kinds(findings)}"
    return hits


@pytest.mark.parametrize("seed", range(12))
def test_healthy_noisy_runs_raise_no_alarm(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(150, 1500))
    y = curve(
        n, floor=rng.uniform(0.05, 1.5), tau=n / rng.uniform(3, 10), noise=rng.uniform(0.01, 0.15), seed=seed
    )
    findings = diagnose(y, num_classes=K)
    assert not [f for f in findings if f.severity in ("error", "warning")], [f.message for f in findings]
    assert "healthy" in kinds(findings)
    ok = only(findings, "init_ok")[0]
    assert "close to the baseline" in ok.message


def test_healthy_epoch_run_with_validation():
    e = np.arange(30)
    rng = np.random.default_rng(5)
    train = (0.4 + 1.9 * np.exp(-e / 5)) * (1 + 0.01 * rng.standard_normal(30))
    val = (0.5 + 1.8 * np.exp(-e / 5)) * (1 + 0.01 * rng.standard_normal(30))
    findings = diagnose({"epoch": e, "loss": train, "val_loss": val}, num_classes=K)
    assert "healthy" in kinds(findings) and "overfitting" not in kinds(findings)


def test_nan_reports_first_non_finite_step():
    y = curve()
    y[321] = np.nan
    y[400:] = np.inf
    f = only(diagnose(y, num_classes=K), "nan")[0]
    assert f.severity == "error" and f.step == 321 and "NaN" in f.message
    y = curve()
    y[250:] = np.inf
    assert only(diagnose(y), "nan")[0].step == 250


def test_nan_in_validation():
    e = np.arange(20)
    val = 2.0 - 0.05 * e
    val[12] = np.nan
    f = only(diagnose({"epoch": e, "loss": 2.2 - 0.05 * e, "val_loss": val}), "nan")[0]
    assert f.epoch == 12 and "validation" in f.message


def test_bad_init_high_and_low():
    y = curve(start=25.0, tau=30)
    f = only(diagnose(y, num_classes=K), "bad_init")[0]
    assert f.severity == "error" and f.step == 0 and "Scale the output layer" in f.message
    assert "init_ok" not in kinds(diagnose(y, num_classes=K))
    mild = only(diagnose(curve(start=1.6 * LN_K), num_classes=K), "bad_init")[0]
    assert mild.severity == "warning"
    low = only(diagnose(curve(start=0.3 * LN_K, floor=0.1), num_classes=K), "bad_init")[0]
    assert "lower than any constant guess" in low.message
    # without a baseline nothing can be said about the start
    assert "bad_init" not in kinds(diagnose(y))


def test_binary_task_baseline_is_ln2():
    y = curve(start=math.log(2), floor=0.2)
    ok = only(diagnose(y, task="binary"), "init_ok")[0]
    assert "0.6931" in ok.message


@pytest.mark.parametrize("onset", [250, 400])
def test_divergence_found_near_its_onset(onset):
    y = curve(600)
    t = np.arange(600)
    y[onset:] *= np.exp((t[onset:] - onset) / 60)
    f = only(diagnose(y, num_classes=K), "divergence")[0]
    assert f.severity == "error"
    assert onset - 10 <= f.step <= onset + 60
    assert "underfitting" not in kinds(diagnose(y, num_classes=K))


def test_slow_rise_is_divergence_warning():
    y = curve(600, floor=0.5)
    y[350:] *= 1 + np.linspace(0, 0.8, 250)
    f = only(diagnose(y), "divergence")[0]
    assert f.severity == "warning" and 330 <= f.step <= 450


@pytest.mark.parametrize("where", [[120], [200, 450], [90, 300, 520]])
def test_spikes_found_at_their_steps(where):
    y = curve(600)
    for i in where:
        y[i] *= 3.0
    found = [f.step for f in only(diagnose(y, num_classes=K), "spike")]
    assert found == where


def test_spike_on_epoch_log_has_epoch():
    e = np.arange(40)
    y = 0.5 + 2 * np.exp(-e / 8)
    y[25] *= 2.5
    f = only(diagnose({"epoch": e, "loss": y}), "spike")[0]
    assert f.epoch == 25 and f.step is None


def test_many_spikes_are_summarised():
    y = curve(800)
    for i in range(100, 800, 60):
        y[i] *= 3
    spikes = only(diagnose(y), "spike")
    assert len(spikes) == 6 and "more spikes" in spikes[-1].message


def test_no_learning_plateau():
    y = LN_K * (1 + 0.03 * np.random.default_rng(0).standard_normal(400))
    findings = diagnose(y, num_classes=K)
    p = only(findings, "plateau")[0]
    assert p.severity == "warning" and p.step <= 20 and "not improved since the start" in p.message
    assert "underfitting" in kinds(findings)


def test_stuck_plateau_and_mid_run_stall():
    rng = np.random.default_rng(1)
    stuck = np.concatenate([LN_K - 0.3 * np.arange(100) / 100, np.full(300, LN_K - 0.3)])
    stuck *= 1 + 0.02 * rng.standard_normal(400)
    p = only(diagnose(stuck, num_classes=K), "plateau")[0]
    assert p.severity == "warning" and 60 <= p.step <= 140 and "stuck" in p.message
    stall = np.concatenate(
        [
            LN_K - 0.5 * np.arange(100) / 100,
            np.full(150, LN_K - 0.5),
            (LN_K - 0.5) * np.exp(-np.arange(250) / 60) + 0.1,
        ]
    ) * (1 + 0.02 * rng.standard_normal(500))
    findings = diagnose(stall, num_classes=K)
    p = only(findings, "plateau")[0]
    assert p.severity == "info" and 70 <= p.step <= 130 and "then improved again" in p.message
    assert "healthy" in kinds(findings)


@pytest.mark.parametrize("best", [12, 20, 30])
def test_overfitting_reports_epoch_of_validation_minimum(best):
    e = np.arange(45)
    rng = np.random.default_rng(best)
    train = 0.1 + 2.2 * np.exp(-e / 6)
    val = 0.6 + 1.7 * np.exp(-e / 6) + 0.004 * np.maximum(0, e - best) ** 2 - 0.002 * np.maximum(0, best - e)
    val = val * (1 + 0.005 * rng.standard_normal(e.size))
    true_min = int(np.argmin(val))
    f = only(diagnose({"epoch": e, "loss": train, "val_loss": val}, num_classes=K), "overfitting")[0]
    assert abs(f.epoch - true_min) <= 2
    assert f.epoch == int(np.argmin(val))  # the actual best epoch, to keep its checkpoint
    assert "early stopping" in f.message


def test_overfitting_with_steps_on_both_curves():
    steps = np.arange(1000)
    train = (0.2 + 2 * np.exp(-steps / 150)) * (1 + 0.05 * np.random.default_rng(0).standard_normal(1000))
    vsteps = np.arange(49, 1000, 50)
    val = 0.5 + 1.8 * np.exp(-vsteps / 150) + 1e-6 * np.maximum(0, vsteps - 500) ** 2
    h = losskit.diagnostics.History(
        losskit.diagnostics.Series(train, steps), losskit.diagnostics.Series(val, vsteps)
    )
    f = only(diagnose(h), "overfitting")[0]
    assert f.step == vsteps[np.argmin(val)]


def test_no_overfitting_when_train_rises_too():
    e = np.arange(30)
    train = 1.0 + 0.02 * (e - 10) ** 2 / 10
    val = 1.2 + 0.02 * (e - 10) ** 2 / 10
    assert "overfitting" not in kinds(diagnose({"epoch": e, "loss": train, "val_loss": val}))


def test_underfitting_both_high():
    e = np.arange(30)
    train = LN_K * (0.95 - 0.002 * e)
    val = LN_K * (0.97 - 0.002 * e)
    f = only(diagnose({"epoch": e, "loss": train, "val_loss": val}, num_classes=K), "underfitting")[0]
    assert "learned little" in f.message and f.epoch == 29
    assert "underfitting" not in kinds(diagnose(curve(), num_classes=K))


def test_findings_shape_and_order():
    y = curve()
    y[300] *= 4
    y[500:] = np.nan
    findings = diagnose(y, num_classes=K)
    assert all(isinstance(f, Finding) for f in findings)
    assert all(f.kind in KINDS and f.severity in SEVERITIES for f in findings)
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    assert ranks == sorted(ranks)
    d = findings[0].to_dict()
    assert set(d) == {"kind", "severity", "step", "epoch", "message", "value"}


def test_as_history_inputs():
    h = as_history({"train": [3.0, 2.0, 1.0, 0.9], "val": [2.5, 1.5]})
    assert list(h.val.step) == [1, 3]
    h = as_history([1.0, 0.5])
    assert list(h.train.step) == [0, 1]

    class KerasHistory:
        history = {"loss": [2.0, 1.0], "val_loss": [2.1, 1.2]}

    assert as_history(KerasHistory()).val.name == "val_loss"
    with pytest.raises(TypeError, match="read_log"):
        as_history("metrics.csv")
    with pytest.raises(ValueError, match="no train loss column"):
        as_history({"accuracy": [0.1, 0.2]})
    with pytest.raises(ValueError, match="empty"):
        diagnose([])
    with pytest.raises(ValueError, match="unknown task"):
        diagnose([1.0, 0.5], task="astrology")
    with pytest.raises(ValueError, match="baseline must be a finite number"):
        diagnose([1.0, 0.5], baseline=float("nan"))


def test_short_histories_do_not_crash():
    for n in range(1, 12):
        assert diagnose(np.linspace(2, 1, n), num_classes=K)


def test_columns_without_steps_use_the_index_for_train_and_validation():
    train = np.linspace(2.3, 0.5, 50)
    val = np.concatenate([np.linspace(2.3, 0.8, 25), np.linspace(0.8, 1.5, 25)])
    findings = {f.kind: f for f in losskit.diagnose({"train_loss": train, "val_loss": val}, num_classes=10)}
    assert findings["overfitting"].step == 24


# -- bursts, early blow-ups, logged zeros, convergence, held-out test curves, tables ------------


def test_burst_several_steps_wide_is_a_spike_at_its_start():
    y = curve(800, floor=0.2, noise=0.05, seed=3)
    t = np.arange(800)
    # 5 steps high, then a tail decaying over about 40 steps
    burst = np.where((t >= 400) & (t < 405), 3.0, np.where(t >= 405, 0.8 * np.exp(-(t - 405) / 12.0), 0.0))
    y = y + burst
    f = only(diagnose(y, num_classes=K), "spike")
    assert len(f) == 1 and 399 <= f[0].step <= 401
    assert "burst" in f[0].message and "about 5 steps" in f[0].message
    assert f[0].value == pytest.approx(y[f[0].step])


def test_early_blowup_collapsing_to_ln_k_is_divergence():
    rng = np.random.default_rng(1)
    y = np.concatenate(
        [LN_K * np.array([1.0, 0.9, 1.1, 2.0, 5.0, 12.0, 20.0, 14.0, 6.0, 3.0]), LN_K * np.ones(390)]
    ) * (1 + 0.03 * rng.standard_normal(400))
    findings = diagnose(y, num_classes=K)
    f = only(findings, "divergence")[0]
    assert f.severity == "error" and f.step == 3 and "blew up early" in f.message
    assert "lower it, add a warm-up" in f.message
    assert not any("try a larger learning rate" in g.message.lower() for g in findings)
    assert not {"plateau", "underfitting", "spike"} & set(kinds(findings))


def test_logged_zeros_after_a_level_are_a_filtered_nan():
    y = list(curve(60, seed=4)) + [0.0] * 20
    f = diagnose({"step": np.arange(80) * 10, "loss": y}, num_classes=K)[0]
    assert f.kind == "nan" and f.step == 600 and f.value == 0.0 and "exactly 0" in f.message
    # a loss that approaches 0 (a hinge loss on separable data) and stays there is not a NaN
    hinge = list(np.linspace(1.0, 0.02, 40) ** 2) + [0.01, 0.004, 0.001] + [0.0] * 10
    assert "nan" not in kinds(diagnose(hinge))
    # nor is a single 0.0 amid positive losses
    one = list(curve(60, seed=5))
    one[30] = 0.0
    assert "nan" not in kinds(diagnose(one, num_classes=K))


def test_converged_only_when_the_end_is_flat():
    rng = np.random.default_rng(7)
    t = np.arange(1000)
    falling = (0.2 + 2.1 * np.exp(-t / 150) + 0.3 * (1 - t / 1000)) * (1 + 0.05 * rng.standard_normal(1000))
    findings = diagnose(falling, num_classes=K)
    assert "converged" not in kinds(findings)
    assert only(findings, "improving")[0].severity == "info"
    flat = (0.3 + 2.0 * np.exp(-t / 100)) * (1 + 0.05 * rng.standard_normal(1000))
    findings = diagnose(flat, num_classes=K)
    assert "improving" not in kinds(findings) and "converged" in kinds(findings)


def test_test_loss_is_the_held_out_curve_when_there_is_no_validation():
    from losskit.diagnostics.columns import is_test_name, pick_loss_columns

    assert pick_loss_columns(["Loss/train", "Loss/test"]) == ("Loss/train", "Loss/test")
    assert pick_loss_columns(["loss", "test_loss"]) == ("loss", "test_loss")
    assert pick_loss_columns(["loss", "val_loss", "test_loss"]) == ("loss", "val_loss")
    assert is_test_name("test/loss") and not is_test_name("val_loss") and not is_test_name("test_acc")
    e = np.arange(40)
    train = 0.1 + 2.2 * np.exp(-e / 6)
    test = 0.6 + 1.7 * np.exp(-e / 6) + 0.004 * np.maximum(0, e - 15) ** 2
    f = only(diagnose({"epoch": e, "train_loss": train, "test_loss": test}, num_classes=K), "overfitting")[0]
    assert "test loss (test_loss, used as the held-out curve" in f.message


def test_keras_history_epochs_count_from_one():
    class KerasHistory:
        epoch = list(range(30))
        e = np.arange(30)
        history = {
            "loss": list(0.1 + 2.2 * np.exp(-e / 4)),
            "val_loss": list(0.6 + 1.7 * np.exp(-e / 4) + 0.004 * np.maximum(0, e - 9) ** 2),
        }

    h = as_history(KerasHistory())
    assert h.format == "keras" and list(h.train.epoch[:2]) == [0, 1]
    f = only(diagnose(KerasHistory(), num_classes=K), "overfitting")[0]
    v = np.asarray(KerasHistory.history["val_loss"])
    assert f.epoch == int(np.argmin(v)) + 1 and "save_best_only=True" in f.message


class _Column:
    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float64)

    def to_numpy(self):
        return self.values


class _Frame:  # a DataFrame-like object without pandas: columns, [name], to_dict
    def __init__(self, data):
        self.data = data
        self.columns = list(data)

    def __getitem__(self, name):
        return _Column(self.data[name])

    def to_dict(self, orient="list"):
        return {k: list(v) for k, v in self.data.items()}


def test_dataframe_like_with_rows_for_train_and_validation():
    nan = float("nan")
    rows = []  # Lightning's layout: train rows and validation rows, the other cell empty
    for e in range(6):
        for s in range(4):
            rows.append((e, 4 * e + s, 2.0 * 0.7**e - 0.01 * s, nan))
        rows.append((e, 4 * e + 3, nan, 2.1 * 0.75**e))
    data = {name: [r[j] for r in rows] for j, name in enumerate(["epoch", "step", "train_loss", "val_loss"])}
    h = as_history(_Frame(data))
    assert h.format == "lightning_csv" and len(h.train) == 24 and len(h.val) == 6
    assert list(h.val.step) == [3, 7, 11, 15, 19, 23] and list(h.val.epoch) == list(range(6))
    assert not np.isnan(h.train.value).any()
    assert "nan" not in kinds(diagnose(_Frame(data), num_classes=K))
    # the same columns as a plain mapping
    h2 = as_history(data)
    assert len(h2.train) == 24 and list(h2.val.step) == list(h.val.step)
    # a run that went NaN: trailing rows where both are NaN are logged NaNs
    data["train_loss"] = data["train_loss"][:-10] + [nan] * 10
    data["val_loss"] = data["val_loss"][:-10] + [nan] * 10
    f = diagnose(data, num_classes=K)[0]
    assert f.kind == "nan" and f.step == data["step"][-10]


def test_pandas_dataframe_is_accepted():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"epoch": np.arange(30), "loss": np.linspace(2.3, 0.5, 30), "note": ["x"] * 30})
    h = as_history(frame)
    assert h.format == "keras_csv" and h.columns == {"train": "loss"}
    assert diagnose(frame, num_classes=K)


@pytest.mark.parametrize(
    "losses",
    [
        [3.8801, 0.6523, 0.111, 0.0202, 0.005, 0.0025, 0.0021, 0.002, 0.002, 0.002],
        [8.913, 17.69, 5.275, 7.191, 1.968, 2.461, 0.8142, 0.8515, 0.4122, 0.2147],
    ],
)
def test_short_steep_fall_is_not_a_plateau(losses):
    # ten points falling by 95-100%: the second differences of so steep a curve are large, and
    # read as noise they used to hide the fall ("has not improved since the start")
    kinds = {f.kind for f in diagnose(losses)}
    assert "plateau" not in kinds and "healthy" in kinds
