"""Energy profiles: shipped files load with cited constants; malformed files fail clearly."""

from __future__ import annotations

import json

import pytest

from spikesmith.energy import available_profiles, load_profile
from spikesmith.errors import InputError


def test_shipped_profiles_load_and_cite_every_constant():
    names = available_profiles()
    assert {"cmos45", "cmos45_int8", "loihi", "gpu_a100"} <= set(names)
    for name in names:
        p = load_profile(name)
        assert p.name == name
        for c in list(p.constants.values()) + list(p.reference.values()):
            assert c.source.strip() and isinstance(c.estimate, bool)


def test_horowitz_constants_in_joules():
    p = load_profile("cmos45")
    assert p.joules("mac") == pytest.approx(4.6e-12)
    assert p.joules("ac") == pytest.approx(0.9e-12)
    assert not p.constants["mac"].estimate
    q = load_profile("cmos45_int8")
    assert q.joules("ac") == pytest.approx(0.03e-12)
    assert q.reference["int8_multiply"].joules == pytest.approx(0.2e-12)


def test_loihi_figures_from_davies_table2():
    p = load_profile("loihi")
    assert p.joules("ac") == pytest.approx(23.6e-12)
    assert p.joules("neuron_update") == pytest.approx(52e-12)
    assert p.reference["spike_within_tile"].joules == pytest.approx(1.7e-12)
    assert "Table 2" in p.constants["ac"].source
    assert p.use == ("snn",)
    assert p.constants["spike"].estimate  # derived, not a published figure


def _write(tmp_path, obj, name="p.json"):
    path = tmp_path / name
    path.write_text(json.dumps(obj))
    return path


GOOD = {"name": "mine", "use": ["snn", "ann"],
        "constants": {"mac": {"value": 1.0, "unit": "pJ", "source": "me", "estimate": True},
                      "ac": {"value": 100, "unit": "fJ", "source": "me", "estimate": True}}}


def test_custom_profile_from_path(tmp_path):
    p = load_profile(_write(tmp_path, GOOD))
    assert p.joules("ac") == pytest.approx(1e-13)
    assert p.joules("neuron_update") == 0.0 and not p.has("neuron_update")


@pytest.mark.parametrize("mutate, match", [
    (lambda d: d["constants"]["mac"].pop("source"), r"constants\.mac.*missing field.*source"),
    (lambda d: d["constants"]["mac"].update(unit="kWh"), r"constants\.mac.*unit 'kWh'"),
    (lambda d: d["constants"]["mac"].update(value=-1), r"constants\.mac.*>= 0"),
    (lambda d: d["constants"]["mac"].update(value="4.6"), r"constants\.mac\.value.*number"),
    (lambda d: d["constants"]["mac"].update(estimate="no"), r"estimate.*true or false"),
    (lambda d: d["constants"].update(synop=d["constants"]["ac"]), r"unknown constant.*synop"),
    (lambda d: d["constants"].pop("ac"), r"'snn' use needs constant.*ac"),
    (lambda d: d.update(use=["gpu"]), r"'use' must list"),
    (lambda d: d.pop("name"), r"missing field 'name'"),
])
def test_malformed_profiles_name_file_and_field(tmp_path, mutate, match):
    raw = json.loads(json.dumps(GOOD))
    mutate(raw)
    path = _write(tmp_path, raw)
    with pytest.raises(InputError, match=match) as info:
        load_profile(path)
    assert str(path) in str(info.value)


def test_unknown_name_and_bad_json(tmp_path):
    with pytest.raises(InputError, match="unknown energy profile 'cmos7'.*cmos45"):
        load_profile("cmos7")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json.*not valid JSON"):
        load_profile(bad)
