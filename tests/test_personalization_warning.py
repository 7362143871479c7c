from types import SimpleNamespace

from twinjax_experiments.twins_synthetic import personalization_warnings

TRAIN = SimpleNamespace(selection="none", prior_strength=30.0, personal_steps=200)


def test_warns_only_when_personal_twins_lose_on_validation():
    worse = {"rmse_ratio_personalized_over_population": 1.05, "fraction_individuals_improved": 0.38}
    (w,) = personalization_warnings(worse, TRAIN)
    assert "RMSE ratio 1.05" in w and "38%" in w and "train.selection=individual" in w
    better = {**worse, "rmse_ratio_personalized_over_population": 0.9}
    assert personalization_warnings(better, TRAIN) == []
    # a selection rule already guards against it: no advice to turn it on
    assert (
        personalization_warnings(
            worse, SimpleNamespace(**{**vars(TRAIN), "selection": "individual"})
        )
        == []
    )
