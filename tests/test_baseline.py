"""The HOG transformer, deskewing, the scalers and the HOG + SVM baseline end to end on small subsets."""

import json

import numpy as np
import pytest
from skimage.measure import moments_central
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, PredefinedSplit
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from parity import baseline
from parity.hog import HOGTransformer, deskew


@pytest.fixture(scope="module")
def splits():
    return baseline.load("mnist", None)


def _column_spread(image: np.ndarray) -> float:
    """Standard deviation of the column coordinate of the image's mass."""
    cols = np.indices(image.shape)[1]
    w = image / image.sum()
    return float(np.sqrt((w * (cols - (w * cols).sum()) ** 2).sum()))


def test_deskew_straightens_a_sheared_stroke():
    stroke = np.zeros((28, 28))
    for r in range(4, 24):  # a vertical bar slanted by half a column per row
        stroke[r, int(round(14 + 0.5 * (r - 14)))] = 255
    assert _column_spread(stroke) > 2.5
    upright = deskew(stroke)
    assert _column_spread(upright) < 0.6
    mu = moments_central(upright, order=2)
    assert abs(mu[1, 1]) < 0.02 * mu[2, 0]  # no remaining correlation between row and column
    assert upright.sum() == pytest.approx(stroke.sum(), rel=1e-3)  # no ink lost


def test_deskew_centres_mass_and_leaves_blank_images_alone():
    blob = np.zeros((28, 28))
    blob[3:7, 3:7] = 1.0  # a square off-centre: no slant, only moved to the centre
    out = deskew(blob)
    rows, cols = np.indices(out.shape)
    assert (rows * out).sum() / out.sum() == pytest.approx(13.5, abs=0.05)
    assert (cols * out).sum() / out.sum() == pytest.approx(13.5, abs=0.05)
    assert np.array_equal(deskew(np.zeros((28, 28))), np.zeros((28, 28)))
    with pytest.raises(ValueError, match="2-D"):
        deskew(np.zeros((2, 28, 28)))


def test_multi_scale_features_are_the_single_scales_concatenated(splits):
    x = splits["train"][0][:20]
    fine = HOGTransformer(pixels_per_cell=(4,)).fit_transform(x)
    coarse = HOGTransformer(pixels_per_cell=(7,)).fit_transform(x)
    both = HOGTransformer(pixels_per_cell=(4, 7)).fit_transform(x)
    assert fine.shape == (20, 6 * 6 * 2 * 2 * 9) and coarse.shape == (20, 3 * 3 * 2 * 2 * 9)
    np.testing.assert_array_equal(both, np.hstack([fine, coarse]))
    assert HOGTransformer(pixels_per_cell=(4, 7)).fit(x).n_features_out_ == 1620
    # (N, 1, H, W) as the DataModules hold them is accepted too
    np.testing.assert_array_equal(HOGTransformer(pixels_per_cell=(4,)).fit_transform(x[:, None]), fine)


@pytest.mark.slow
def test_parallel_extraction_matches_serial(splits):
    x = splits["train"][0][:1200]  # above the size at which work is split over workers
    hog = dict(pixels_per_cell=(4, 7), deskew=True)
    np.testing.assert_array_equal(
        HOGTransformer(**hog, n_jobs=1).fit_transform(x), HOGTransformer(**hog, n_jobs=2).fit_transform(x)
    )


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="grey images"):
        HOGTransformer().fit(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="does not fit"):
        HOGTransformer(pixels_per_cell=(20,)).fit(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="positive"):
        HOGTransformer(pixels_per_cell=(0,)).fit(np.zeros((2, 28, 28)))
    fitted = HOGTransformer().fit(np.zeros((2, 28, 28)))
    with pytest.raises(ValueError, match="fitted on images"):
        fitted.transform(np.zeros((2, 32, 32)))


@pytest.mark.slow
def test_transformer_in_pipeline_and_grid_search(splits):
    (x_tr, y_tr), (x_val, y_val) = splits["train"], splits["val"]
    x = np.concatenate([x_tr[:400], x_val[:300]])
    y = np.concatenate([y_tr[:400], y_val[:300]])
    pipe = Pipeline([("hog", HOGTransformer()), ("scale", StandardScaler()), ("svc", SVC())])
    pipe.set_params(hog__deskew=True, hog__orientations=8)
    assert pipe.get_params()["hog__deskew"] is True and clone(pipe).get_params()["hog__orientations"] == 8
    grid = GridSearchCV(
        pipe, {"hog__pixels_per_cell": [(7,), (4, 7)], "svc__C": [1.0, 10.0]},
        cv=PredefinedSplit(np.r_[np.full(400, -1), np.zeros(300, int)]),
    )
    grid.fit(x, y)
    assert len(grid.cv_results_["params"]) == 4
    assert grid.best_params_["hog__pixels_per_cell"] in [(7,), (4, 7)]
    assert grid.best_score_ > 0.85  # HOG + SVM on 400 deskewed digits; chance is 0.1
    assert grid.best_estimator_.named_steps["hog"].n_features_out_ in (3 * 3 * 4 * 8, (6 * 6 + 3 * 3) * 4 * 8)  # 8 orientations


def test_global_scaler_keeps_relative_weights_and_matches_gamma_scale():
    rng = np.random.default_rng(0)
    x = rng.random((200, 6)) * np.array([1.0, 1.0, 5.0, 0.01, 0.01, 0.0])
    y = (x[:, 0] + x[:, 2] / 5 > 1).astype(int)
    scaled = baseline.GlobalScaler().fit_transform(x)
    assert scaled.var() == pytest.approx(1.0)
    np.testing.assert_allclose(scaled * x.std(), x)  # one factor for all features: ratios kept
    standardised = StandardScaler().fit_transform(x)
    assert standardised[:, 3].std() == pytest.approx(1.0)  # StandardScaler blows the tiny feature up; ours not
    assert scaled[:, 3].std() < 0.01
    # gamma = 1 / n_features on globally scaled features is sklearn's gamma="scale" on the raw ones
    ours = SVC(gamma=1 / x.shape[1]).fit(scaled, y).decision_function(baseline.GlobalScaler().fit(x).transform(x))
    np.testing.assert_allclose(ours, SVC(gamma="scale").fit(x, y).decision_function(x), atol=1e-6)
    assert baseline.GlobalScaler().fit(np.zeros((3, 2))).scale_ == 1.0  # constant data: left as is


def test_build_pipeline_scalers():
    hog = {"pixels_per_cell": (7,)}
    assert isinstance(baseline.build_pipeline(hog, 1.0, 0.1, "global").named_steps["scale"], baseline.GlobalScaler)
    assert isinstance(baseline.build_pipeline(hog, 1.0, 0.1, "standard").named_steps["scale"], StandardScaler)
    with pytest.raises(ValueError, match="unknown scale"):
        baseline.build_pipeline(hog, 1.0, 0.1, "minmax")
    for params in baseline.CHOSEN.values():
        assert params["scale"] in baseline.SCALERS


def test_search_uses_train_and_validation_only(splits, tmp_path, monkeypatch):
    monkeypatch.setitem(baseline.SEARCH_GRID, "mnist", [
        {"hog": [{"pixels_per_cell": (7,), "deskew": False}], "scale": ["standard"], "C": [10.0],
         "gamma_factor": [0.1]},
        {"hog": [{"pixels_per_cell": (7,), "deskew": True}], "scale": ["standard", "global"], "C": [10.0],
         "gamma_factor": [0.1]},
    ])
    # No "test" key: the search would raise KeyError if it looked at the test set.
    small = {"train": splits["train"], "val": (splits["val"][0][:300], splits["val"][1][:300])}
    chosen = baseline.search("mnist", small, 500, 1, tmp_path, "cmd")
    rows = (tmp_path / "search_results.csv").read_text().splitlines()
    assert len(rows) == 4 and "val_acc" in rows[0] and "scale" in rows[0]  # header + 1 + 2 candidates
    assert {row.split(",")[rows[0].split(",").index("scale")] for row in rows[1:]} == {"standard", "global"}
    assert chosen["hog"]["pixels_per_cell"] == (7,) and chosen["val_acc"] > 0.85
    assert chosen["scale"] in baseline.SCALERS
    assert "500 training images" in chosen["chosen_by"]


@pytest.mark.slow
def test_end_to_end_on_a_subset(tmp_path, capsys):
    metrics = baseline.main(["--dataset", "mnist", "--limit-train", "1000", "--runs-dir", str(tmp_path),
                             "--jobs", "1", "--quiet"])
    run_dir = tmp_path / "baseline_mnist" / "version_0"
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(run_dir.resolve())
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test_acc"] == metrics["test_acc"]
    # Floor for 1,000 training images with the chosen MNIST parameters (measured: 0.9785 with --train-size 1000).
    assert saved["test_acc"] > 0.97
    cm = np.array(saved["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 10000 and saved["n_test"] == 10000
    assert np.trace(cm) / cm.sum() == pytest.approx(saved["test_acc"])
    assert saved["n_fit"] == 1000 and saved["feature_length"] > 0 and saved["fit_time_s"] > 0
    assert (run_dir / "confusion_matrix.png").stat().st_size > 1000
