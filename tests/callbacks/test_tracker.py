"""The framework-free tracker: which findings are new, when to check, when to stop."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from losskit.callbacks import LossTracker, _tracker
from losskit.diagnostics import Finding


def finding(kind, step, severity="warning"):
    return Finding(kind, severity, step, None, f"{kind} at {step}")


class Scripted:
    """A stand-in for diagnose that returns the next scripted list of findings."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = 0

    def __call__(self, history, **options):
        self.calls += 1
        return self.results.pop(0)


@pytest.fixture
def scripted(monkeypatch):
    def install(*results):
        fake = Scripted(*results)
        monkeypatch.setattr(_tracker, "diagnose", fake)
        return fake

    return install


def fed(tracker, n=1):
    for _ in range(n):
        tracker.add_train(1.0, step=tracker.num_train + 1)
    return tracker


def kinds(findings):
    return [(f.kind, f.step) for f in findings]


# -- the dedupe rule, on scripted diagnoses ------------------------------------------------------


def test_a_state_finding_is_reported_once_while_its_start_moves(scripted):
    scripted([finding("divergence", 40)], [finding("divergence", 43)], [finding("divergence", 45, "error")])
    t = LossTracker()
    assert kinds(fed(t).check()) == [("divergence", 40)]
    assert fed(t).check() == []  # the same divergence, its onset moved
    assert fed(t).check() == []  # ... and now an error: still the same one
    assert kinds(t.findings) == [("divergence", 40)]
    assert t.diagnosis[0].severity == "error"  # the latest diagnosis is kept whole


def test_a_finding_that_resolves_and_comes_back_is_reported_again(scripted):
    scripted([finding("plateau", 10)], [finding("plateau", 10)], [], [finding("plateau", 80)])
    t = LossTracker()
    assert kinds(fed(t).check()) == [("plateau", 10)]
    assert fed(t).check() == []
    assert fed(t).check() == []  # resolved: the loss fell again
    assert kinds(fed(t).check()) == [("plateau", 80)]
    assert kinds(t.findings) == [("plateau", 10), ("plateau", 80)]


def test_each_spike_is_reported_once_by_its_position(scripted):
    scripted(
        [finding("spike", 10)],
        [finding("spike", 10), finding("spike", 30)],
        [finding("spike", 30)],  # the first no longer stands out: it stays reported
        [finding("spike", 10), finding("spike", 30)],
    )
    t = LossTracker()
    assert kinds(fed(t).check()) == [("spike", 10)]
    assert kinds(fed(t).check()) == [("spike", 30)]
    assert fed(t).check() == [] and fed(t).check() == []


def test_end_of_run_kinds_wait_for_the_final_check(scripted):
    underfit = [finding("underfitting", 5), finding("init_ok", 1, "info")]
    scripted(underfit, underfit, underfit)
    t = LossTracker()
    assert fed(t).check() == []  # early in a run, every loss is above the baseline
    assert fed(t).check() == []
    assert kinds(fed(t).finish()) == [("underfitting", 5)]


def test_improving_is_an_end_of_run_kind(scripted):
    # "still falling at the end" is true of every run while it trains
    improving = [finding("improving", 7, "info")]
    scripted(improving, improving)
    t = LossTracker(report_info=True)
    assert fed(t).check() == []
    assert kinds(fed(t).finish()) == [("improving", 7)]


def test_info_findings_only_with_report_info_and_at_most_once(scripted):
    healthy = [finding("init_ok", 1, "info"), finding("healthy", 9, "info")]
    scripted([healthy[0]], [healthy[0]], healthy)
    t = LossTracker(report_info=True)
    assert kinds(fed(t).check()) == [("init_ok", 1)]
    assert fed(t).check() == []
    assert kinds(fed(t).finish()) == [("healthy", 9)]
    scripted(healthy)
    quiet = LossTracker()
    assert fed(quiet).finish() == [] and quiet.findings == []


def test_stop_on_asks_to_stop_when_its_kind_is_found(scripted):
    scripted([finding("spike", 3)], [finding("spike", 3), finding("divergence", 8, "error")])
    t = LossTracker(stop_on=("nan", "divergence"))
    fed(t).check()
    assert not t.should_stop and t.stop_reason is None
    fed(t).check()
    assert t.should_stop and t.stop_reason.kind == "divergence"
    assert "divergence" in t.stop_message()
    scripted([finding("underfitting", 5)], [finding("underfitting", 5)])
    end = LossTracker(stop_on="underfitting")
    fed(end).check()
    assert not end.should_stop  # an end-of-run kind does not stop a run in progress


def test_when_the_checks_run(scripted):
    fake = scripted(*([[]] * 20))
    t = LossTracker(every_n=3, min_points=4)
    for _ in range(3):
        fed(t)
        assert t.step_check() == []
    assert fake.calls == 0  # three points: fewer than min_points
    fed(t)
    t.step_check()
    assert fake.calls == 1
    t.epoch_check()
    assert fake.calls == 1  # nothing new since the last check
    fed(t, 2)
    t.step_check()
    assert fake.calls == 1  # two points since: every_n is 3
    t.epoch_check()
    assert fake.calls == 2
    t.add_val(float("nan"), step=7)
    t.step_check()
    assert fake.calls == 3  # a NaN is checked at once


def test_a_nan_does_not_wait_for_min_points(scripted):
    fake = scripted([finding("nan", 2, "error")])
    t = LossTracker(stop_on="nan", min_points=50)
    t.add_train(1.0, step=1)
    assert t.step_check() == [] and t.epoch_check() == []
    t.add_train(math.nan, step=2)
    assert kinds(t.step_check()) == [("nan", 2)] and fake.calls == 1
    assert t.should_stop


def test_slow_diagnoses_are_spaced_out(scripted):
    fake = scripted([], [])
    t = fed(LossTracker(every_n=1))
    t._last_cost, t._last_end = 1.0, _tracker.time.perf_counter()  # the last one took a second
    assert t.step_check() == [] and t.epoch_check() == [] and fake.calls == 0
    t.add_train(math.inf, step=9)
    t.step_check()
    assert fake.calls == 1  # a non-finite loss is checked anyway
    t._last_cost, t._last_end = 1.0, _tracker.time.perf_counter()
    fed(t).finish()
    assert fake.calls == 2  # and so is the end of the run


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown finding kind.*'divergance'"):
        LossTracker(stop_on=("divergance",))
    with pytest.raises(ValueError, match="every_n"):
        LossTracker(every_n=0)
    with pytest.raises(ValueError, match="min_points"):
        LossTracker(min_points=0)
    assert LossTracker(stop_on="nan").stop_on == {"nan"}


# -- with the real diagnosis, on synthetic curves -------------------------------------------------


def curve(n, diverge_from=None, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = 2.0 * np.exp(-t / 30) + 0.2
    if diverge_from is not None:
        y[diverge_from:] = y[diverge_from] * 1.04 ** (t[diverge_from:] - diverge_from)
    return y * np.exp(0.02 * rng.normal(size=n))


def run(tracker, y, per_epoch=20):
    reported = []
    for i, v in enumerate(y):
        tracker.add_train(v, step=i + 1, epoch=i // per_epoch)
        reported += tracker.step_check()
        if (i + 1) % per_epoch == 0:
            tracker.add_val(v * 1.1, step=i + 1, epoch=i // per_epoch)
            reported += tracker.epoch_check()
        if tracker.should_stop:
            break
    return reported, i + 1


def test_a_diverging_run_reports_divergence_once_over_many_checks():
    reported, seen = run(LossTracker(every_n=5), curve(300, diverge_from=150))
    assert seen == 300
    assert [f.kind for f in reported].count("divergence") == 1, [(f.kind, f.step) for f in reported]


def test_stop_on_divergence_stops_soon_after_it_starts():
    tracker = LossTracker(every_n=5, stop_on=("divergence",))
    reported, seen = run(tracker, curve(300, diverge_from=150))
    assert tracker.stop_reason.kind == "divergence"
    assert 150 < seen < 200


def test_a_healthy_run_reports_nothing():
    tracker = LossTracker(every_n=5)
    reported, seen = run(tracker, curve(300))
    assert reported == [] and tracker.finish() == []
    assert {f.severity for f in tracker.diagnosis} == {"info"}


# -- imports -------------------------------------------------------------------------------------


def test_importing_the_callbacks_imports_no_framework():
    code = (
        "import sys, losskit, losskit.callbacks; "
        "loaded = {'torch', 'lightning', 'pytorch_lightning', 'transformers', 'accelerate', 'keras', "
        "'jax', 'tensorflow'} & {m.split('.')[0] for m in sys.modules}; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("lightning", "lightning", "lightning"),
        ("huggingface", "transformers", "transformers"),
        ("keras", "keras", "keras"),
    ],
)
def test_a_callback_without_its_framework_names_the_extra(module, framework, extra):
    code = (
        f"import sys; sys.modules[{framework!r}] = None\n"
        "try:\n"
        f"    import losskit.callbacks.{module}\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
        "else:\n"
        "    raise SystemExit('imported')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert f"pip install 'losskit[{extra}]'" in out
