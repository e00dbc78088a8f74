"""Every metric the runner records carries its units (zoo.vocabulary.metric_units), on a real store."""
import pandas as pd

from zoo.vocabulary import KINDS, metric_units


def test_every_recorded_metric_has_units(store):
    m = store.metrics()
    missing = sorted(set(m.loc[m["units"].isna(), "name"]))
    assert len(m) > 100 and not missing, f"declare the units of {missing} in zoo.vocabulary.METRIC_UNITS"
    likelihoods = m[m["kind"].isin(list(KINDS)) & m["name"].str.endswith("nll")]
    assert len(likelihoods) > 10 and set(likelihoods["units"]) == {"nats"}


def test_units_rules():
    assert metric_units("nll") == metric_units("prior_mc_nll") == metric_units("approximation_gap") == "nats"
    assert metric_units("is_bits_per_dim") == "bits/dim" and metric_units("m1_error_n600") == "fraction"
    assert metric_units("samples_per_sec_fast") == "per second" and metric_units("no_such_metric") is None


def test_the_leaderboard_lists_a_runs_numbers_with_kind_and_units(db, store, monkeypatch):
    from test_dashboard import app

    at = app(db, monkeypatch=monkeypatch)
    rows = at.dataframe[-1].value  # the expander's table (the page's last), for the best-ranked run
    best = at.dataframe[0].value.iloc[0]
    want = store.metrics([int(best["run"])])
    assert len(rows) == len(want) > 10
    got = rows.set_index(["split", "name"])
    for _, r in want.iterrows():
        shown = got.loc[(r["split"], r["name"])]
        assert shown["units"] == r["units"] and (shown["kind"] == r["kind"] or pd.isna(r["kind"]))
    assert got.loc[("test", "nll"), "units"] == "nats"
