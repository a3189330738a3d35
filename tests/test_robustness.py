"""``decentral.robustness``: empirical (f, kappa)-robustness, checked against closed forms
computed in numpy from the same honest draws, and the ``decentral robustness`` command."""

import jax
import numpy as np
import pytest

from decentral import cli, robustness


def _honest_draws(distribution, inbox, dim, trials, seed):
    """The rows of each trial, as ``empirical_kappa`` draws them (its documented keys)."""
    rows = []
    for key in jax.random.split(jax.random.key(seed), trials):
        draw_key, _, _ = jax.random.split(key, 3)
        rows.append(np.asarray(robustness.honest_rows(draw_key, distribution, inbox, dim), np.float64))
    return rows


@pytest.mark.parametrize("distribution", list(robustness.DISTRIBUTIONS))
def test_mean_under_zero_messages_has_its_closed_form_kappa(distribution):
    """f zero rows pull the mean to (K - f)/K of the honest mean: the ratio is
    (f/K)^2 ||mean_H||^2 / var_H, and without an attack ||mean_all - mean_H||^2 / var_H."""
    inbox, f, dim, trials = 7, 2, 5, 6
    kappa = robustness.empirical_kappa("mean", inbox=inbox, f=f, dim=dim, distribution=distribution, attack_names=["zero", "none"], trials=trials, seed=3)
    zero, none = [], []
    for rows in _honest_draws(distribution, inbox, dim, trials, 3):
        honest = rows[: inbox - f]
        center = honest.mean(0)
        variance = np.mean(np.sum((honest - center) ** 2, axis=1))
        zero.append((f / inbox) ** 2 * np.sum(center**2) / variance)
        none.append(np.sum((rows.mean(0) - center) ** 2) / variance)
    np.testing.assert_allclose(kappa.by_attack["zero"], max(zero), rtol=1e-4)
    np.testing.assert_allclose(kappa.by_attack["none"], max(none), rtol=1e-4)


def test_large_messages_break_the_mean_and_not_the_trimmed_mean():
    attacks = ["large", "alie", "ipm", "sign_flip"]
    mean = robustness.empirical_kappa("mean", inbox=9, f=2, dim=20, attack_names=attacks, trials=4)
    trimmed = robustness.empirical_kappa("trimmed_mean", inbox=9, f=2, dim=20, attack_names=attacks, trials=4)
    assert mean.by_attack["large"] > 1e6 and mean.worst[0] == "large"
    assert trimmed.worst[1] < 2.0, trimmed.by_attack


def test_every_attack_runs_by_default_and_data_poisoning_is_refused():
    names = robustness.applicable_attacks()
    assert "label_flip" not in names and {"none", "alie", "ipm", "min_max", "mimic"} <= set(names)
    with pytest.raises(ValueError, match="'label_flip' poisons training data"):
        robustness.applicable_attacks(["label_flip"])
    with pytest.raises(ValueError, match="unknown attack 'alei'. Did you mean 'alie'"):
        robustness.applicable_attacks(["alei"])


def test_settings_are_checked_before_compiling():
    with pytest.raises(ValueError, match="trimmed_mean with f=3 needs an inbox of at least 7 valid rows; got 6"):
        robustness.check_setting("trimmed_mean", inbox=6, f=3)
    with pytest.raises(ValueError, match="unknown distribution 'gauss'. Did you mean 'gaussian'"):
        robustness.check_setting("mean", inbox=6, f=1, distribution="gauss")
    assert robustness.check_setting("mda", inbox=11, f=2).max_f == 2  # bound to f, as the engine does


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_prints_one_row_per_rule_f_and_dimension(capsys):
    code, out, err = _run(capsys, "robustness", "--rules", "mean,nnm+trimmed_mean", "--inbox", "7", "--f", "1,2", "--dims", "4", "--attacks", "none,large", "--trials", "2", "--by-attack")
    assert (code, err) == (0, "")
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [(r[0].strip(), r[1].strip(), r[2].strip()) for r in rows] == [
        ("mean", "1", "4"), ("mean", "2", "4"), ("nnm+trimmed_mean", "1", "4"), ("nnm+trimmed_mean", "2", "4"),
    ]  # fmt: skip
    assert rows[0][4].strip() == "large" and rows[0][3].strip() == "inf"


@pytest.mark.parametrize(
    "argv,start",
    [
        (["--rules", "trimed_mean"], "error: Unknown aggregation rule 'trimed_mean'. Did you mean 'trimmed_mean'?"),
        (["--rules", "mean", "--attacks", "alei"], "error: decentral robustness: unknown attack 'alei'. Did you mean 'alie'?"),
        (["--rules", "mean", "--inbox", "5", "--f", "5"], "error: decentral robustness: f=5 Byzantine rows need 0 <= f < inbox=5"),
        (["--rules", "trimmed_mean", "--inbox", "5", "--f", "3"], "error: decentral robustness: trimmed_mean with f=3 needs an inbox of at least 7"),
        (["--rules", "krum", "--inbox", "7", "--f", "3"], "error: decentral robustness: krum with f=3 needs an inbox of at least 9"),
        (["--rules", "mean", "--dims", "ten"], "error: decentral robustness: dims 'ten' must be comma-separated integers"),
    ],
)
def test_bad_settings_are_one_line_usage_errors(capsys, argv, start):
    code, out, err = _run(capsys, "robustness", *argv)
    assert code == 2 and out == "" and err.startswith(start) and err.count("\n") == 1, err
