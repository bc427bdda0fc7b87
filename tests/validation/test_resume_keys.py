"""Stored results stay valid: the resume keys below were written by the point types before their
common fields moved to shared bases (seed/experiment/device declared per type, the walk fields
per rate/occupation type: main at 5d4a03b; the sweep labels k/B_over_eta/which per type:
f3d1b94). The same points must give the same keys, and a stored key must read back as the same
point."""

from __future__ import annotations

import json

import pytest

from flatminima.validation._covariance import CovariancePoint
from flatminima.validation._network_escape import NetworkRatePoint
from flatminima.validation._probe_experiment import ProbePoint
from flatminima.validation._rate_points import OccupationPoint, RatePoint
from flatminima.validation._registry import Point, point_from_dict

STORED = [
    (
        RatePoint(
            landscape="double-well", noise="sgd", lr=0.05, loss_scale=2.0, replicas=512,
            target_escapes=200, max_steps=100000, seed=11, experiment="sharpness",
            landscape_options={"k": 3.0}, batch_size=8, device="cpu", k=3.0,
        ),
        '{"batch_size":8,"device":"cpu","experiment":"sharpness","k":3.0,"landscape":"double-well",'
        '"landscape_options":{"k":3.0},"loss_scale":2.0,"lr":0.05,"max_steps":100000,"noise":"sgd",'
        '"replicas":512,"seed":11,"target_escapes":200,"task":"rate"}',
    ),
    (
        OccupationPoint(
            landscape="flat-sharp", noise="white", lr=0.01, loss_scale=1.0, replicas=256,
            steps=5000, seed=3, experiment="selection", diffusion=0.02,
        ),
        '{"diffusion":0.02,"experiment":"selection","landscape":"flat-sharp","loss_scale":1.0,'
        '"lr":0.01,"noise":"white","replicas":256,"seed":3,"steps":5000,"task":"occupation"}',
    ),
    (
        NetworkRatePoint(
            dataset="gauss", size=64, hidden=8, weight_decay=1e-3, data_seed=1, noise="sgd",
            lr=0.1, delta=0.5, replicas=32, target_escapes=50, max_steps=20000, check_every=10,
            seed=5, experiment="selection", init_seed=2, which="flat", batch_size=4, device="cpu",
        ),
        '{"batch_size":4,"check_every":10,"data_seed":1,"dataset":"gauss","delta":0.5,'
        '"device":"cpu","experiment":"selection","hidden":8,"init_seed":2,"lr":0.1,'
        '"max_steps":20000,"noise":"sgd","replicas":32,"seed":5,"size":64,"target_escapes":50,'
        '"task":"network-rate","weight_decay":0.001,"which":"flat"}',
    ),
    # every sweep label set (written before the labels moved to the shared SweepLabels, f3d1b94)
    (
        RatePoint(
            landscape="double-well", noise="sgd", lr=0.05, loss_scale=2.0, replicas=512,
            target_escapes=200, max_steps=100000, seed=11, experiment="batch", batch_size=8,
            start=(0.5,), k=3.0, B=8, eta=0.05, B_over_eta=160.0, which="flat",
        ),
        '{"B":8,"B_over_eta":160.0,"batch_size":8,"eta":0.05,"experiment":"batch","k":3.0,'
        '"landscape":"double-well","loss_scale":2.0,"lr":0.05,"max_steps":100000,"noise":"sgd",'
        '"replicas":512,"seed":11,"start":[0.5],"target_escapes":200,"task":"rate","which":"flat"}',
    ),
    (
        OccupationPoint(
            landscape="flat-sharp", noise="sgd", lr=0.01, loss_scale=1.0, replicas=256,
            steps=5000, seed=3, experiment="selection", batch_size=2, B_over_eta=200.0,
        ),
        '{"B_over_eta":200.0,"batch_size":2,"experiment":"selection","landscape":"flat-sharp",'
        '"loss_scale":1.0,"lr":0.01,"noise":"sgd","replicas":256,"seed":3,"steps":5000,'
        '"task":"occupation"}',
    ),
    (
        NetworkRatePoint(
            dataset="gauss", size=64, hidden=8, weight_decay=1e-3, data_seed=1, noise="sgd",
            lr=0.1, delta=0.5, replicas=32, target_escapes=50, max_steps=20000, check_every=10,
            seed=5, experiment="selection", init_seed=2, which="flat", k=2.0, batch_size=4,
            B_over_eta=40.0, predicted_E=3.5, predicted_slope=-1.25, device="cpu",
        ),
        '{"B_over_eta":40.0,"batch_size":4,"check_every":10,"data_seed":1,"dataset":"gauss",'
        '"delta":0.5,"device":"cpu","experiment":"selection","hidden":8,"init_seed":2,"k":2.0,'
        '"lr":0.1,"max_steps":20000,"noise":"sgd","predicted_E":3.5,"predicted_slope":-1.25,'
        '"replicas":32,"seed":5,"size":64,"target_escapes":50,"task":"network-rate",'
        '"weight_decay":0.001,"which":"flat"}',
    ),
    (
        CovariancePoint(
            model="mlp", dataset="gauss", state="minimum", hidden=16, weight_decay=0.0,
            batch_sizes=(4, 16), minibatches=200, seed=9, experiment="covariance",
        ),
        '{"batch_sizes":[4,16],"dataset":"gauss","experiment":"covariance","hidden":16,'
        '"minibatches":200,"model":"mlp","seed":9,"state":"minimum","task":"covariance",'
        '"weight_decay":0.0}',
    ),
    (
        ProbePoint(
            model="regression", lr=0.02, batch_size=8, barrier=0.3, replicas=64,
            max_steps=30000, burn_in=100, target_escapes=100, seed=4, experiment="probe",
            device="cpu",
        ),
        '{"barrier":0.3,"batch_size":8,"burn_in":100,"device":"cpu","experiment":"probe",'
        '"lr":0.02,"max_steps":30000,"model":"regression","replicas":64,"seed":4,'
        '"target_escapes":100,"task":"probe"}',
    ),
]  # fmt: skip


@pytest.mark.parametrize(("point", "stored"), STORED, ids=lambda x: getattr(x, "TASK", ""))
def test_a_stored_key_still_matches_its_point(point: Point, stored: str) -> None:
    assert point.key() == stored
    assert point_from_dict(json.loads(stored)) == point


def test_the_common_fields_come_last_in_a_points_dict() -> None:
    # results.csv's columns: a point's own fields first, then seed/experiment/device
    for point, _ in STORED:
        names = list(point.to_dict())
        common = [n for n in names if n in ("seed", "experiment", "device")]
        assert names[0] == "task" and "seed" in common
        assert names[len(names) - len(common) :] == common


def test_the_labels_come_between_a_points_own_fields_and_the_common_ones() -> None:
    # results.csv's columns, although a shared base's fields (SweepLabels') come first in fields()
    labels = {"k", "B", "eta", "B_over_eta", "which", "predicted_E", "predicted_slope"}
    for point, _ in STORED:
        kinds = [
            2 if n in ("seed", "experiment", "device") else 1 if n in labels else 0
            for n in list(point.to_dict())[1:]
        ]
        assert kinds == sorted(kinds), point.TASK
    network = next(p for p, _ in STORED if isinstance(p, NetworkRatePoint) and p.k is not None)
    assert list(network.to_dict())[-10:] == [
        "init_seed", "batch_size", "k", "B_over_eta", "which", "predicted_E", "predicted_slope",
        "seed", "experiment", "device",
    ]  # fmt: skip
